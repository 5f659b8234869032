//! Secrets never leave: credentials in captured plaintext are replaced
//! before anything is written (stream, store, exporters, report).
//!
//! Two passes. Header lines whose name marks a credential
//! (`Authorization`, `Cookie`, `X-Api-Key`, anything with `token`,
//! `secret`, `password`, `api-key`) keep their name and lose their value,
//! by a streaming machine that survives a line split across calls. Then
//! token shapes anywhere (`Bearer ...`, `sk-...`, `sk-ant-...`, `AKIA...`,
//! JSON keys like `"api_key": "..."`) are replaced, in bodies too.
use std::sync::LazyLock;

use regex::bytes::Regex;

/// What replaces a secret.
pub const MASK: &str = "[redacted]";

/// Whether a header (or JSON key) name marks a credential.
#[must_use]
pub fn sensitive_name(name: &str) -> bool {
    let n = name.trim().to_ascii_lowercase();
    let n = n.trim_start_matches(':');
    matches!(
        n,
        "authorization" | "proxy-authorization" | "cookie" | "set-cookie" | "x-api-key" | "api-key"
    ) || [
        "token",
        "secret",
        "password",
        "passwd",
        "api-key",
        "api_key",
        "apikey",
        "x-auth",
        "credential",
        "session",
    ]
    .iter()
    .any(|w| n.contains(w))
}

static TOKENS: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(concat!(
        r"(?i)(bearer|basic|token)\s+[A-Za-z0-9._~+/=-]{8,}",
        r"|sk-(ant-)?[A-Za-z0-9_-]{10,}",
        r"|AKIA[0-9A-Z]{16}",
        r"|gh[pousr]_[A-Za-z0-9]{20,}",
        r"|xox[abprs]-[A-Za-z0-9-]{10,}",
    ))
    .unwrap_or_else(|_| unreachable!("a constant pattern"))
});

static JSON_KEYS: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r#"(?i)("(?:[a-z_-]*(?:api[_-]?key|token|secret|password|authorization)[a-z_-]*)"\s*:\s*")(?:[^"\\]|\\.)*""#,
    )
    .unwrap_or_else(|_| unreachable!("a constant pattern"))
});

/// Replaces token shapes and credential-named JSON string values in `data`.
#[must_use]
pub fn tokens(data: &[u8]) -> Vec<u8> {
    let a = JSON_KEYS.replace_all(data, |c: &regex::bytes::Captures<'_>| {
        let mut v = c[1].to_vec();
        v.extend_from_slice(MASK.as_bytes());
        v.push(b'"');
        v
    });
    TOKENS
        .replace_all(&a, |c: &regex::bytes::Captures<'_>| {
            // `Bearer xyz` keeps its scheme word.
            match c.get(1) {
                Some(scheme) => {
                    let mut v = scheme.as_bytes().to_vec();
                    v.push(b' ');
                    v.extend_from_slice(MASK.as_bytes());
                    v
                }
                None => MASK.as_bytes().to_vec(),
            }
        })
        .into_owned()
}

/// The streaming header-line machine of one direction of one connection.
#[derive(Debug, Default, Clone)]
pub struct Lines {
    /// Bytes of the current line's name so far (at most 64).
    name: Vec<u8>,
    /// The current line is not a header name any more (past 64 bytes, or a
    /// byte a name cannot hold).
    not_a_name: bool,
    /// Inside a credential's value: bytes are dropped until the line ends.
    masking: bool,
}

impl Lines {
    /// Redacts the next piece of the stream.
    pub fn redact(&mut self, data: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(data.len());
        for &b in data {
            if b == b'\n' {
                self.masking = false;
                self.name.clear();
                self.not_a_name = false;
                out.push(b);
                continue;
            }
            if self.masking {
                if b == b'\r' {
                    out.push(b);
                }
                continue;
            }
            if !self.not_a_name {
                if b == b':' && !self.name.is_empty() {
                    let name = String::from_utf8_lossy(&self.name).into_owned();
                    out.push(b);
                    if sensitive_name(&name) {
                        out.push(b' ');
                        out.extend_from_slice(MASK.as_bytes());
                        self.masking = true;
                    } else {
                        self.not_a_name = true;
                    }
                    continue;
                }
                if (b.is_ascii_alphanumeric() || b == b'-' || b == b'_') && self.name.len() < 64 {
                    self.name.push(b);
                } else {
                    self.not_a_name = true;
                }
            }
            out.push(b);
        }
        tokens(&out)
    }
}

/// Redacts a header value by its name.
#[must_use]
pub fn header_value(name: &str, value: &[u8]) -> Vec<u8> {
    if sensitive_name(name) {
        MASK.as_bytes().to_vec()
    } else {
        tokens(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(pieces: &[&[u8]]) -> String {
        let mut l = Lines::default();
        let mut out = Vec::new();
        for p in pieces {
            out.extend(l.redact(p));
        }
        String::from_utf8(out).unwrap_or_default()
    }

    #[test]
    fn header_values_go_whole_calls_or_split() {
        let req = b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer abcdefghijkl\r\nX-Other: 1\r\n\r\n{}";
        let want = "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: [redacted]\r\nX-Other: 1\r\n\r\n{}";
        assert_eq!(all(&[req]), want);
        // Split in the name, in the value, and at every byte.
        for cut in 1..req.len() {
            let (a, b) = req.split_at(cut);
            let got = all(&[a, b]);
            assert!(!got.contains("abcdefghijkl"), "cut at {cut}: {got}");
            assert!(got.contains("X-Other: 1"), "cut at {cut}: {got}");
        }
        let bytes: Vec<&[u8]> = req.chunks(1).collect();
        assert_eq!(all(&bytes), want);
    }

    #[test]
    fn token_shapes_and_json_keys() {
        let body = br#"{"api_key": "s3cr3t-value", "key": "sk-abcdefghijklmnop", "q": "ok"}"#;
        let out = String::from_utf8(tokens(body)).unwrap_or_default();
        assert!(!out.contains("s3cr3t") && !out.contains("sk-abc"), "{out}");
        assert!(out.contains(r#""q": "ok""#));
        assert!(sensitive_name("Cookie") && sensitive_name("x-goog-api-key"));
        assert!(!sensitive_name("content-type") && !sensitive_name(":authority"));
        assert_eq!(header_value("authorization", b"Bearer x"), MASK.as_bytes());
    }
}
