//! The first packet of a connection: length check and decode must never panic.
#![no_main]
use libfuzzer_sys::fuzz_target;
use spillway_proxy::pg::startup;

fuzz_target!(|data: &[u8]| {
    if let Ok(Some(len)) = startup::packet_len(data) {
        if data.len() >= len {
            let _ = startup::decode(&data[..len]);
        }
    }
});
