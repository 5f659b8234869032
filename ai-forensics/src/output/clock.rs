//! Converting the kernel's monotonic timestamps to wall-clock time.
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Offset between CLOCK_REALTIME and CLOCK_MONOTONIC, taken once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Clock {
    /// Realtime minus monotonic, in ns.
    pub offset_ns: i128,
}

fn now_ns(clock: libc::clockid_t) -> i128 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes to the local timespec.
    unsafe { libc::clock_gettime(clock, &raw mut ts) };
    i128::from(ts.tv_sec) * 1_000_000_000 + i128::from(ts.tv_nsec)
}

impl Clock {
    /// Measures the offset now.
    #[must_use]
    pub fn new() -> Self {
        let mono = now_ns(libc::CLOCK_MONOTONIC);
        let real = now_ns(libc::CLOCK_REALTIME);
        Self {
            offset_ns: real - mono,
        }
    }

    /// Current monotonic time in ns (the kernel records' clock).
    #[must_use]
    pub fn monotonic_now() -> u64 {
        now_ns(libc::CLOCK_MONOTONIC) as u64
    }

    /// Wall-clock time of monotonic `ts_ns`.
    #[must_use]
    pub fn wall(&self, ts_ns: u64) -> SystemTime {
        let ns = (i128::from(ts_ns) + self.offset_ns).max(0);
        UNIX_EPOCH + Duration::from_nanos(ns as u64)
    }

    /// Nanoseconds since the epoch of monotonic `ts_ns`.
    #[must_use]
    pub fn unix_ns(&self, ts_ns: u64) -> u64 {
        (i128::from(ts_ns) + self.offset_ns).max(0) as u64
    }

    /// RFC 3339 UTC text with nanoseconds.
    #[must_use]
    pub fn rfc3339(&self, ts_ns: u64) -> String {
        humantime::format_rfc3339_nanos(self.wall(ts_ns)).to_string()
    }

    /// `HH:MM:SS.nnnnnnnnn` (UTC) for text output.
    #[must_use]
    pub fn time_of_day(&self, ts_ns: u64) -> String {
        let s = self.rfc3339(ts_ns);
        s.get(11..s.len() - 1).unwrap_or(&s).to_owned()
    }
}

impl Default for Clock {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conversion() {
        let c = Clock {
            offset_ns: 1_700_000_000_000_000_000,
        };
        assert_eq!(c.rfc3339(123), "2023-11-14T22:13:20.000000123Z");
        assert_eq!(c.time_of_day(123), "22:13:20.000000123");
        let live = Clock::new();
        let w = live.wall(Clock::monotonic_now());
        let diff = SystemTime::now().duration_since(w).unwrap_or_default();
        assert!(diff < Duration::from_secs(1));
    }
}
