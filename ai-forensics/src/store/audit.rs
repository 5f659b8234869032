//! Checks beyond the hash chain: that every indexed column agrees with the
//! sealed record it indexes (a query filters on the columns, so a changed
//! `events.syscall` or `alerts.rule` would mislead it while the chain, which
//! covers the records, stays intact), and that the store agrees with
//! anchors kept elsewhere (`--anchor`), so a store rewritten end to end,
//! chain and all, is caught.
use std::collections::BTreeMap;

use rusqlite::params;
use serde_json::Value;

use super::Store;
use crate::error::Result;

/// The first disagreement found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    /// Batch it is in (0 when not about a batch).
    pub batch: u64,
    /// What differs.
    pub detail: String,
}

use crate::output::json::MAIN_PATH_KEYS as PATH_KEYS;

fn any_string_is(v: &Value, s: &str) -> bool {
    match v {
        Value::String(x) => x == s,
        Value::Array(a) => a.iter().any(|x| any_string_is(x, s)),
        Value::Object(o) => o.values().any(|x| any_string_is(x, s)),
        _ => false,
    }
}

type Columns = (
    Option<i64>,
    String,
    Option<i64>,
    Option<i64>,
    Option<String>,
    Option<String>,
);

/// What an event row's columns say, against its record.
fn column_mismatch(cols: &Columns, v: &Value) -> Option<&'static str> {
    let (ts, kind, pid, tid, syscall, path) = cols;
    if v["type"].as_str() != Some(kind.as_str()) {
        return Some("type");
    }
    if *ts != v["ts_ns"].as_i64() {
        return Some("ts_ns");
    }
    if *pid != v["pid"].as_i64() {
        return Some("pid");
    }
    if *tid != v["tid"].as_i64() {
        return Some("tid");
    }
    let d = &v["detail"];
    let want_syscall = (kind == "syscall").then(|| d["syscall"].as_str()).flatten();
    if syscall.as_deref() != want_syscall {
        return Some("syscall");
    }
    if kind == "syscall" {
        let want = PATH_KEYS
            .iter()
            .find_map(|k| d["args"][*k].as_str())
            .or_else(|| d["ret_path"].as_str());
        if path.as_deref() != want {
            return Some("path");
        }
    } else if let Some(p) = path
        && !any_string_is(d, p)
    {
        return Some("path");
    }
    None
}

/// Checks every indexed column of session `id`: the events table against
/// each record, and the alerts and actions tables against the records they
/// copy.
pub fn columns(store: &Store, id: i64) -> Result<Option<Finding>> {
    let e = |x: rusqlite::Error| store.err(&x);
    let (lo, hi) = super::session_range(id);
    let mut st = store
        .conn
        .prepare("SELECT seq, batch, ts_ns, type, pid, tid, syscall, path, record FROM events WHERE id BETWEEN ?1 AND ?2 ORDER BY id")
        .map_err(e)?;
    let mut rows = st.query(params![lo, hi]).map_err(e)?;
    let mut verdicts: BTreeMap<u64, String> = BTreeMap::new();
    while let Some(r) = rows.next().map_err(e)? {
        let seq = r.get::<_, i64>(0).map_err(e)? as u64;
        let batch = r.get::<_, i64>(1).map_err(e)? as u64;
        let cols: Columns = (
            r.get(2).map_err(e)?,
            r.get(3).map_err(e)?,
            r.get(4).map_err(e)?,
            r.get(5).map_err(e)?,
            r.get(6).map_err(e)?,
            r.get(7).map_err(e)?,
        );
        let rec: String = r.get(8).map_err(e)?;
        let Ok(v) = serde_json::from_str::<Value>(&rec) else {
            return Ok(Some(Finding {
                batch,
                detail: format!("record {seq} is not JSON"),
            }));
        };
        if v["seq"].as_u64() != Some(seq) {
            return Ok(Some(Finding {
                batch,
                detail: format!("the seq column of record {seq} disagrees with the record"),
            }));
        }
        if let Some(col) = column_mismatch(&cols, &v) {
            return Ok(Some(Finding {
                batch,
                detail: format!("the {col} column of record {seq} disagrees with the record"),
            }));
        }
        if matches!(cols.1.as_str(), "alert" | "action") {
            verdicts.insert(seq, rec);
        }
    }
    for (table, cols) in [
        ("alerts", "seq, record, rule, severity, action, pid, reason"),
        ("actions", "seq, record, action, NULL, NULL, NULL, reason"),
    ] {
        let mut st = store
            .conn
            .prepare(&format!(
                "SELECT {cols} FROM {table} WHERE session_id = ?1 ORDER BY seq"
            ))
            .map_err(e)?;
        let mut rows = st.query(params![id]).map_err(e)?;
        while let Some(r) = rows.next().map_err(e)? {
            let seq = r.get::<_, Option<i64>>(0).map_err(e)?.unwrap_or(-1);
            let rec: String = r.get(1).map_err(e)?;
            let bad = |what: &str| {
                Some(Finding {
                    batch: 0,
                    detail: format!("{table} row of record {seq}: {what}"),
                })
            };
            let Some(sealed) = u64::try_from(seq).ok().and_then(|s| verdicts.get(&s)) else {
                return Ok(bad("no sealed record has its sequence number"));
            };
            if *sealed != rec {
                return Ok(bad("its copy of the record differs from the sealed one"));
            }
            let v: Value = serde_json::from_str(&rec).unwrap_or_default();
            let d = &v["detail"];
            let text = |i: usize| -> Result<Option<String>> { r.get(i).map_err(e) };
            if table == "alerts" {
                for (i, k) in [(2, "rule"), (3, "severity"), (4, "action"), (6, "reason")] {
                    if text(i)?.as_deref() != d[k].as_str() {
                        return Ok(bad(&format!("its {k} column disagrees with the record")));
                    }
                }
                if r.get::<_, Option<i64>>(5).map_err(e)? != v["pid"].as_i64() {
                    return Ok(bad("its pid column disagrees with the record"));
                }
            } else {
                if text(2)?.as_deref() != d["action"].as_str() {
                    return Ok(bad("its action column disagrees with the record"));
                }
                if text(6)?.as_deref() != d["reason"].as_str().or(d["rule"].as_str()) {
                    return Ok(bad("its reason column disagrees with the record"));
                }
            }
        }
    }
    Ok(None)
}

/// Anchor records of session `id` of this store, by batch, from an anchor
/// file's lines (other sessions' and other stores' lines are skipped).
#[must_use]
pub fn anchors_of(lines: &str, id: i64, started_ns: Option<i64>) -> BTreeMap<u64, Value> {
    let mut out = BTreeMap::new();
    for l in lines.lines() {
        let Ok(v) = serde_json::from_str::<Value>(l) else {
            continue;
        };
        let d = &v["detail"];
        if v["type"] != "anchor"
            || d["session"].as_i64() != Some(id)
            || d["started_ns"].as_i64() != started_ns
        {
            continue;
        }
        if let Some(b) = d["batch"].as_u64() {
            out.insert(b, d.clone());
        }
    }
    out
}

/// Compares session `id`'s sealed batches with its anchors; the first batch
/// that differs, is missing or was never anchored.
pub fn against_anchors(
    store: &Store,
    id: i64,
    anchors: &BTreeMap<u64, Value>,
) -> Result<Option<Finding>> {
    let e = |x: rusqlite::Error| store.err(&x);
    if anchors.is_empty() {
        return Ok(Some(Finding {
            batch: 0,
            detail: "no anchor matches this session (its number and start time)".into(),
        }));
    }
    let mut st = store
        .conn
        .prepare("SELECT batch, first_seq, last_seq, count, prev_digest, digest FROM batches WHERE session_id = ?1 ORDER BY batch")
        .map_err(e)?;
    let stored: BTreeMap<u64, (i64, i64, i64, String, String)> = st
        .query_map(params![id], |r| {
            Ok((
                r.get::<_, i64>(0)? as u64,
                (r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?),
            ))
        })
        .map_err(e)?
        .collect::<std::result::Result<_, _>>()
        .map_err(e)?;
    let last = anchors
        .keys()
        .chain(stored.keys())
        .copied()
        .max()
        .unwrap_or(0);
    for b in 1..=last {
        let found = |detail: String| Ok(Some(Finding { batch: b, detail }));
        match (anchors.get(&b), stored.get(&b)) {
            (Some(_), None) => return found("anchored, but missing from the store".into()),
            (None, Some(_)) => {
                return found(
                    "in the store, but never anchored (added, or the anchor file lost it)".into(),
                );
            }
            (None, None) => return found("missing from both the store and the anchors".into()),
            (Some(a), Some((first, lastseq, count, prev, digest))) => {
                if a["digest"].as_str() != Some(digest.as_str()) {
                    return found(format!(
                        "the store's digest {digest} differs from the anchored {}",
                        a["digest"].as_str().unwrap_or("?")
                    ));
                }
                if a["prev_digest"].as_str() != Some(prev.as_str())
                    || a["first_seq"].as_i64() != Some(*first)
                    || a["last_seq"].as_i64() != Some(*lastseq)
                    || a["count"].as_i64() != Some(*count)
                {
                    return found("its header differs from the anchored one".into());
                }
            }
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_are_derived_from_the_record() {
        let v: Value = serde_json::from_str(
            r#"{"v":1,"seq":3,"type":"syscall","ts_ns":5,"pid":7,"tid":8,"detail":{"syscall":"openat","args":{"pathname":"/a"},"ret_path":"/a"}}"#,
        )
        .unwrap();
        let good: Columns = (
            Some(5),
            "syscall".into(),
            Some(7),
            Some(8),
            Some("openat".into()),
            Some("/a".into()),
        );
        assert_eq!(column_mismatch(&good, &v), None);
        let mut bad = good.clone();
        bad.4 = Some("getppid".into());
        assert_eq!(column_mismatch(&bad, &v), Some("syscall"));
        let mut bad = good.clone();
        bad.5 = Some("/etc/shadow".into());
        assert_eq!(column_mismatch(&bad, &v), Some("path"));
        let mut bad = good;
        bad.2 = Some(1);
        assert_eq!(column_mismatch(&bad, &v), Some("pid"));
    }

    #[test]
    fn anchors_are_picked_by_session_and_start() {
        let f = "{\"type\":\"anchor\",\"detail\":{\"session\":1,\"started_ns\":9,\"batch\":1,\"digest\":\"aa\"}}\n\
                 {\"type\":\"anchor\",\"detail\":{\"session\":1,\"started_ns\":10,\"batch\":1,\"digest\":\"bb\"}}\n\
                 not json\n\
                 {\"type\":\"anchor\",\"detail\":{\"session\":2,\"started_ns\":9,\"batch\":1,\"digest\":\"cc\"}}\n";
        let a = anchors_of(f, 1, Some(9));
        assert_eq!(a.len(), 1);
        assert_eq!(a[&1]["digest"], "aa");
    }
}
