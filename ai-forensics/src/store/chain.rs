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

/// Verifies the chain of session `id`.
pub fn verify(store: &Store, id: i64) -> Result<Verdict> {
    let conn = &store.conn;
    let mut bstmt = conn
        .prepare("SELECT batch, first_seq, last_seq, count, gap_before, prev_digest, digest FROM batches WHERE session_id = ?1 ORDER BY batch")
        .map_err(|e| store.err(&e))?;
    let batches: Vec<(BatchHeader, String, String)> = bstmt
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
    let mut estmt = conn
        .prepare("SELECT seq, record FROM events WHERE session_id = ?1 AND batch = ?2 ORDER BY seq")
        .map_err(|e| store.err(&e))?;
    let mut prev = GENESIS;
    let mut expected_batch = 1u64;
    let mut next_seq: Option<u64> = None;
    let mut total = 0u64;
    for (h, stored_prev, stored_digest) in &batches {
        let broken = |kind, detail: String| {
            Ok(Verdict::Broken {
                batch: h.batch,
                kind,
                detail,
            })
        };
        if h.batch != expected_batch {
            return broken(
                "removed",
                format!("batch {expected_batch} is missing (next is {})", h.batch),
            );
        }
        if stored_prev != &hex::encode(prev) {
            return broken(
                "reordered",
                "its link to the previous batch does not match".into(),
            );
        }
        if let Some(n) = next_seq
            && h.first_seq < n
        {
            return broken(
                "reordered",
                format!(
                    "starts at record {} before the previous batch ended at {}",
                    h.first_seq,
                    n - 1
                ),
            );
        }
        let rows: Vec<(u64, String)> = estmt
            .query_map(params![id, h.batch as i64], |r| {
                Ok((r.get::<_, i64>(0)? as u64, r.get(1)?))
            })
            .map_err(|e| store.err(&e))?
            .collect::<std::result::Result<_, _>>()
            .map_err(|e| store.err(&e))?;
        if (rows.len() as u64) < h.count {
            return broken(
                "removed",
                format!(
                    "{} of its {} records are missing",
                    h.count - rows.len() as u64,
                    h.count
                ),
            );
        }
        if (rows.len() as u64) > h.count {
            return broken(
                "added",
                format!(
                    "{} records more than the {} sealed",
                    rows.len() as u64 - h.count,
                    h.count
                ),
            );
        }
        if rows.first().map(|r| r.0) != Some(h.first_seq)
            || rows.last().map(|r| r.0) != Some(h.last_seq)
        {
            return broken(
                "reordered",
                "its records are not the sealed sequence range".into(),
            );
        }
        let mut s = Sealer::new(&prev, h);
        for (seq, json) in &rows {
            s.record(*seq, json);
        }
        let d = s.finish();
        if hex::encode(d) != *stored_digest {
            return broken(
                "altered",
                "its records do not match the sealed digest".into(),
            );
        }
        prev = d;
        expected_batch += 1;
        next_seq = Some(h.last_seq + 1);
        total += h.count;
    }
    let all: i64 = conn
        .query_row(
            "SELECT count(*) FROM events WHERE session_id = ?1",
            params![id],
            |r| r.get(0),
        )
        .map_err(|e| store.err(&e))?;
    if all as u64 != total {
        return Ok(Verdict::Broken {
            batch: expected_batch,
            kind: if (all as u64) > total {
                "added"
            } else {
                "removed"
            },
            detail: format!("{all} records in the store, {total} sealed"),
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
