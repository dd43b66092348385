//! The PostgreSQL wire protocol by hand, for tests that need bytes no driver sends: a raw login
//! (SCRAM with rust-postgres's client code) with any startup parameters, message framing, and
//! readers of the answers.

use postgres_protocol::authentication::sasl::{ChannelBinding, ScramSha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A startup packet (protocol 3.0) with `params` (user, database and any others).
pub fn startup_packet(params: &[(&str, &str)]) -> Vec<u8> {
    let mut body = 196_608i32.to_be_bytes().to_vec();
    for (k, v) in params {
        body.extend_from_slice(k.as_bytes());
        body.push(0);
        body.extend_from_slice(v.as_bytes());
        body.push(0);
    }
    body.push(0);
    let mut p = ((body.len() + 4) as i32).to_be_bytes().to_vec();
    p.extend_from_slice(&body);
    p
}

/// One frontend message.
pub fn message(tag: u8, body: &[u8]) -> Vec<u8> {
    let mut m = vec![tag];
    m.extend_from_slice(&((body.len() + 4) as i32).to_be_bytes());
    m.extend_from_slice(body);
    m
}

/// One backend message: its tag and body.
pub async fn read_message(s: &mut TcpStream) -> (u8, Vec<u8>) {
    let mut head = [0u8; 5];
    s.read_exact(&mut head)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let len = u32::from_be_bytes([head[1], head[2], head[3], head[4]]) as usize - 4;
    let mut body = vec![0u8; len];
    s.read_exact(&mut body)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    (head[0], body)
}

/// Logs in as `user` with `password` and `extra` startup parameters; `Ok` with the socket and
/// every message up to the first ReadyForQuery, or `Err` with the ErrorResponse that refused it.
pub async fn login_with(
    port: u16,
    user: &str,
    password: &str,
    extra: &[(&str, &str)],
) -> Result<(TcpStream, Vec<u8>), Vec<u8>> {
    let mut s = TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let mut params = vec![("user", user), ("database", "main")];
    params.extend_from_slice(extra);
    s.write_all(&startup_packet(&params))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let mut scram = ScramSha256::new(password.as_bytes(), ChannelBinding::unsupported());
    let mut answer = Vec::new();
    loop {
        let (tag, body) = read_message(&mut s).await;
        match tag {
            b'R' => {
                let code = i32::from_be_bytes([body[0], body[1], body[2], body[3]]);
                let reply = match code {
                    10 => {
                        let msg = scram.message().to_vec();
                        let mut payload = b"SCRAM-SHA-256\0".to_vec();
                        payload.extend_from_slice(&(msg.len() as i32).to_be_bytes());
                        payload.extend_from_slice(&msg);
                        Some(payload)
                    }
                    11 => {
                        scram.update(&body[4..]).unwrap_or_else(|e| panic!("{e}"));
                        Some(scram.message().to_vec())
                    }
                    _ => None,
                };
                if let Some(r) = reply {
                    s.write_all(&message(b'p', &r))
                        .await
                        .unwrap_or_else(|e| panic!("{e}"));
                }
            }
            b'E' => return Err(frame(tag, &body)),
            _ => {
                answer.extend(frame(tag, &body));
                if tag == b'Z' {
                    return Ok((s, answer));
                }
            }
        }
    }
}

/// Logs in as the test stacks' `app` user; panics if refused.
pub async fn login(port: u16) -> TcpStream {
    match login_with(port, "app", "app-password", &[]).await {
        Ok((s, _)) => s,
        Err(e) => panic!("login refused: {e:?}"),
    }
}

fn frame(tag: u8, body: &[u8]) -> Vec<u8> {
    let mut m = vec![tag];
    m.extend_from_slice(&((body.len() + 4) as u32).to_be_bytes());
    m.extend_from_slice(body);
    m
}

/// Reads messages until ReadyForQuery; returns the text of every DataRow's first column.
pub async fn rows_until_ready(s: &mut TcpStream) -> Vec<String> {
    let mut rows = Vec::new();
    loop {
        let (tag, body) = read_message(s).await;
        match tag {
            b'D' if body.len() >= 6 => rows.push(String::from_utf8_lossy(&body[6..]).into_owned()),
            b'Z' => return rows,
            _ => {}
        }
    }
}

/// Every message up to and including ReadyForQuery, as raw bytes.
pub async fn answer_until_ready(s: &mut TcpStream) -> Vec<u8> {
    let mut all = Vec::new();
    loop {
        let (tag, body) = read_message(s).await;
        all.extend(frame(tag, &body));
        if tag == b'Z' {
            return all;
        }
    }
}

/// The whole messages in `bytes`, each with its tag and length.
pub fn frames(mut bytes: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    while bytes.len() >= 5 {
        let len = u32::from_be_bytes([bytes[1], bytes[2], bytes[3], bytes[4]]) as usize;
        let (msg, next) = bytes.split_at((len + 1).min(bytes.len()));
        out.push(msg);
        bytes = next;
    }
    out
}

/// A field of an ErrorResponse message (`b'C'` for the SQLSTATE, `b'M'` for the text).
pub fn error_field(msg: &[u8], field: u8) -> Option<String> {
    let body = msg.get(5..)?;
    let mut i = 0;
    while i < body.len() && body[i] != 0 {
        let f = body[i];
        let end = body[i + 1..].iter().position(|b| *b == 0)? + i + 1;
        if f == field {
            return Some(String::from_utf8_lossy(&body[i + 1..end]).into_owned());
        }
        i = end + 1;
    }
    None
}

/// The SQLSTATE of the first ErrorResponse among whole messages.
pub fn error_code(answer: &[u8]) -> Option<String> {
    frames(answer)
        .into_iter()
        .find(|m| m[0] == b'E')
        .and_then(|m| error_field(m, b'C'))
}

/// The value of a ParameterStatus among whole messages.
pub fn parameter_status(answer: &[u8], name: &str) -> Option<String> {
    frames(answer)
        .into_iter()
        .filter(|m| m[0] == b'S')
        .find_map(|m| {
            let mut parts = m.get(5..)?.split(|b| *b == 0);
            let k = parts.next()?;
            let v = parts.next()?;
            (k == name.as_bytes()).then(|| String::from_utf8_lossy(v).into_owned())
        })
}
