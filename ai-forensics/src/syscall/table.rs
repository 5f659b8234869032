//! Syscall numbers and names of the machine's architecture, from the
//! `syscalls` crate's per-architecture tables (x86_64 and aarch64 differ:
//! aarch64 has no `open`, `stat`, `fork`...).
use ai_forensics_common::MAX_SYSCALLS;
use syscalls::Sysno;

/// Name of syscall `nr`, if the architecture has one.
#[must_use]
pub fn name(nr: u32) -> Option<&'static str> {
    Sysno::new(nr as usize).map(|s| s.name())
}

/// Name of syscall `nr`, or `syscall_<nr>` for unknown numbers.
#[must_use]
pub fn display_name(nr: u32) -> String {
    name(nr).map_or_else(|| format!("syscall_{nr}"), str::to_owned)
}

/// Number of the syscall called `name` on this architecture.
#[must_use]
pub fn number(name: &str) -> Option<u32> {
    name.parse::<Sysno>().ok().map(|s| s.id() as u32)
}

/// Every syscall of the architecture that fits the kernel tables.
pub fn all() -> impl Iterator<Item = (u32, &'static str)> {
    Sysno::iter()
        .map(|s| (s.id() as u32, s.name()))
        .filter(|(nr, _)| *nr < MAX_SYSCALLS)
}

/// Name of errno `e` (positive), such as `ENOENT`.
#[must_use]
pub fn errno_name(e: i64) -> Option<&'static str> {
    i32::try_from(e)
        .ok()
        .and_then(|e| syscalls::Errno::new(e).name())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for (nr, n) in all() {
            assert_eq!(number(n), Some(nr), "{n}");
            assert_eq!(name(nr), Some(n));
        }
    }

    #[test]
    fn arch_specific_numbers() {
        #[cfg(target_arch = "x86_64")]
        {
            assert_eq!(number("read"), Some(0));
            assert_eq!(number("openat"), Some(257));
            assert_eq!(number("open"), Some(2));
        }
        #[cfg(target_arch = "aarch64")]
        {
            assert_eq!(number("read"), Some(63));
            assert_eq!(number("open"), None);
        }
        assert_eq!(number("no_such_call"), None);
        assert_eq!(
            display_name(MAX_SYSCALLS + 5),
            format!("syscall_{}", MAX_SYSCALLS + 5)
        );
    }

    #[test]
    fn errno_names() {
        assert_eq!(errno_name(2), Some("ENOENT"));
        assert_eq!(errno_name(13), Some("EACCES"));
        assert_eq!(errno_name(100_000), None);
    }
}
