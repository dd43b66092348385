//! Startup parameter sets shared between sessions.
//!
//! Every client of one application logs in with the same startup parameters (its driver's
//! `client_encoding`, `DateStyle`, `application_name`...). Kept per session they were the
//! largest allocation of an idle client after its task (measured: 384 bytes of vector and about
//! 100 of strings for tokio-postgres' four). A session holds its set by `Arc`, and equal sets
//! are one allocation. Entries are weak, so a client sending endless distinct values (a random
//! `application_name` per connection) costs the table only while its sessions live.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};

/// A client's startup parameters as the server spells and normalizes them (see `params.rs`).
pub type ParamSet = Arc<[(String, String)]>;
type WeakSet = Weak<[(String, String)]>;

#[derive(Default)]
pub struct ParamSets {
    inner: Mutex<Table>,
}

#[derive(Default)]
struct Table {
    /// By fingerprint (`params::fingerprint`); a bucket holds the sets that share one.
    sets: HashMap<u64, Vec<WeakSet>>,
    /// Entries in `sets`, dead ones included.
    entries: usize,
    /// Dead entries are swept when `entries` passes this (twice the live count at the last
    /// sweep): amortized, a sweep per doubling.
    sweep_at: usize,
}

/// Fewest entries before the first sweep.
const FIRST_SWEEP: usize = 64;

impl ParamSets {
    /// The shared set equal to `wanted` (whose fingerprint is `fingerprint`), made on first use.
    pub fn intern(&self, wanted: Vec<(String, String)>, fingerprint: u64) -> ParamSet {
        let mut t = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(found) = t.sets.get(&fingerprint).and_then(|bucket| {
            bucket
                .iter()
                .filter_map(Weak::upgrade)
                .find(|s| **s == *wanted)
        }) {
            return found;
        }
        if t.entries >= t.sweep_at.max(FIRST_SWEEP) {
            t.sets.retain(|_, bucket| {
                bucket.retain(|w| w.strong_count() > 0);
                !bucket.is_empty()
            });
            t.entries = t.sets.values().map(Vec::len).sum();
            t.sweep_at = 2 * t.entries;
        }
        let set: ParamSet = wanted.into();
        t.sets
            .entry(fingerprint)
            .or_default()
            .push(Arc::downgrade(&set));
        t.entries += 1;
        set
    }

    /// Live and dead entries (for tests).
    #[cfg(test)]
    fn entries(&self) -> usize {
        self.inner.lock().map(|t| t.entries).unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pg::params::fingerprint;

    fn set(app: &str) -> Vec<(String, String)> {
        vec![
            ("client_encoding".into(), "UTF8".into()),
            ("application_name".into(), app.into()),
        ]
    }

    fn intern(sets: &ParamSets, app: &str) -> ParamSet {
        let s = set(app);
        let f = fingerprint(&s);
        sets.intern(s, f)
    }

    #[test]
    fn equal_sets_are_one_allocation_and_different_ones_are_not() {
        let sets = ParamSets::default();
        let (a, b, c) = (
            intern(&sets, "app"),
            intern(&sets, "app"),
            intern(&sets, "other"),
        );
        assert!(Arc::ptr_eq(&a, &b));
        assert!(!Arc::ptr_eq(&a, &c));
        assert_eq!(&*c, &*set("other"));
    }

    #[test]
    fn a_fingerprint_collision_does_not_mix_sets() {
        let sets = ParamSets::default();
        let a = sets.intern(set("a"), 7);
        let b = sets.intern(set("b"), 7);
        assert_eq!(&*a, &*set("a"));
        assert_eq!(&*b, &*set("b"));
        assert!(Arc::ptr_eq(&sets.intern(set("b"), 7), &b));
    }

    #[test]
    fn sets_nobody_holds_are_swept() {
        let sets = ParamSets::default();
        let kept = intern(&sets, "kept");
        for i in 0..10_000 {
            drop(intern(&sets, &format!("app-{i}")));
        }
        // Bounded by the sweeps, not by the number of distinct sets seen.
        assert!(sets.entries() <= 2 * FIRST_SWEEP, "{}", sets.entries());
        assert!(Arc::ptr_eq(&intern(&sets, "kept"), &kept));
    }
}
