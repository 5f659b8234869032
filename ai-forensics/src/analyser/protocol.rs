//! Wire protocol of the analyser loop.
//!
//! Request: `POST <path>` with a JSON Lines body (records exactly as in the
//! event stream) and the header `X-AI-Forensics-Signature: sha256=<hex>`,
//! the HMAC-SHA256 of the body keyed with the shared token. Response: `200`
//! with a JSON Lines body of verdicts, signed the same way:
//!
//! ```json
//! {"target": 1234, "action": "kill", "reason": "read credentials", "rule": "my-model"}
//! ```
//!
//! `action` is one of `log`, `alert`, `stop`, `kill`, `resume`.
use hmac::{Hmac, Mac as _};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::{
    error::{Error, Result},
    policy::rules::Action,
};

/// Header carrying the body's signature.
pub const SIGNATURE_HEADER: &str = "X-AI-Forensics-Signature";

/// `sha256=<hex>` HMAC of `body` with `token`.
#[must_use]
pub fn sign(token: &[u8], body: &[u8]) -> String {
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(token) else {
        return String::new();
    };
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// Whether `signature` is the HMAC of `body` with `token` (constant time).
#[must_use]
pub fn verify(token: &[u8], body: &[u8], signature: Option<&str>) -> bool {
    let Some(hexsig) = signature.and_then(|s| s.trim().strip_prefix("sha256=")) else {
        return false;
    };
    let Ok(sig) = hex::decode(hexsig) else {
        return false;
    };
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(token) else {
        return false;
    };
    mac.update(body);
    mac.verify_slice(&sig).is_ok()
}

/// A verdict as sent by an analyser.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct WireVerdict {
    /// Process id the verdict is about.
    pub target: u32,
    /// `log`, `alert`, `stop`, `kill` or `resume`.
    pub action: String,
    /// Why.
    #[serde(default)]
    pub reason: String,
    /// Rule or model that decided.
    #[serde(default)]
    pub rule: String,
}

/// Most bytes accepted in a verdict body.
pub const MAX_VERDICT_BODY: usize = 1 << 20;

/// Parses a verdict body (JSON Lines; blank lines ignored).
pub fn parse_verdicts(body: &[u8]) -> Result<Vec<(u32, Action, String, String)>> {
    if body.len() > MAX_VERDICT_BODY {
        return Err(Error::Runtime(format!(
            "verdict body of {} bytes is too large",
            body.len()
        )));
    }
    let text = std::str::from_utf8(body)
        .map_err(|_| Error::Runtime("verdict body is not UTF-8".into()))?;
    let mut out = Vec::new();
    for (i, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let v: WireVerdict = serde_json::from_str(line)
            .map_err(|e| Error::Runtime(format!("verdict line {}: {e}", i + 1)))?;
        let action = Action::parse(&v.action).ok_or_else(|| {
            Error::Runtime(format!(
                "verdict line {}: unknown action '{}'",
                i + 1,
                v.action
            ))
        })?;
        out.push((v.target, action, v.reason, v.rule));
    }
    Ok(out)
}

/// Reads a token file: its first line, without surrounding whitespace.
pub fn read_token(path: &std::path::Path) -> Result<Vec<u8>> {
    use std::os::unix::fs::PermissionsExt as _;
    let meta = std::fs::metadata(path)
        .map_err(|e| Error::usage(format!("token file {}: {e}", path.display())))?;
    if meta.permissions().mode() & 0o077 != 0 {
        tracing::warn!(
            "token file {} is readable by others (mode {:o}); chmod 600 it",
            path.display(),
            meta.permissions().mode() & 0o777
        );
    }
    let t = std::fs::read_to_string(path)
        .map_err(|e| Error::usage(format!("token file {}: {e}", path.display())))?;
    let t = t.lines().next().unwrap_or("").trim().to_owned();
    if t.len() < 16 {
        return Err(Error::usage(format!(
            "token file {}: the token must be at least 16 characters",
            path.display()
        )));
    }
    Ok(t.into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures() {
        let s = sign(b"secret-secret-secret", b"body");
        assert!(s.starts_with("sha256=") && s.len() == 7 + 64);
        assert!(verify(b"secret-secret-secret", b"body", Some(&s)));
        assert!(!verify(b"secret-secret-secret", b"bodY", Some(&s)));
        assert!(!verify(b"other-other-other-x", b"body", Some(&s)));
        assert!(!verify(b"secret-secret-secret", b"body", None));
        assert!(!verify(b"secret-secret-secret", b"body", Some("sha256=zz")));
    }

    #[test]
    fn verdicts() {
        let v = parse_verdicts(b"{\"target\": 5, \"action\": \"kill\", \"reason\": \"x\"}\n\n")
            .unwrap();
        assert_eq!(v, vec![(5, Action::Kill, "x".into(), String::new())]);
        assert!(parse_verdicts(b"{\"target\": 5, \"action\": \"nuke\"}").is_err());
        assert!(parse_verdicts(b"garbage").is_err());
        assert!(parse_verdicts(b"{\"target\": 5, \"action\": \"kill\", \"extra\": 1}").is_err());
        assert!(parse_verdicts(b"").unwrap().is_empty());
    }
}
