//! SCRAM messages from an unauthenticated client.
#![no_main]
use libfuzzer_sys::fuzz_target;
use spillway_proxy::pg::scram::{Exchange, Verifier};

fuzz_target!(|data: &[u8]| {
    let v = Verifier::with_salt("pw", vec![1; 16], 1);
    let (first, last) = data.split_at(data.len() / 2);
    if let Ok((ex, _)) = Exchange::start(first, &v) {
        let _ = ex.finish(last, &v);
    }
});
