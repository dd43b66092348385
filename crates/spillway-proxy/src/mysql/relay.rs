//! Relaying a server's response to a client: packets pass from the server's read buffer to the
//! client with one copy (into the client's write buffer, flushed as it fills), their sequence
//! numbers renumbered, and only the packets that end a result are read by the proxy: OK and ERR,
//! whose status flags say whether a transaction is open and more results follow, and whose
//! session-tracking block says what the statement changed.
//!
//! Server connections always have DEPRECATE_EOF and session tracking; a client without them
//! gets its own forms: an EOF after the column definitions, an EOF instead of the closing OK,
//! and OK packets without the tracking block.

use bytes::{BufMut, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::backend::{MyBackendError, MyConn};
use super::constants::{ERR, LOCAL_INFILE, MAX_PART, OK, cap, status};
use super::messages::{Changes, OkPacket, eof, is_terminator};
use super::packet::{HEADER, header};
use super::wire::Reader;
use crate::socket::Socket;

/// Client write buffer size at which the relay writes before reading on.
const FLUSH_AT: usize = 64 * 1024;

/// What response a command gets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expect {
    /// OK, ERR, or result sets (text or binary), possibly several.
    Results,
    /// Rows of an open cursor and the packet that ends them (COM_STMT_FETCH).
    Rows,
    /// Column definitions and their end (COM_FIELD_LIST).
    Fields,
    /// One packet, whatever it holds (COM_STATISTICS).
    One,
}

#[derive(Debug, Default)]
pub struct Outcome {
    /// The status flags of the response's last OK or EOF.
    pub status: u16,
    /// What the server's session tracker reported, over all of the response's OK packets.
    pub changes: Changes,
    /// The last non-zero insert id an OK reported.
    pub last_insert_id: u64,
    pub error: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    /// The server failed; whether the client had part of the answer (it was written to the
    /// client's buffer).
    #[error("{0}")]
    Server(MyBackendError, bool),
    #[error("the client went away: {0}")]
    Client(std::io::Error),
}

enum State {
    First,
    Columns(u64),
    /// The column definitions are done; for a client without DEPRECATE_EOF their EOF is
    /// still to send (it depends on what comes next: rows, or the end of a cursor's metadata).
    AfterColumns,
    Rows,
}

impl From<MyBackendError> for RelayError {
    fn from(e: MyBackendError) -> Self {
        RelayError::Server(e, false)
    }
}

/// Sends `out` to the client and empties it.
pub async fn flush(client: &mut Socket, out: &mut BytesMut) -> Result<(), RelayError> {
    if !out.is_empty() {
        client.write_all(out).await.map_err(RelayError::Client)?;
        out.clear();
    }
    Ok(())
}

/// Appends a packet of the proxy's own making.
fn put_own(out: &mut BytesMut, seq: &mut u8, payload: &[u8]) {
    *seq = super::packet::put(out, *seq, payload);
}

/// Appends a server packet (header included) with the client's sequence number.
fn put_server(out: &mut BytesMut, seq: &mut u8, packet: &[u8]) {
    out.put_u8(packet[0]);
    out.put_u8(packet[1]);
    out.put_u8(packet[2]);
    out.put_u8(*seq);
    out.put_slice(&packet[HEADER..]);
    *seq = seq.wrapping_add(1);
}

/// Relays the response to one command; `seq` is the client's next sequence number. A server
/// failure reports whether the client had been sent part of the answer already (it cannot be
/// given an error packet then: the protocol has no place for one).
pub async fn relay(
    conn: &mut MyConn,
    client: &mut Socket,
    out: &mut BytesMut,
    client_caps: u32,
    expect: Expect,
    seq: u8,
) -> Result<Outcome, RelayError> {
    let mut next = seq;
    match relay_packets(conn, client, out, client_caps, expect, &mut next).await {
        Err(RelayError::Server(e, _)) => Err(RelayError::Server(e, next != seq)),
        r => r,
    }
}

async fn relay_packets(
    conn: &mut MyConn,
    client: &mut Socket,
    out: &mut BytesMut,
    client_caps: u32,
    expect: Expect,
    seq: &mut u8,
) -> Result<Outcome, RelayError> {
    let deprecate_eof = client_caps & cap::DEPRECATE_EOF != 0;
    let tracks = client_caps & cap::SESSION_TRACK != 0;
    // An answer without a status of its own (an ERR, COM_STATISTICS's text) leaves the
    // session's status as it was: a transaction stays open.
    let mut outcome = Outcome {
        status: conn.status,
        ..Default::default()
    };
    let mut state = match expect {
        Expect::Results | Expect::One => State::First,
        Expect::Rows | Expect::Fields => State::Rows,
    };
    // Inside a message longer than one packet: its later parts pass unread.
    let mut continuation = false;
    loop {
        let len = match header(&conn.buf) {
            Some((len, _)) if conn.buf.len() >= HEADER + len => len,
            other => {
                // Before waiting on the server, the client gets what is ready.
                flush(client, out).await?;
                if let Some((len, _)) = other {
                    conn.buf.reserve(HEADER + len - conn.buf.len());
                }
                if conn
                    .stream
                    .read_buf(&mut conn.buf)
                    .await
                    .map_err(MyBackendError::Io)?
                    == 0
                {
                    return Err(MyBackendError::Closed.into());
                }
                continue;
            }
        };
        let packet = conn.buf.split_to(HEADER + len);
        let was_continuation = continuation;
        continuation = len == MAX_PART;
        if was_continuation {
            put_server(out, seq, &packet);
            continue;
        }
        let body = &packet[HEADER..];
        let first = body.first().copied();
        if expect == Expect::One {
            put_server(out, seq, &packet);
            break;
        }
        let end = match state {
            State::First => match first {
                Some(OK) => {
                    let more = on_ok(conn, &mut outcome, body)?;
                    if tracks {
                        put_server(out, seq, &packet);
                    } else {
                        put_own(
                            out,
                            seq,
                            &OkPacket::parse(body, conn.capabilities)
                                .map_err(MyBackendError::from)?
                                .encode(client_caps, OK),
                        );
                    }
                    !more
                }
                Some(ERR) => {
                    on_err(conn, &mut outcome);
                    put_server(out, seq, &packet);
                    true
                }
                Some(LOCAL_INFILE) if client_caps & cap::LOCAL_FILES != 0 => {
                    // LOAD DATA LOCAL INFILE (allowed by the stack, asked for by this client):
                    // the server names a file, the client sends its contents and an empty
                    // packet, then the server answers as to any statement.
                    let server_seq = packet[3];
                    put_server(out, seq, &packet);
                    flush(client, out).await?;
                    *seq = local_file(conn, client, server_seq).await?;
                    false
                }
                Some(LOCAL_INFILE) => {
                    // Servers are offered LOCAL_FILES only for clients that may use it.
                    return Err(MyBackendError::Protocol("unrequested LOCAL INFILE".into()).into());
                }
                _ => {
                    let n = Reader::new(body)
                        .lenenc("column count")
                        .map_err(MyBackendError::from)?;
                    put_server(out, seq, &packet);
                    state = State::Columns(n);
                    if n == 0 {
                        return Err(
                            MyBackendError::Protocol("a result set of no columns".into()).into(),
                        );
                    }
                    false
                }
            },
            State::Columns(left) => {
                put_server(out, seq, &packet);
                if left <= 1 {
                    state = if deprecate_eof {
                        State::Rows
                    } else {
                        State::AfterColumns
                    };
                } else {
                    state = State::Columns(left - 1);
                }
                false
            }
            State::AfterColumns => {
                let cursor_end = matches!(first, Some(f) if is_terminator(f, len, true))
                    && OkPacket::parse(body, conn.capabilities)
                        .is_ok_and(|ok| ok.status & status::CURSOR_EXISTS != 0);
                if cursor_end {
                    // An open cursor: the metadata's EOF is the whole answer.
                    on_ok(conn, &mut outcome, body)?;
                    let ok =
                        OkPacket::parse(body, conn.capabilities).map_err(MyBackendError::from)?;
                    put_own(
                        out,
                        seq,
                        &eof(ok.warnings, ok.status & !status::SESSION_STATE_CHANGED),
                    );
                    true
                } else {
                    put_own(
                        out,
                        seq,
                        // The session's flags, without those that belong to the answer that
                        // set them (another result, a cursor, its last row).
                        &eof(
                            0,
                            conn.status
                                & !(status::SESSION_STATE_CHANGED
                                    | status::MORE_RESULTS_EXISTS
                                    | status::CURSOR_EXISTS
                                    | status::LAST_ROW_SENT),
                        ),
                    );
                    state = State::Rows;
                    // The packet itself is a row or the end: put it back and read it as such.
                    let mut again = packet;
                    again.unsplit(std::mem::take(&mut conn.buf));
                    conn.buf = again;
                    continuation = false;
                    false
                }
            }
            State::Rows => match first {
                Some(ERR) => {
                    on_err(conn, &mut outcome);
                    put_server(out, seq, &packet);
                    true
                }
                Some(f) if is_terminator(f, len, true) => {
                    let more = on_ok(conn, &mut outcome, body)?;
                    if deprecate_eof && tracks {
                        put_server(out, seq, &packet);
                    } else if deprecate_eof {
                        let ok = OkPacket::parse(body, conn.capabilities)
                            .map_err(MyBackendError::from)?;
                        put_own(out, seq, &ok.encode(client_caps, super::constants::EOF));
                    } else {
                        let ok = OkPacket::parse(body, conn.capabilities)
                            .map_err(MyBackendError::from)?;
                        put_own(
                            out,
                            seq,
                            &eof(ok.warnings, ok.status & !status::SESSION_STATE_CHANGED),
                        );
                    }
                    state = State::First;
                    !more || expect != Expect::Results
                }
                _ => {
                    put_server(out, seq, &packet);
                    if out.len() >= FLUSH_AT {
                        flush(client, out).await?;
                    }
                    false
                }
            },
        };
        if end {
            break;
        }
    }
    flush(client, out).await?;
    Ok(outcome)
}

/// The client's file, packet by packet, to the server, up to and including the empty packet
/// that ends it, numbered after the server's request `server_seq` (the client's numbering may
/// differ, by the EOFs the proxy gave it); returns the client's next sequence number.
async fn local_file(
    conn: &mut MyConn,
    client: &mut Socket,
    server_seq: u8,
) -> Result<u8, RelayError> {
    let mut buf = BytesMut::with_capacity(64 * 1024);
    let mut to_server = server_seq.wrapping_add(1);
    loop {
        let p = super::packet::read(client, &mut buf, MAX_PART)
            .await
            .map_err(|e| RelayError::Client(std::io::Error::other(e.to_string())))?;
        let mut frame = BytesMut::with_capacity(p.payload.len() + HEADER);
        to_server = super::packet::put(&mut frame, to_server, &p.payload);
        conn.stream
            .write_all(&frame)
            .await
            .map_err(MyBackendError::Io)?;
        if p.payload.is_empty() {
            return Ok(p.seq.wrapping_add(1));
        }
    }
}

/// An ERR ends the answer: no more results follow and no cursor is open, whatever the last
/// OK said; the transaction flags stand.
fn on_err(conn: &mut MyConn, outcome: &mut Outcome) {
    outcome.error = true;
    conn.status &= !(status::MORE_RESULTS_EXISTS | status::CURSOR_EXISTS);
    outcome.status = conn.status;
}

/// Notes an OK (or a result set's closing OK); returns whether more results follow.
fn on_ok(conn: &mut MyConn, outcome: &mut Outcome, body: &[u8]) -> Result<bool, MyBackendError> {
    let ok = OkPacket::parse(body, conn.capabilities)?;
    let changes = conn.note_ok(&ok);
    outcome.status = ok.status;
    if ok.last_insert_id != 0 {
        outcome.last_insert_id = ok.last_insert_id;
    }
    for (k, v) in changes.variables {
        super::backend::set_var(&mut outcome.changes.variables, &k, &v);
    }
    if changes.schema.is_some() {
        outcome.changes.schema = changes.schema;
    }
    outcome.changes.state_changed |= changes.state_changed;
    Ok(ok.status & status::MORE_RESULTS_EXISTS != 0)
}
