//! The MySQL and MariaDB side of the proxy: a second protocol room over the same pool core
//! (`crate::pool`) as `pg`. Client-facing: `handshake` (login), `session` (commands),
//! `statements` (prepared statements across connections), `change_user`, `threads` (connection
//! ids and KILL). Server-facing: `backend`. Between them: `relay` (answers to clients),
//! `state` (a connection's session brought to its client's), `pinning` (what pins). Wire
//! format: `packet` (framing), `wire` (basic types), `messages`, `constants`, `scramble`.

pub mod backend;
mod change_user;
pub mod constants;
pub mod handshake;
pub mod messages;
pub mod packet;
pub mod pinning;
pub mod proxy;
pub mod relay;
pub mod scramble;
pub mod session;
mod state;
mod statements;
pub mod threads;
pub mod wire;

/// The fuzz targets' decoders (`fuzz/fuzz_targets/mysql_*.rs`) over seeded random input, so
/// that a panic on malformed bytes fails the ordinary test run too (cargo-fuzz needs nightly).
#[cfg(test)]
mod random_input {
    use rand::{Rng, SeedableRng};

    use super::constants::cap;
    use super::messages::{ErrPacket, Greeting, HandshakeResponse, OkPacket};
    use super::{packet, pinning, threads};

    #[test]
    fn decoders_survive_random_bytes() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(18);
        for _ in 0..20_000 {
            let len = rng.gen_range(0..96);
            let mut data: Vec<u8> = (0..len).map(|_| rng.r#gen()).collect();
            // Half the inputs start like the packets they are parsed as.
            if rng.gen_bool(0.5) && !data.is_empty() {
                data[0] = [0x00, 0x0a, 0xfe, 0xff][rng.gen_range(0..4)];
            }
            let mut buf = bytes::BytesMut::from(&data[..]);
            while let Ok(Some(_)) = packet::try_take(&mut buf, 1 << 16) {}
            let _ = Greeting::parse(&data);
            let _ = HandshakeResponse::parse(&data);
            for caps in [0, cap::SESSION_TRACK] {
                if let Ok(ok) = OkPacket::parse(&data, caps) {
                    let _ = ok.changes();
                }
            }
            let _ = ErrPacket::parse(&data);
            let _ = threads::parse_kill(&data);
            let _ = threads::mentions_kill(&data);
            let _ = pinning::classify(&data, pinning::Filters::default());
        }
    }
}
