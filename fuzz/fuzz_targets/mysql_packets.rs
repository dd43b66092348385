//! The MySQL side's decoders: framing (parts joined, limits, sequence numbers), the greeting,
//! the client's handshake response, OK packets with their session-tracker block, ERR packets,
//! KILL statements.
#![no_main]
use libfuzzer_sys::fuzz_target;
use spillway_proxy::mysql::constants::cap;
use spillway_proxy::mysql::messages::{ErrPacket, Greeting, HandshakeResponse, OkPacket};
use spillway_proxy::mysql::{packet, threads};

fuzz_target!(|data: &[u8]| {
    let mut buf = bytes::BytesMut::from(data);
    while let Ok(Some(_)) = packet::try_take(&mut buf, 1 << 20) {}
    let _ = Greeting::parse(data);
    let _ = HandshakeResponse::parse(data);
    for caps in [0, cap::SESSION_TRACK] {
        if let Ok(ok) = OkPacket::parse(data, caps) {
            let _ = ok.changes();
            let _ = ok.encode(caps, 0);
        }
    }
    let _ = ErrPacket::parse(data);
    let _ = threads::parse_kill(data);
    let _ = threads::mentions_kill(data);
});
