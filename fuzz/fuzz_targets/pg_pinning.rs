//! The SQL tokenizer behind pinning decisions, on arbitrary text.
#![no_main]
use libfuzzer_sys::fuzz_target;
use spillway_proxy::pg::pinning::{Filters, classify};

fuzz_target!(|sql: &str| {
    let _ = classify(sql, Filters::default());
    let _ = classify(sql, Filters { exclude_variable_sets: true });
});
