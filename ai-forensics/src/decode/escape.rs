//! The escape language for bytes that come from traced processes.
//!
//! Paths, argv and names are untrusted: they can hold newlines, quotes,
//! terminal escapes, bidi overrides or invalid UTF-8. Every output shows them
//! through [`escape`], which yields printable, valid UTF-8 and is reversible
//! by [`unescape`]:
//!
//! * valid UTF-8 characters pass through, except those below;
//! * `\` becomes `\\` and (with `quote`) `"` becomes `\"`;
//! * `\n`, `\t`, `\r` become those two-character escapes;
//! * other ASCII control bytes, DEL, and each byte of invalid UTF-8 become
//!   `\xNN` (two lowercase hex digits);
//! * Unicode format/control characters that can disguise text (bidi
//!   overrides, zero-width characters, line/paragraph separators) become
//!   `\u{XXXX}`.
//!
//! JSON output carries the escaped form inside an ordinary JSON string, so a
//! JSON reader gets the escaped text and [`unescape`] gives the exact bytes.
use std::fmt::Write as _;

fn disguising(c: char) -> bool {
    matches!(c,
        '\u{200b}'..='\u{200f}' | '\u{2028}'..='\u{202e}' | '\u{2060}'..='\u{2064}'
        | '\u{2066}'..='\u{2069}' | '\u{feff}' | '\u{0080}'..='\u{009f}')
}

/// Whether `bytes` are their own escaped form: printable ASCII without `\`
/// (nor `"` with `quote`). Most names and paths are.
#[inline]
fn plain(bytes: &[u8], quote: bool) -> bool {
    bytes
        .iter()
        .all(|b| (0x20..0x7f).contains(b) && *b != b'\\' && !(quote && *b == b'"'))
}

/// [`escape`] without a copy when the bytes need no escaping.
#[must_use]
pub fn escape_cow(bytes: &[u8]) -> std::borrow::Cow<'_, str> {
    if plain(bytes, false) {
        // SAFETY: printable ASCII is valid UTF-8.
        std::borrow::Cow::Borrowed(unsafe { std::str::from_utf8_unchecked(bytes) })
    } else {
        std::borrow::Cow::Owned(escape_with(bytes, false))
    }
}

/// Escapes `bytes` (see the module documentation). With `quote`, `"` is
/// escaped too, for output that wraps the string in double quotes.
#[must_use]
pub fn escape_with(bytes: &[u8], quote: bool) -> String {
    if plain(bytes, quote) {
        // Printable ASCII is valid UTF-8 and escapes to itself.
        return String::from_utf8_lossy(bytes).into_owned();
    }
    let mut out = String::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '\\' => out.push_str("\\\\"),
                '"' if quote => out.push_str("\\\""),
                '\n' => out.push_str("\\n"),
                '\t' => out.push_str("\\t"),
                '\r' => out.push_str("\\r"),
                c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                    let _ = write!(out, "\\x{:02x}", c as u32);
                }
                c if disguising(c) => {
                    let _ = write!(out, "\\u{{{:04x}}}", c as u32);
                }
                c => out.push(c),
            }
        }
        for b in chunk.invalid() {
            let _ = write!(out, "\\x{b:02x}");
        }
    }
    out
}

/// Escapes `bytes` for JSON values and tables (quotes left alone).
#[must_use]
pub fn escape(bytes: &[u8]) -> String {
    escape_with(bytes, false)
}

/// Escapes `bytes` and wraps them in double quotes, for text output.
#[must_use]
pub fn quoted(bytes: &[u8]) -> String {
    format!("\"{}\"", escape_with(bytes, true))
}

/// Reverses [`escape`]/[`escape_with`]; `None` on a malformed escape.
#[must_use]
pub fn unescape(s: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            let mut buf = [0u8; 4];
            out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            continue;
        }
        match chars.next()? {
            '\\' => out.push(b'\\'),
            '"' => out.push(b'"'),
            'n' => out.push(b'\n'),
            't' => out.push(b'\t'),
            'r' => out.push(b'\r'),
            'x' => {
                let h: String = chars.by_ref().take(2).collect();
                if h.len() != 2 {
                    return None;
                }
                out.push(u8::from_str_radix(&h, 16).ok()?);
            }
            'u' => {
                if chars.next()? != '{' {
                    return None;
                }
                let h: String = chars.by_ref().take_while(|c| *c != '}').collect();
                let c = char::from_u32(u32::from_str_radix(&h, 16).ok()?)?;
                let mut buf = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            }
            _ => return None,
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_paths_are_unchanged() {
        assert_eq!(
            escape(b"/home/u/model.safetensors"),
            "/home/u/model.safetensors"
        );
        assert_eq!(escape("/données/模型.pt".as_bytes()), "/données/模型.pt");
    }

    #[test]
    fn hostile_bytes_are_escaped() {
        let nasty = b"a\nb\"c\\d\te\x1b[31m\xff\xfe<script>\x7f";
        let e = escape_with(nasty, true);
        assert_eq!(e, "a\\nb\\\"c\\\\d\\te\\x1b[31m\\xff\\xfe<script>\\x7f");
        assert!(!e.contains('\n') && !e.chars().any(char::is_control));
        assert_eq!(unescape(&e).unwrap(), nasty);
        let bidi = "evil\u{202e}gpj.exe".as_bytes();
        assert_eq!(escape(bidi), "evil\\u{202e}gpj.exe");
        assert_eq!(unescape(&escape(bidi)).unwrap(), bidi);
    }

    #[test]
    fn round_trip_every_byte() {
        let all: Vec<u8> = (0..=255u8).collect();
        for quote in [false, true] {
            assert_eq!(unescape(&escape_with(&all, quote)).unwrap(), all);
        }
        // Survives JSON encoding too.
        let j = serde_json::to_string(&escape(&all)).unwrap();
        let back: String = serde_json::from_str(&j).unwrap();
        assert_eq!(unescape(&back).unwrap(), all);
    }

    #[test]
    fn malformed_escapes() {
        assert_eq!(unescape("\\"), None);
        assert_eq!(unescape("\\q"), None);
        assert_eq!(unescape("\\x4"), None);
        assert_eq!(unescape("\\u{zz}"), None);
        assert_eq!(quoted(b"a\"b"), "\"a\\\"b\"");
    }
}
