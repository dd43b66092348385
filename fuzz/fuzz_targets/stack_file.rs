//! Loading a stack file: any text gets diagnostics or a stack, never a panic.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    let _ = spillway_stack::load_str(std::path::Path::new("spillway.toml"), text, &|_| None);
});
