//! Entry points for the fuzz targets under `fuzz/` and their regression
//! tests: each takes arbitrary bytes, runs one parser of untrusted input and
//! panics only when an invariant breaks (a parser itself must never panic).
use crate::decode::{self, Record, args};

/// Ring-buffer records are built from memory a traced process controls
/// (paths, argv, socket addresses): any bytes decode to a record or an
/// error, and what decodes renders as valid JSON.
pub fn decode_record(data: &[u8]) {
    let Ok(rec) = decode::record(data) else {
        return;
    };
    if let Record::Syscall(s) | Record::WatchOpen(s) = &rec {
        let r = args::render(s, &());
        let text = serde_json::to_string(&r.args).expect("rendered arguments serialise");
        let back: serde_json::Value = serde_json::from_str(&text).expect("valid JSON");
        assert!(back.is_object() || back.is_array(), "{text}");
        let _ = s.argv();
        let _ = s.errno();
    }
}

/// Rule files: any text gives rules or a one-line error.
pub fn rules_parse(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Err(e) = crate::policy::rules::Rules::parse("fuzz.yaml", text) {
        let msg = e.to_string();
        assert!(!msg.contains('\n'), "multi-line error: {msg:?}");
    }
}

/// Verdict bodies from the analyser (first line: the signature).
pub fn analyser_verdicts(data: &[u8]) {
    let (sig, body) = match data.iter().position(|b| *b == b'\n') {
        Some(i) => (std::str::from_utf8(&data[..i]).ok(), &data[i + 1..]),
        None => (None, data),
    };
    let _ = crate::analyser::protocol::verify(b"token", body, sig);
    let _ = crate::analyser::protocol::parse_verdicts(body);
}

/// The agent's configuration file: any text parses or gives an error.
pub fn agent_config(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data)
        && let Err(e) = crate::agent::config::Config::parse(text)
    {
        assert!(!e.contains('\n'), "multi-line error: {e:?}");
    }
}

/// The entry point for a fuzz target's name.
#[must_use]
pub fn by_name(target: &str) -> Option<fn(&[u8])> {
    Some(match target {
        "decode_record" => decode_record,
        "rules_parse" => rules_parse,
        "analyser_verdicts" => analyser_verdicts,
        "agent_config" => agent_config,
        _ => return None,
    })
}
