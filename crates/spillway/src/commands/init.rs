//! `spillway init`: writes the quickstart stack, embedded in the binary so that it works from
//! anywhere (the same files as examples/quickstart in the repository).

use std::path::Path;

use super::{EXIT_INPUT, EXIT_RUNTIME};

const FILES: &[(&str, &str)] = &[
    (
        "spillway.toml",
        include_str!("../../../../examples/quickstart/spillway.toml"),
    ),
    (
        "sql/schema.sql",
        include_str!("../../../../examples/quickstart/sql/schema.sql"),
    ),
    (
        "functions/hello/Cargo.toml",
        include_str!("../../../../examples/quickstart/functions/hello/Cargo.toml"),
    ),
    (
        "functions/hello/src/main.rs",
        include_str!("../../../../examples/quickstart/functions/hello/src/main.rs"),
    ),
];

pub fn run(dir: &Path, force: bool) -> u8 {
    if !force && let Some((name, _)) = FILES.iter().find(|(name, _)| dir.join(name).exists()) {
        eprintln!(
            "{}: already exists; use --force to overwrite",
            dir.join(name).display()
        );
        return EXIT_INPUT;
    }
    for (name, contents) in FILES {
        let path = dir.join(name);
        let written = path
            .parent()
            .map_or(Ok(()), std::fs::create_dir_all)
            .and_then(|()| std::fs::write(&path, contents));
        if let Err(e) = written {
            eprintln!("{}: {e}", path.display());
            return EXIT_RUNTIME;
        }
        println!("wrote {}", path.display());
    }
    println!("next: spillway up {}", dir.display());
    0
}

/// Writes the quickstart without the "already exists" check (used by `up --init`).
pub fn write(dir: &Path) -> u8 {
    run(dir, false)
}
