use std::path::Path;

use super::{EXIT_INPUT, print_load_error};

pub fn run(dir: &Path) -> u8 {
    match spillway_stack::load(dir) {
        Ok(loaded) => {
            let count = loaded.order.len();
            println!(
                "{}: valid ({count} resource{})",
                loaded.file.display(),
                if count == 1 { "" } else { "s" }
            );
            0
        }
        Err(e) => {
            print_load_error(&e);
            EXIT_INPUT
        }
    }
}
