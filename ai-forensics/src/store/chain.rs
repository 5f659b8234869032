//! The hash chain that seals a session's events.
//!
//! Each batch of events is sealed when it is committed: its digest is
//! SHA-256 over the previous batch's digest, the batch header (number, first
//! and last sequence numbers, count, records lost just before it) and every
//! record (sequence number, length, JSON text) in sequence order. Changing,
//! removing, adding or reordering anything breaks the chain at the first
//! batch involved. The final digest is printed when a session ends, so it can
//! be kept elsewhere (a ticket, a log) as an anchor.
use rusqlite::params;
use sha2::{Digest as _, Sha256};

use super::Store;
use crate::error::Result;

/// Digest of the (empty) chain before the first batch.
pub const GENESIS: [u8; 32] = [0; 32];

/// Header of a sealed batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BatchHeader {
    /// Batch number, from 1.
    pub batch: u64,
    /// First sequence number.
    pub first_seq: u64,
    /// Last sequence number.
    pub last_seq: u64,
    /// Records in the batch.
    pub count: u64,
    /// Records lost by the store just before this batch.
    pub gap_before: u64,
}

/// Incremental digest of one batch.
pub struct Sealer(Sha256);

impl Sealer {
    /// Starts a batch after `prev`.
    #[must_use]
    pub fn new(prev: &[u8; 32], h: &BatchHeader) -> Self {
        let mut s = Sha256::new();
        s.update(b"ai-forensics/batch/v1");
        s.update(prev);
        for v in [h.batch, h.first_seq, h.last_seq, h.count, h.gap_before] {
            s.update(v.to_le_bytes());
        }
        Self(s)
    }

    /// Adds one record.
    pub fn record(&mut self, seq: u64, json: &str) {
        self.0.update(seq.to_le_bytes());
        self.0.update((json.len() as u64).to_le_bytes());
        self.0.update(json.as_bytes());
    }

    /// The batch's digest.
    #[must_use]
    pub fn finish(self) -> [u8; 32] {
        self.0.finalize().into()
    }
}

/// What verification found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Every batch checks out.
    Intact {
        /// Batches checked.
        batches: u64,
        /// Records checked.
        events: u64,
        /// Digest of the last batch (hex).
        final_digest: String,
    },
    /// The first batch that does not check out.
    Broken {
        /// Its number.
        batch: u64,
        /// `altered`, `removed`, `added` or `reordered`.
        kind: &'static str,
        /// Details.
        detail: String,
    },
}

type Sealed = (BatchHeader, String, String);

fn sealed_batches(store: &Store, id: i64) -> Result<Vec<Sealed>> {
    let mut st = store
        .conn
        .prepare("SELECT batch, first_seq, last_seq, count, gap_before, prev_digest, digest FROM batches WHERE session_id = ?1 ORDER BY batch")
        .map_err(|e| store.err(&e))?;
    let rows = st
        .query_map(params![id], |r| {
            Ok((
                BatchHeader {
                    batch: r.get::<_, i64>(0)? as u64,
                    first_seq: r.get::<_, i64>(1)? as u64,
                    last_seq: r.get::<_, i64>(2)? as u64,
                    count: r.get::<_, i64>(3)? as u64,
                    gap_before: r.get::<_, i64>(4)? as u64,
                },
                r.get(5)?,
                r.get(6)?,
            ))
        })
        .map_err(|e| store.err(&e))?
        .collect::<std::result::Result<_, _>>()
        .map_err(|e| store.err(&e))?;
    Ok(rows)
}

/// A run of records with the same batch number, in sequence order.
struct Group {
    batch: u64,
    count: u64,
    first: u64,
    last: u64,
    sealer: Option<Sealer>,
}

/// Verifies the chain of session `id`, in one pass over its records in
/// sequence order.
pub fn verify(store: &Store, id: i64) -> Result<Verdict> {
    let batches = sealed_batches(store, id)?;
    let (lo, hi) = super::session_range(id);
    let present: std::collections::BTreeSet<u64> = {
        let mut st = store
            .conn
            .prepare("SELECT DISTINCT batch FROM events WHERE id BETWEEN ?1 AND ?2")
            .map_err(|e| store.err(&e))?;
        st.query_map(params![lo, hi], |r| Ok(r.get::<_, i64>(0)? as u64))
            .map_err(|e| store.err(&e))?
            .collect::<std::result::Result<_, _>>()
            .map_err(|e| store.err(&e))?
    };
    let sealed: std::collections::BTreeSet<u64> = batches.iter().map(|b| b.0.batch).collect();
    let mut st = store
        .conn
        .prepare("SELECT seq, batch, record FROM events WHERE id BETWEEN ?1 AND ?2 ORDER BY id")
        .map_err(|e| store.err(&e))?;
    let mut rows = st.query(params![lo, hi]).map_err(|e| store.err(&e))?;
    let mut prev = GENESIS;
    let mut idx = 0usize;
    let mut total = 0u64;
    let mut group: Option<Group> = None;

    // Checks a finished group against the sealed header it should match.
    let close =
        |g: Group, idx: &mut usize, prev: &mut [u8; 32], total: &mut u64| -> Option<Verdict> {
            let broken = |batch, kind, detail: String| {
                Some(Verdict::Broken {
                    batch,
                    kind,
                    detail,
                })
            };
            let (h, stored_prev, stored_digest) = &batches[*idx];
            if g.count < h.count {
                return broken(
                    h.batch,
                    "removed",
                    format!(
                        "{} of its {} records are missing",
                        h.count - g.count,
                        h.count
                    ),
                );
            }
            if g.count > h.count {
                return broken(
                    h.batch,
                    "added",
                    format!(
                        "{} records more than the {} sealed",
                        g.count - h.count,
                        h.count
                    ),
                );
            }
            if g.first != h.first_seq || g.last != h.last_seq {
                return broken(
                    h.batch,
                    "reordered",
                    "its records are not the sealed sequence range".into(),
                );
            }
            if stored_prev != &hex::encode(*prev) {
                return broken(
                    h.batch,
                    "reordered",
                    "its link to the previous batch does not match".into(),
                );
            }
            let d = g.sealer.map(Sealer::finish).unwrap_or_default();
            if hex::encode(d) != *stored_digest {
                return broken(
                    h.batch,
                    "altered",
                    "its records do not match the sealed digest".into(),
                );
            }
            *prev = d;
            *idx += 1;
            *total += h.count;
            None
        };

    while let Some(r) = rows.next().map_err(|e| store.err(&e))? {
        let seq = r.get::<_, i64>(0).map_err(|e| store.err(&e))? as u64;
        let batch = r.get::<_, i64>(1).map_err(|e| store.err(&e))? as u64;
        let rec: String = r.get(2).map_err(|e| store.err(&e))?;
        if group.as_ref().is_none_or(|g| g.batch != batch) {
            if let Some(g) = group.take()
                && let Some(v) = close(g, &mut idx, &mut prev, &mut total)
            {
                return Ok(v);
            }
            let Some((h, _, _)) = batches.get(idx) else {
                return Ok(Verdict::Broken {
                    batch,
                    kind: "added",
                    detail: "records in a batch that was never sealed".into(),
                });
            };
            if h.batch != idx as u64 + 1 {
                return Ok(Verdict::Broken {
                    batch: idx as u64 + 1,
                    kind: "removed",
                    detail: format!("batch {} is missing (next is {})", idx + 1, h.batch),
                });
            }
            if batch != h.batch {
                let kind = if !present.contains(&h.batch) {
                    "removed"
                } else if sealed.contains(&batch) {
                    "reordered"
                } else {
                    "added"
                };
                return Ok(Verdict::Broken {
                    batch: h.batch,
                    kind,
                    detail: format!(
                        "found records of batch {batch} where batch {} should be",
                        h.batch
                    ),
                });
            }
            group = Some(Group {
                batch,
                count: 0,
                first: seq,
                last: seq,
                sealer: Some(Sealer::new(&prev, h)),
            });
        }
        if let Some(g) = &mut group {
            if seq < g.last && g.count > 0 {
                return Ok(Verdict::Broken {
                    batch: g.batch,
                    kind: "reordered",
                    detail: "sequence numbers go backwards".into(),
                });
            }
            g.count += 1;
            g.last = seq;
            if let Some(s) = &mut g.sealer {
                s.record(seq, &rec);
            }
        }
    }
    if let Some(g) = group.take()
        && let Some(v) = close(g, &mut idx, &mut prev, &mut total)
    {
        return Ok(v);
    }
    if let Some((h, _, _)) = batches.get(idx) {
        return Ok(Verdict::Broken {
            batch: h.batch,
            kind: "removed",
            detail: "all of its records are missing".into(),
        });
    }
    Ok(Verdict::Intact {
        batches: batches.len() as u64,
        events: total,
        final_digest: hex::encode(prev),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_depends_on_everything() {
        let h = BatchHeader {
            batch: 1,
            first_seq: 0,
            last_seq: 1,
            count: 2,
            gap_before: 0,
        };
        let d = |h: &BatchHeader, recs: &[(u64, &str)], prev: &[u8; 32]| {
            let mut s = Sealer::new(prev, h);
            for (q, j) in recs {
                s.record(*q, j);
            }
            s.finish()
        };
        let base = d(&h, &[(0, "a"), (1, "b")], &GENESIS);
        assert_ne!(base, d(&h, &[(0, "a"), (1, "c")], &GENESIS));
        assert_ne!(base, d(&h, &[(1, "b"), (0, "a")], &GENESIS));
        assert_ne!(base, d(&h, &[(0, "a"), (1, "b")], &[1; 32]));
        assert_ne!(
            base,
            d(
                &BatchHeader { gap_before: 1, ..h },
                &[(0, "a"), (1, "b")],
                &GENESIS
            )
        );
        // Record boundaries count: "ab"+"" differs from "a"+"b".
        assert_ne!(d(&h, &[(0, "ab"), (1, "")], &GENESIS), base);
    }
}
