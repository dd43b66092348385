//! Framing and the client messages the proxy decodes (Parse, Bind, Describe/Close, Query) and
//! the server's ErrorResponse fields.
#![no_main]
use libfuzzer_sys::fuzz_target;
use spillway_proxy::pg::codec::{MAX_MESSAGE, peek};
use spillway_proxy::pg::messages::{Bind, Parse, Target, error_code, query_text};

fuzz_target!(|data: &[u8]| {
    let _ = peek(data, MAX_MESSAGE);
    let body = data.get(1..).unwrap_or_default();
    match data.first() {
        Some(b'P') => {
            if let Ok(p) = Parse::decode(body) {
                let mut out = bytes::BytesMut::new();
                p.encode(&mut out, b"x");
            }
        }
        Some(b'B') => {
            let _ = Bind::decode(body);
        }
        Some(b'D') | Some(b'C') => {
            let _ = Target::decode(body, "fuzz");
        }
        Some(b'Q') => {
            let _ = query_text(body);
        }
        _ => {
            let _ = error_code(body);
        }
    }
});
