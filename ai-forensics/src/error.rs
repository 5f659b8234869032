//! Errors of the library, and the exit code each one maps to.
//!
//! Anything the user can fix (a bad flag, a missing PID, not running as
//! root, a kernel without a needed feature) exits with 2 and one line; a
//! failure while recording exits with 1.
use std::io;

/// Result alias of the library.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// An error of ai-forensics.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Bad input: flags, PIDs, files, patterns.
    #[error("{0}")]
    Usage(String),
    /// The machine cannot do it: privileges, kernel features, tracefs.
    #[error("{0}")]
    Environment(String),
    /// An I/O operation failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// Loading or attaching the eBPF programs failed.
    #[error("{context}: {message}")]
    Bpf {
        /// What was being done.
        context: String,
        /// The loader's message, with the verifier log's last line when any.
        message: String,
    },
    /// Anything else that went wrong while recording.
    #[error("{0}")]
    Runtime(String),
}

/// `msg` on one line: control characters (newlines, terminal escapes) that
/// came in with untrusted input (a rule name, a path, a syscall name) are
/// written as escapes, so an error is always one line on the terminal and
/// in logs.
#[must_use]
pub fn one_line(msg: &str) -> String {
    if !msg.chars().any(char::is_control) {
        return msg.to_owned();
    }
    let mut out = String::with_capacity(msg.len() + 8);
    for c in msg.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => out.push_str(&format!("\\u{{{:x}}}", u32::from(c))),
            c => out.push(c),
        }
    }
    out
}

impl Error {
    /// A bad-input error (kept to one line).
    pub fn usage(msg: impl Into<String>) -> Self {
        Self::Usage(one_line(&msg.into()))
    }

    /// An environment error (kept to one line).
    pub fn env(msg: impl Into<String>) -> Self {
        Self::Environment(one_line(&msg.into()))
    }

    /// An I/O error with context.
    pub fn io(context: impl Into<String>, source: io::Error) -> Self {
        Self::Io {
            context: context.into(),
            source,
        }
    }

    /// The process exit code for this error.
    #[must_use]
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Usage(_) | Self::Environment(_) | Self::Bpf { .. } => 2,
            Self::Io { .. } | Self::Runtime(_) => 1,
        }
    }

    /// Whether the error is a closed output pipe (`| head`), which ends
    /// the program quietly.
    #[must_use]
    pub fn is_broken_pipe(&self) -> bool {
        matches!(self, Self::Io { source, .. } if source.kind() == io::ErrorKind::BrokenPipe)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Found by fuzzing the rule parser: a syscall name with a newline in a
    /// rule file made its error two lines.
    #[test]
    fn errors_stay_on_one_line() {
        let e = Error::usage("rule 'x': unknown syscall 'open\n\u{1b}[31mfake'");
        assert_eq!(
            e.to_string(),
            "rule 'x': unknown syscall 'open\\n\\u{1b}[31mfake'"
        );
        assert_eq!(one_line("plain \\d path"), "plain \\d path");
    }

    #[test]
    fn exit_codes() {
        assert_eq!(Error::usage("x").exit_code(), 2);
        assert_eq!(Error::env("x").exit_code(), 2);
        assert_eq!(Error::Runtime("x".into()).exit_code(), 1);
        let bp = Error::io("write", io::Error::from(io::ErrorKind::BrokenPipe));
        assert!(bp.is_broken_pipe());
        assert_eq!(bp.to_string(), "write: broken pipe");
    }
}
