//! Per-syscall statistics from the kernel's exact counters.
use ai_forensics_common::{HIST_BUCKETS, SyscallStat, hist_bucket_floor};
use serde::Serialize;

use crate::syscall::table;

/// One syscall's totals.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Row {
    /// Name.
    pub syscall: String,
    /// Number.
    pub nr: u32,
    /// Calls.
    pub count: u64,
    /// Calls that failed.
    pub errors: u64,
    /// Calls with a measured duration.
    pub timed: u64,
    /// Total time in the syscall.
    pub total_ns: u64,
    /// Shortest call.
    pub min_ns: u64,
    /// Mean call.
    pub avg_ns: u64,
    /// Longest call.
    pub max_ns: u64,
    /// 99th percentile (upper bound of its histogram bucket, within 19%).
    pub p99_ns: u64,
    /// Event records of this syscall lost (ring buffer full).
    pub lost: u64,
}

/// Latency quantile `q` (0..1) from a histogram: the upper bound of the
/// bucket holding it, capped at the observed maximum.
#[must_use]
pub fn quantile(hist: &[u64; HIST_BUCKETS], q: f64, max_ns: u64) -> u64 {
    let total: u64 = hist.iter().sum();
    if total == 0 {
        return 0;
    }
    let rank = ((total as f64) * q).ceil().max(1.0) as u64;
    let mut seen = 0;
    for (b, n) in hist.iter().enumerate() {
        seen += n;
        if seen >= rank {
            let upper = if b + 1 < HIST_BUCKETS {
                hist_bucket_floor(b + 1).saturating_sub(1)
            } else {
                max_ns
            };
            return upper.min(max_ns).max(hist_bucket_floor(b));
        }
    }
    max_ns
}

/// Rows for every syscall with calls, most called first.
#[must_use]
pub fn rows(stats: &[SyscallStat]) -> Vec<Row> {
    let mut v: Vec<Row> = stats
        .iter()
        .enumerate()
        .filter(|(_, s)| s.count > 0 || s.errors > 0)
        .map(|(nr, s)| row(nr as u32, s))
        .collect();
    v.sort_by(|a, b| b.count.cmp(&a.count).then(a.nr.cmp(&b.nr)));
    v
}

fn row(nr: u32, s: &SyscallStat) -> Row {
    Row {
        syscall: table::display_name(nr),
        nr,
        count: s.count,
        errors: s.errors,
        timed: s.timed,
        total_ns: s.total_ns,
        min_ns: s.min_ns,
        avg_ns: s.total_ns.checked_div(s.timed).unwrap_or(0),
        max_ns: s.max_ns,
        p99_ns: quantile(&s.hist, 0.99, s.max_ns),
        lost: s.lost,
    }
}

/// `now - before` per syscall (for the live table's per-interval view).
#[must_use]
pub fn delta(now: &[SyscallStat], before: &[SyscallStat]) -> Vec<SyscallStat> {
    now.iter()
        .zip(before.iter())
        .map(|(n, b)| {
            let mut d = *n;
            d.count = n.count.saturating_sub(b.count);
            d.errors = n.errors.saturating_sub(b.errors);
            d.timed = n.timed.saturating_sub(b.timed);
            d.total_ns = n.total_ns.saturating_sub(b.total_ns);
            for (h, hb) in d.hist.iter_mut().zip(b.hist.iter()) {
                *h = h.saturating_sub(*hb);
            }
            d
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use ai_forensics_common::hist_bucket;

    #[test]
    fn quantiles() {
        let mut h = [0u64; HIST_BUCKETS];
        for ns in 1..=1000u64 {
            h[hist_bucket(ns * 100)] += 1;
        }
        let p99 = quantile(&h, 0.99, 100_000);
        assert!((99_000..=100_000 * 120 / 100).contains(&p99), "{p99}");
        let p50 = quantile(&h, 0.5, 100_000);
        assert!((50_000..=60_000).contains(&p50), "{p50}");
        assert_eq!(quantile(&[0; HIST_BUCKETS], 0.99, 0), 0);
    }

    #[test]
    fn rows_sorted_and_deltas() {
        let mut s = vec![SyscallStat::default(); 4];
        s[1].count = 5;
        s[1].timed = 5;
        s[1].total_ns = 50;
        s[3].count = 9;
        let r = rows(&s);
        assert_eq!(r.iter().map(|r| r.nr).collect::<Vec<_>>(), vec![3, 1]);
        assert_eq!(r[1].avg_ns, 10);
        let d = delta(
            &s,
            &vec![
                SyscallStat {
                    count: 2,
                    ..Default::default()
                };
                4
            ],
        );
        assert_eq!(d[3].count, 7);
        assert_eq!(d[0].count, 0);
    }
}
