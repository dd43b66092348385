//! The MySQL statement tokenizer behind pinning decisions, on arbitrary bytes.
#![no_main]
use libfuzzer_sys::fuzz_target;
use spillway_proxy::mysql::pinning::{Filters, classify};

fuzz_target!(|sql: &[u8]| {
    let _ = classify(sql, Filters::default());
    let _ = classify(sql, Filters { exclude_variable_sets: true });
});
