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

impl Error {
    /// A bad-input error.
    pub fn usage(msg: impl Into<String>) -> Self {
        Self::Usage(msg.into())
    }

    /// An environment error.
    pub fn env(msg: impl Into<String>) -> Self {
        Self::Environment(msg.into())
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
