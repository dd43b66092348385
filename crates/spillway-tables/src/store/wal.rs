//! The redo log (`tables.wal`): what makes a round of item writes durable with one small
//! sequential write and one fdatasync, instead of a durable redb commit.
//!
//! Why: a durable redb commit writes back every B-tree page the round dirtied and fsyncs
//! twice. PutItems of scattered keys dirty a leaf each, so a round of 40 PutItems wrote ~80
//! pages of 4 KiB (`strace`: 2 `pwrite64` per PutItem) and that write-back was the largest
//! part of a PutItem's server CPU (docs/BENCHMARKS.md, "Tables: the redo log"). With the log,
//! a round of item writes is committed to redb without durability (visible to readers, kept
//! in redb's bounded write buffer) only after its changes are in the log and fsync'd, so an
//! acknowledged write is on disk in the log or in redb; a checkpoint (a durable redb commit,
//! which also persists every earlier non-durable one) lets the log start over.
//!
//! Frames, one per logged round, appended and fsync'd before the round commits:
//!
//! ```text
//! frame := len: u32 LE (of body) | crc32(body): u32 LE | body
//! body  := epoch: u64 LE | changes (postcard, back to back)
//! ```
//!
//! The file is filled with zeros ahead of the frames, a MiB at a time as the log first
//! reaches it (up to about [`CHECKPOINT_BYTES`], so a stack that writes no items has an empty
//! log), and written over from its start after every checkpoint, never truncated: an
//! fdatasync of data written into a file's existing blocks flushes only those blocks, while
//! one after an append must also commit the new size through ext4's journal (measured here:
//! 50 against 80 µs of CPU and 135 against 220 µs of latency per 12 KB write and fdatasync).
//!
//! `epoch` is the checkpoint the frame follows, stored in redb (`sequence["wal_epoch"]`) by
//! each checkpoint's own durable commit before any frame of the epoch is written: at open
//! only frames of the stored epoch are replayed, so what is left of the log from before a
//! checkpoint (which the checkpoint covers) is skipped. A frame of the current epoch is
//! written only after the previous one was fsync'd, from the file's start, so they form a
//! prefix: replay stops at the first short or corrupt frame (a torn frame's round was never
//! acknowledged) or at the zeros past the last one.

use std::fs::File;
use std::io::Read;
use std::path::Path;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::StoreError;

/// A log this long is checkpointed at the next round (bounds replay time at start and the
/// file's size).
const CHECKPOINT_BYTES: u64 = 2 * 1024 * 1024;
/// Zeros written ahead of the frames at a time.
const PREFILL_CHUNK: u64 = 1024 * 1024;
/// A log this old is checkpointed at the next round (bounds what redb's write buffer holds
/// and what a restart replays when writes are few).
const CHECKPOINT_EVERY: Duration = Duration::from_secs(10);
/// The frame header: length and CRC.
const HEADER: usize = 8;
/// The largest frame: a round whose changes are larger (512 jobs may each be a 16 MB
/// BatchWriteItem) is made durable by a checkpoint instead, and a replay takes a larger
/// length for the end of the log.
pub(crate) const MAX_FRAME: usize = 64 * 1024 * 1024;

/// Which of a table's redb tables a change is to (their names are made from the id).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub(crate) enum Tree {
    Items(u64),
    Index(u64),
    Ttl(u64),
}

impl Tree {
    pub(crate) fn name(self) -> String {
        match self {
            Tree::Items(id) => super::items_table(id),
            Tree::Index(id) => super::index_table(id),
            Tree::Ttl(id) => super::ttl_table(id),
        }
    }
}

/// One change as logged: the value a key ends with, not the operation that led to it, so
/// replaying a change twice is harmless.
#[derive(Debug, PartialEq, Serialize, Deserialize)]
pub(crate) enum Change<'a> {
    Put {
        tree: Tree,
        key: &'a [u8],
        value: &'a [u8],
    },
    Remove {
        tree: Tree,
        key: &'a [u8],
    },
    /// A table's or index's counters (item count, bytes).
    Stats {
        id: u64,
        count: u64,
        bytes: u64,
    },
    /// A transaction's idempotency token (fingerprint and time).
    Token {
        token: &'a str,
        value: &'a [u8],
    },
}

/// A frame being built by a round.
pub(crate) struct Frame {
    buf: Vec<u8>,
    changes: usize,
}

impl Frame {
    pub(crate) fn new(epoch: u64) -> Frame {
        let mut buf = Vec::with_capacity(16 * 1024);
        buf.extend_from_slice(&[0; HEADER]);
        buf.extend_from_slice(&epoch.to_le_bytes());
        Frame { buf, changes: 0 }
    }

    pub(crate) fn push(&mut self, change: &Change<'_>) -> Result<(), StoreError> {
        let buf = std::mem::take(&mut self.buf);
        self.buf = postcard::to_extend(change, buf)
            .map_err(|e| StoreError::Io(format!("encoding a log record: {e}")))?;
        self.changes += 1;
        Ok(())
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.changes == 0
    }

    /// Bytes of the frame's body so far.
    pub(crate) fn len(&self) -> usize {
        self.buf.len() - HEADER
    }

    /// The frame's bytes, header filled in.
    fn seal(&mut self) -> Result<&[u8], StoreError> {
        let body = self.buf.get(HEADER..).unwrap_or_default();
        let len = u32::try_from(body.len())
            .map_err(|_| StoreError::Io("a log frame over 4 GiB".into()))?;
        let crc = crc32fast::hash(body);
        self.buf[..4].copy_from_slice(&len.to_le_bytes());
        self.buf[4..8].copy_from_slice(&crc.to_le_bytes());
        Ok(&self.buf)
    }
}

/// The open log, used by the writer thread only.
pub(crate) struct Wal {
    file: File,
    /// Bytes of whole frames in the file (where the next frame goes).
    len: u64,
    /// The file's size: frames and the zeros (or older frames) after them.
    size: u64,
    /// Where the last frame appended starts (until the next one, or a retraction).
    last: Option<u64>,
    /// The epoch new frames carry: the last checkpoint's.
    pub(crate) epoch: u64,
    checkpointed_at: Instant,
}

impl Wal {
    /// Opens the log (after a replay, which made it a checkpoint's: frames of `epoch` start
    /// at its beginning).
    pub(crate) fn open(path: &Path, epoch: u64) -> Result<Wal, StoreError> {
        let io = |e: std::io::Error| StoreError::Io(format!("{}: {e}", path.display()));
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(io)?;
        let size = file.metadata().map_err(io)?.len();
        Ok(Wal {
            file,
            len: 0,
            size,
            last: None,
            epoch,
            checkpointed_at: Instant::now(),
        })
    }

    /// Whether the next round should be a checkpoint.
    pub(crate) fn checkpoint_due(&self) -> bool {
        self.len >= CHECKPOINT_BYTES
            || (self.len > 0 && self.checkpointed_at.elapsed() >= CHECKPOINT_EVERY)
    }

    /// Writes a frame after the last one and makes it durable. After a failure the next frame
    /// goes where this one was: what is left of it lies past the log's end.
    pub(crate) fn append(&mut self, frame: &mut Frame) -> Result<(), StoreError> {
        use std::os::unix::fs::FileExt;
        let bytes = frame.seal()?;
        let end = self.len + bytes.len() as u64;
        if end > self.size {
            self.prefill(end)?;
        }
        let written = self
            .file
            .write_all_at(bytes, self.len)
            .and_then(|()| self.file.sync_data());
        if let Err(e) = written {
            self.erase_at(self.len);
            return Err(StoreError::Io(format!("writing the table log: {e}")));
        }
        self.last = Some(self.len);
        self.len += bytes.len() as u64;
        Ok(())
    }

    /// Takes back the frame just appended: its round failed after all (its commit did), and
    /// its callers are told so.
    pub(crate) fn retract(&mut self) {
        if let Some(at) = self.last.take() {
            self.erase_at(at);
            self.len = at;
        }
    }

    /// Zeroes a frame's header where the disk still lets us, so that a replay ends before it
    /// rather than apply a round that was refused (a frame left whole would read as written).
    fn erase_at(&mut self, at: u64) {
        use std::os::unix::fs::FileExt;
        let _ = self
            .file
            .write_all_at(&[0; HEADER], at)
            .and_then(|()| self.file.sync_data());
    }

    /// Grows the file with zeros to hold `end` (rounded up to a whole chunk), durably.
    fn prefill(&mut self, end: u64) -> Result<(), StoreError> {
        use std::os::unix::fs::FileExt;
        let target = end.div_ceil(PREFILL_CHUNK) * PREFILL_CHUNK;
        let zeros = vec![0u8; PREFILL_CHUNK as usize];
        let mut at = self.size;
        while at < target {
            let n = (target - at).min(PREFILL_CHUNK) as usize;
            self.file
                .write_all_at(&zeros[..n], at)
                .map_err(|e| StoreError::Io(format!("growing the table log: {e}")))?;
            at += n as u64;
        }
        self.file
            .sync_all()
            .map_err(|e| StoreError::Io(format!("growing the table log: {e}")))?;
        self.size = target;
        Ok(())
    }

    /// Starts the log over after a checkpoint whose commit stored `epoch`; the frames left
    /// in the file are of older epochs, which a replay skips.
    pub(crate) fn restart(&mut self, epoch: u64) {
        self.len = 0;
        self.last = None;
        self.epoch = epoch;
        self.checkpointed_at = Instant::now();
    }
}

/// The log's bytes, or nothing if there is no log yet.
pub(crate) fn read(path: &Path) -> Result<Vec<u8>, StoreError> {
    let mut bytes = Vec::new();
    match File::open(path) {
        Ok(mut f) => {
            f.read_to_end(&mut bytes)
                .map_err(|e| StoreError::Io(format!("{}: {e}", path.display())))?;
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(StoreError::Io(format!("{}: {e}", path.display()))),
    }
    Ok(bytes)
}

/// Calls `apply` with every change of the whole frames of `epoch` in `log`, in order; the
/// number of frames applied. Frames of other epochs are skipped; the first short or corrupt
/// frame ends the log.
pub(crate) fn replay(
    log: &[u8],
    epoch: u64,
    mut apply: impl FnMut(Change<'_>) -> Result<(), StoreError>,
) -> Result<usize, StoreError> {
    let mut rest = log;
    let mut frames = 0;
    while let Some((body, after)) = next_frame(rest) {
        rest = after;
        let (Some(e), Some(mut changes)) = (body.get(..8), body.get(8..)) else {
            break;
        };
        if e != epoch.to_le_bytes() {
            continue;
        }
        while !changes.is_empty() {
            let (change, more) = postcard::take_from_bytes::<Change<'_>>(changes)
                .map_err(|e| StoreError::Corrupt(format!("a table log record: {e}")))?;
            apply(change)?;
            changes = more;
        }
        frames += 1;
    }
    Ok(frames)
}

/// The next whole frame's body (its CRC checked) and what follows it.
fn next_frame(log: &[u8]) -> Option<(&[u8], &[u8])> {
    let len = u32::from_le_bytes(log.get(..4)?.try_into().ok()?) as usize;
    let crc = u32::from_le_bytes(log.get(4..8)?.try_into().ok()?);
    if len > MAX_FRAME {
        return None;
    }
    let body = log.get(HEADER..HEADER + len)?;
    (crc32fast::hash(body) == crc).then(|| (body, &log[HEADER + len..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(epoch: u64, changes: &[Change<'_>]) -> Vec<u8> {
        let mut f = Frame::new(epoch);
        for c in changes {
            f.push(c).unwrap_or_else(|e| panic!("{e}"));
        }
        f.seal().unwrap_or_else(|e| panic!("{e}")).to_vec()
    }

    fn replayed(log: &[u8], epoch: u64) -> Vec<String> {
        let mut seen = Vec::new();
        replay(log, epoch, |c| {
            seen.push(format!("{c:?}"));
            Ok(())
        })
        .unwrap_or_else(|e| panic!("{e}"));
        seen
    }

    #[test]
    fn frames_replay_in_order_and_only_for_their_epoch() {
        let put = Change::Put {
            tree: Tree::Items(3),
            key: b"k1",
            value: b"v1",
        };
        let remove = Change::Remove {
            tree: Tree::Index(4),
            key: b"k2",
        };
        let stats = Change::Stats {
            id: 3,
            count: 7,
            bytes: 700,
        };
        let token = Change::Token {
            token: "t",
            value: b"fp",
        };
        let mut log = frame(1, &[put]);
        log.extend(frame(2, &[remove, stats]));
        log.extend(frame(2, &[token]));
        assert_eq!(replayed(&log, 1).len(), 1);
        let two = replayed(&log, 2);
        assert_eq!(two.len(), 3, "{two:?}");
        assert!(two[0].starts_with("Remove"), "{two:?}");
        assert!(two[2].starts_with("Token"), "{two:?}");
        assert!(replayed(&log, 3).is_empty());
    }

    #[test]
    fn a_torn_or_corrupt_frame_ends_the_log() {
        let a = frame(
            5,
            &[Change::Put {
                tree: Tree::Ttl(1),
                key: b"a",
                value: b"",
            }],
        );
        let b = frame(
            5,
            &[Change::Put {
                tree: Tree::Ttl(1),
                key: b"b",
                value: b"",
            }],
        );
        let mut log = a.clone();
        log.extend(&b);
        assert_eq!(replayed(&log, 5).len(), 2);
        // Torn: the second frame cut anywhere.
        for cut in 1..b.len() {
            assert_eq!(replayed(&log[..a.len() + cut], 5).len(), 1, "cut at {cut}");
        }
        // Corrupt: a flipped byte in the second frame's body.
        let mut bad = log.clone();
        let last = bad.len() - 1;
        bad[last] ^= 0x40;
        assert_eq!(replayed(&bad, 5).len(), 1);
        // A length past anything sensible.
        let mut huge = a.clone();
        huge.extend_from_slice(&u32::MAX.to_le_bytes());
        huge.extend_from_slice(&[0; 12]);
        assert_eq!(replayed(&huge, 5).len(), 1);
    }

    #[test]
    fn a_retracted_frame_is_not_replayed_and_the_next_takes_its_place() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join("t.wal");
        let mut wal = Wal::open(&path, 9).unwrap_or_else(|e| panic!("{e}"));
        let put = |key: &'static [u8]| Change::Put {
            tree: Tree::Items(1),
            key,
            value: b"v",
        };
        for key in [&b"kept"[..], b"retracted"] {
            let mut f = Frame::new(9);
            f.push(&put(key)).unwrap_or_else(|e| panic!("{e}"));
            wal.append(&mut f).unwrap_or_else(|e| panic!("{e}"));
        }
        wal.retract();
        let log = read(&path).unwrap_or_else(|e| panic!("{e}"));
        let seen = replayed(&log, 9);
        assert_eq!(seen.len(), 1, "{seen:?}");
        assert!(seen[0].contains("107, 101, 112, 116"), "{seen:?}"); // b"kept"
        let mut f = Frame::new(9);
        f.push(&put(b"next")).unwrap_or_else(|e| panic!("{e}"));
        wal.append(&mut f).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            replayed(&read(&path).unwrap_or_else(|e| panic!("{e}")), 9).len(),
            2
        );
    }
}
