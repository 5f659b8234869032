//! Selectors: which processes become targets besides explicit PIDs.
use regex::bytes::Regex;

use super::{discover, procfs::ProcInfo};
use crate::error::{Error, Result};

/// Name, executable and discovery selectors.
#[derive(Clone, Debug, Default)]
pub struct Selectors {
    /// `--comm REGEX`.
    pub comm: Option<Regex>,
    /// `--exe REGEX`.
    pub exe: Option<Regex>,
    /// `--discover`.
    pub discover: bool,
}

/// Compiles a selector regex with a one-line error.
pub fn regex(flag: &str, pattern: &str) -> Result<Regex> {
    if pattern.is_empty() {
        return Err(Error::usage(format!("{flag}: empty pattern")));
    }
    Regex::new(pattern).map_err(|e| {
        let msg = e.to_string();
        let last = msg
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("invalid pattern")
            .trim()
            .to_owned();
        Error::usage(format!("{flag}: invalid regex '{pattern}': {last}"))
    })
}

impl Selectors {
    /// Whether any selector watches for processes started later.
    #[must_use]
    pub fn watches_exec(&self) -> bool {
        self.comm.is_some() || self.exe.is_some()
    }

    /// Why a new program matches, if it does.
    #[must_use]
    pub fn match_exec(&self, comm: &[u8], filename: &[u8], exe: Option<&[u8]>) -> Option<String> {
        if let Some(re) = &self.comm
            && re.is_match(comm)
        {
            return Some(format!("comm matches {}", re.as_str()));
        }
        if let Some(re) = &self.exe
            && (re.is_match(filename) || exe.is_some_and(|e| re.is_match(e)))
        {
            return Some(format!("exe matches {}", re.as_str()));
        }
        None
    }

    /// Why a running process matches, if it does (name, executable, or
    /// with discovery an ML library in its mappings).
    #[must_use]
    pub fn match_running(&self, info: &ProcInfo) -> Option<String> {
        if let Some(r) = self.match_exec(&info.comm, info.exe.as_deref().unwrap_or_default(), None)
        {
            return Some(r);
        }
        if self.discover {
            return discover::scan_maps(info.pid).map(|f| f.reason());
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regexes() {
        assert!(
            regex("--comm", "pyth(on")
                .unwrap_err()
                .to_string()
                .starts_with("--comm: invalid regex 'pyth(on'")
        );
        assert!(regex("--comm", "").is_err());
        let s = Selectors {
            comm: Some(regex("--comm", "^python").unwrap()),
            ..Default::default()
        };
        assert!(
            s.match_exec(b"python3", b"/usr/bin/python3", None)
                .is_some()
        );
        assert!(s.match_exec(b"bash", b"/bin/bash", None).is_none());
        let e = Selectors {
            exe: Some(regex("--exe", "llama").unwrap()),
            ..Default::default()
        };
        assert!(
            e.match_exec(b"x", b"/opt/llama-server", None)
                .unwrap()
                .contains("exe matches")
        );
    }
}
