//! Spare buffers, per thread. An idle client holds no buffers (thousands of idle function
//! connections are the normal case), so every transaction needs three; taking them from a short
//! per-thread list instead of malloc saves the allocator's slow path, which 50 busy clients
//! defeat its own per-thread cache on (perf showed `_int_malloc` on every transaction).

use std::cell::RefCell;

use bytes::BytesMut;

/// Spares kept per thread: enough for the transactions in flight on a worker, and a bounded
/// amount of memory (at most this many times [`KEEP_UP_TO`] bytes per thread).
const SPARES: usize = 32;
/// Larger buffers (after a big result or COPY) go back to the allocator.
const KEEP_UP_TO: usize = 16 * 1024;
/// What a new buffer starts with: a typical query or answer fits.
const START: usize = 1024;

thread_local! {
    static SPARE: RefCell<Vec<BytesMut>> = const { RefCell::new(Vec::new()) };
}

/// An empty buffer with room for a typical message.
pub fn take() -> BytesMut {
    SPARE
        .with(|s| s.borrow_mut().pop())
        .unwrap_or_else(|| BytesMut::with_capacity(START))
}

/// Returns an empty-or-not buffer; it is cleared and kept if it is of a reasonable size.
pub fn give(mut buf: BytesMut) {
    buf.clear();
    // A buffer advanced past what it sent reports only the room after that point; reserving
    // moves an empty buffer back to its start (no allocation when it is large enough).
    buf.reserve(START);
    if buf.capacity() > KEEP_UP_TO {
        return;
    }
    SPARE.with(|s| {
        let mut s = s.borrow_mut();
        if s.len() < SPARES {
            s.push(buf);
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spares_are_reused_cleared_and_bounded() {
        let mut b = take();
        b.extend_from_slice(b"hello");
        let ptr = b.as_ptr();
        // Sent and advanced past, as the session does: still the same allocation.
        bytes::Buf::advance(&mut b, 5);
        give(b);
        let again = take();
        assert!(again.is_empty());
        assert!(again.capacity() >= START);
        assert_eq!(again.as_ptr(), ptr, "the same allocation comes back");
        give(again);
        give(BytesMut::with_capacity(1 << 20)); // too large: dropped
        for _ in 0..SPARES * 2 {
            give(BytesMut::with_capacity(START));
        }
        assert!(SPARE.with(|s| s.borrow().len()) <= SPARES);
        assert!(SPARE.with(|s| s.borrow().iter().all(|b| b.capacity() <= KEEP_UP_TO)));
    }
}
