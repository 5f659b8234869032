//! Human tables: the live per-syscall view and the final summary (in the
//! layout of `strace -c`, plus latency columns).
use std::{collections::BTreeMap, fmt::Write as _};

use crate::{
    aggregate::{activity::Activity, syscalls::Row},
    decode::{escape, flags},
    state::procs::{Process, Processes},
};

fn us(ns: u64) -> String {
    format!("{:.1}", ns as f64 / 1000.0)
}

/// Bytes in a short human form.
#[must_use]
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

/// The per-syscall table, `limit` rows at most (0 = all).
#[must_use]
pub fn syscalls(rows: &[Row], limit: usize) -> String {
    if !rows.is_empty() && rows.iter().all(|r| r.timed == 0) {
        return counts_only(rows, limit);
    }
    let total_ns: u64 = rows.iter().map(|r| r.total_ns).sum();
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:>6} {:>11} {:>11} {:>10} {:>9} {:>9} {:>10} {:>10} syscall",
        "% time", "seconds", "usecs/call", "calls", "errors", "min(us)", "max(us)", "p99(us)"
    );
    let _ = writeln!(
        out,
        "------ ----------- ----------- ---------- --------- --------- ---------- ---------- ----------------"
    );
    let n = if limit == 0 {
        rows.len()
    } else {
        limit.min(rows.len())
    };
    for r in &rows[..n] {
        let pct = if total_ns > 0 {
            100.0 * r.total_ns as f64 / total_ns as f64
        } else {
            0.0
        };
        let errors = if r.errors > 0 {
            r.errors.to_string()
        } else {
            String::new()
        };
        let _ = writeln!(
            out,
            "{pct:>6.2} {:>11.6} {:>11} {:>10} {errors:>9} {:>9} {:>10} {:>10} {}",
            r.total_ns as f64 / 1e9,
            if r.timed > 0 {
                us(r.avg_ns)
            } else {
                "-".into()
            },
            r.count,
            if r.timed > 0 {
                us(r.min_ns)
            } else {
                "-".into()
            },
            if r.timed > 0 {
                us(r.max_ns)
            } else {
                "-".into()
            },
            if r.timed > 0 {
                us(r.p99_ns)
            } else {
                "-".into()
            },
            r.syscall
        );
    }
    if n < rows.len() {
        let _ = writeln!(out, "{:>47} ({} more)", "...", rows.len() - n);
    }
    let calls: u64 = rows.iter().map(|r| r.count).sum();
    let errors: u64 = rows.iter().map(|r| r.errors).sum();
    let _ = writeln!(
        out,
        "------ ----------- ----------- ---------- --------- --------- ---------- ---------- ----------------"
    );
    let _ = writeln!(
        out,
        "100.00 {:>11.6} {:>11} {calls:>10} {:>9} {:>9} {:>10} {:>10} total",
        total_ns as f64 / 1e9,
        "",
        if errors > 0 {
            errors.to_string()
        } else {
            String::new()
        },
        "",
        "",
        ""
    );
    out
}

/// The table when nothing was timed (count mode without `--latency`).
fn counts_only(rows: &[Row], limit: usize) -> String {
    let mut out = String::new();
    let rule = "---------- --------- ----------------";
    let _ = writeln!(out, "{:>10} {:>9} syscall\n{rule}", "calls", "errors");
    let n = if limit == 0 {
        rows.len()
    } else {
        limit.min(rows.len())
    };
    let errors = |e: u64| if e > 0 { e.to_string() } else { String::new() };
    for r in &rows[..n] {
        let _ = writeln!(out, "{:>10} {:>9} {}", r.count, errors(r.errors), r.syscall);
    }
    if n < rows.len() {
        let _ = writeln!(out, "{:>20} ({} more)", "...", rows.len() - n);
    }
    let calls: u64 = rows.iter().map(|r| r.count).sum();
    let errs: u64 = rows.iter().map(|r| r.errors).sum();
    let _ = writeln!(
        out,
        "{rule}\n{calls:>10} {:>9} total\n(no timing in count mode: add --latency for latency columns)",
        errors(errs)
    );
    out
}

/// Files, memory, futex and network sections.
#[must_use]
pub fn activity(a: &Activity, top: usize) -> String {
    let mut out = String::new();
    if !a.files.is_empty() {
        let mut files: Vec<_> = a.files.iter().collect();
        files.sort_by(|x, y| {
            (y.1.bytes_read + y.1.bytes_written + y.1.bytes_mapped)
                .cmp(&(x.1.bytes_read + x.1.bytes_written + x.1.bytes_mapped))
                .then(y.1.opens.cmp(&x.1.opens))
        });
        let _ = writeln!(
            out,
            "\nfiles ({} distinct, top {} by bytes)",
            a.files.len(),
            top.min(files.len())
        );
        let _ = writeln!(
            out,
            "{:>6} {:>6} {:>12} {:>12} {:>12}  path",
            "opens", "errors", "read", "written", "mapped"
        );
        for (p, f) in files.iter().take(top) {
            let _ = writeln!(
                out,
                "{:>6} {:>6} {:>12} {:>12} {:>12}  {}",
                f.opens,
                f.open_errors,
                bytes(f.bytes_read),
                bytes(f.bytes_written),
                bytes(f.bytes_mapped),
                escape::escape(p)
            );
        }
    }
    if !a.memory.is_empty() {
        let _ = writeln!(out, "\nmemory");
        let _ = writeln!(
            out,
            "{:>8} {:>12} {:>8} {:>12} {:>12}  largest map",
            "pid", "peak heap", "maps", "mapped", "unmapped"
        );
        for (pid, m) in &a.memory {
            let largest = m
                .largest
                .first()
                .map_or_else(String::new, |(len, f, prot)| {
                    format!(
                        "{} {} {}",
                        bytes(*len),
                        flags::prot(*prot),
                        f.as_deref()
                            .map_or_else(|| "[anonymous]".to_owned(), escape::escape)
                    )
                });
            let _ = writeln!(
                out,
                "{pid:>8} {:>12} {:>8} {:>12} {:>12}  {largest}",
                bytes(Activity::peak_heap(m)),
                m.maps,
                bytes(m.mapped_total),
                bytes(m.unmapped_total)
            );
        }
    }
    if a.futex.calls > 0 {
        let f = &a.futex;
        let _ = writeln!(
            out,
            "\nfutex: {} calls, {} waits ({:.6} s waiting, {} timed out), {} wakes",
            f.calls,
            f.waits,
            f.wait_ns as f64 / 1e9,
            f.timeouts,
            f.wakes
        );
    }
    if !a.endpoints.is_empty() {
        let _ = writeln!(out, "\nnetwork");
        let _ = writeln!(
            out,
            "{:>8} {:>6} {:>7} {:>12} {:>12}  endpoint",
            "connects", "binds", "accepts", "sent", "received"
        );
        for (ep, e) in &a.endpoints {
            let _ = writeln!(
                out,
                "{:>8} {:>6} {:>7} {:>12} {:>12}  {ep}",
                e.connects,
                e.binds,
                e.accepts,
                bytes(e.bytes_sent),
                bytes(e.bytes_received)
            );
        }
    }
    out
}

/// The process tree, one line per process, children indented under parents.
#[must_use]
pub fn process_tree(procs: &Processes, counts: &dyn Fn(&Process) -> Option<(u64, u64)>) -> String {
    process_tree_limited(procs, counts, TREE_LINES)
}

/// Processes the text tree shows; the rest are counted (they are all in the
/// JSON summary and the store).
pub const TREE_LINES: usize = 500;

/// The process tree, at most `limit` lines. Children are indexed once, so
/// the cost is linear in the number of processes.
#[must_use]
pub fn process_tree_limited(
    procs: &Processes,
    counts: &dyn Fn(&Process) -> Option<(u64, u64)>,
    limit: usize,
) -> String {
    let mut out = String::new();
    let mut kids: BTreeMap<u32, Vec<u32>> = BTreeMap::new();
    let mut roots = Vec::new();
    let mut total = 0usize;
    for p in procs.iter() {
        total += 1;
        match p.ppid.filter(|pp| *pp != p.pid && procs.get(*pp).is_some()) {
            Some(pp) => kids.entry(pp).or_default().push(p.pid),
            None => roots.push(p.pid),
        }
    }
    let mut stack: Vec<(u32, usize)> = roots.into_iter().rev().map(|r| (r, 0)).collect();
    let mut seen = std::collections::BTreeSet::new();
    while let Some((pid, depth)) = stack.pop() {
        if !seen.insert(pid) {
            continue;
        }
        if seen.len() > limit {
            let _ = writeln!(
                out,
                "... {} more processes (all are in the JSON summary and the store)",
                total - limit
            );
            break;
        }
        let Some(p) = procs.get(pid) else { continue };
        let exe = p.exe.as_deref().map_or_else(String::new, escape::escape);
        let calls = counts(p).map_or_else(String::new, |(c, e)| format!(" calls={c} errors={e}"));
        let reason = p
            .reason
            .as_deref()
            .map_or_else(String::new, |r| format!(" [{r}]"));
        let _ = writeln!(
            out,
            "{:indent$}{} {} threads={} {exe}{calls}{reason}",
            "",
            p.pid,
            escape::escape(&p.comm),
            p.threads.len(),
            indent = depth * 2
        );
        // Children in pid order (procs iterate by pid already).
        for k in kids.get(&pid).into_iter().flatten().rev() {
            stack.push((*k, depth + 1));
        }
    }
    out
}

/// The non-zero loss counters of a summary's `loss` object in words
/// (`none` when nothing was lost).
#[must_use]
pub fn loss_words(loss: &serde_json::Value) -> String {
    use serde_json::Value;
    let mut parts = Vec::new();
    if let Some(m) = loss.as_object() {
        for (k, v) in m {
            match v {
                Value::Number(n) if n.as_u64().is_some_and(|n| n > 0) => {
                    parts.push(format!("{}: {n}", k.replace('_', " ")));
                }
                Value::Object(o) => {
                    for (k2, v2) in o {
                        if let Some(n) = v2.as_u64().filter(|n| *n > 0) {
                            parts.push(format!("{}: {n}", k2.replace('_', " ")));
                        }
                    }
                }
                Value::Array(a) if !a.is_empty() => {
                    parts.push(format!("{}: {} entries", k.replace('_', " "), a.len()));
                }
                _ => {}
            }
        }
    }
    if parts.is_empty() {
        "none".into()
    } else {
        parts.join(", ")
    }
}

/// A wait status as stored (`{"exited": N}` or `{"signaled": N}`) in words.
#[must_use]
pub fn exit_words(status: &serde_json::Value) -> String {
    if let Some(c) = status["exited"].as_i64() {
        return format!("exited with status {c}");
    }
    if let Some(sig) = status["signaled"].as_i64() {
        let name = i32::try_from(sig)
            .ok()
            .and_then(|n| nix_signal_name(n))
            .map_or_else(String::new, |n| format!(" ({n})"));
        return format!("killed by signal {sig}{name}");
    }
    "unknown (still running when the session ended, or not launched by it)".into()
}

fn nix_signal_name(n: i32) -> Option<&'static str> {
    Some(match n {
        1 => "SIGHUP",
        2 => "SIGINT",
        3 => "SIGQUIT",
        6 => "SIGABRT",
        9 => "SIGKILL",
        11 => "SIGSEGV",
        13 => "SIGPIPE",
        15 => "SIGTERM",
        _ => return None,
    })
}

/// Colours for the terminal, used only when stdout is one (and `NO_COLOR`
/// is not set).
#[derive(Clone, Copy, Debug)]
pub enum Paint {
    /// Section headings.
    Heading,
    /// Critical and high severities, kills.
    Bad,
    /// Medium severities, stops.
    Warn,
    /// Nothing lost, chain intact.
    Good,
}

/// Whether stdout takes colour.
#[must_use]
pub fn colour_on() -> bool {
    use std::io::IsTerminal as _;
    std::env::var_os("NO_COLOR").is_none() && std::io::stdout().is_terminal()
}

/// `text` in `p`'s colour when `on`.
#[must_use]
pub fn paint(on: bool, p: Paint, text: &str) -> String {
    if !on {
        return text.to_owned();
    }
    let code = match p {
        Paint::Heading => "1",
        Paint::Bad => "1;31",
        Paint::Warn => "33",
        Paint::Good => "32",
    };
    format!("\x1b[{code}m{text}\x1b[0m")
}

/// The colour of an alert severity.
#[must_use]
pub fn severity_paint(severity: &str) -> Paint {
    match severity {
        "critical" | "high" => Paint::Bad,
        "medium" => Paint::Warn,
        _ => Paint::Heading,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A wide tree of 65,536 processes (the table's bound) is listed in
    /// linear time and cut at `TREE_LINES`, with the rest counted.
    #[test]
    fn big_trees_are_cut_and_fast() {
        use crate::decode::Fork;
        let mut ps = Processes::default();
        for child in 2..=65_536u32 {
            ps.fork(&Fork {
                ts_ns: 1,
                tgid: 1,
                tid: 1,
                child_tid: child,
                child_tgid: child,
                tree: 1,
                child_gen: 0,
                comm: b"w\x1b[31m".to_vec(),
            });
        }
        let started = std::time::Instant::now();
        let t = process_tree(&ps, &|_| Some((3, 0)));
        assert!(started.elapsed().as_secs() < 5, "{:?}", started.elapsed());
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines.len(), TREE_LINES + 1);
        assert!(lines[0].starts_with("2 "), "{}", lines[0]);
        assert_eq!(
            lines[TREE_LINES],
            format!(
                "... {} more processes (all are in the JSON summary and the store)",
                65_535 - TREE_LINES
            )
        );
        assert!(!t.contains('\x1b'));
    }

    #[test]
    fn table_has_totals() {
        let rows = vec![
            Row {
                syscall: "read".into(),
                nr: 0,
                count: 10,
                errors: 1,
                timed: 10,
                total_ns: 3000,
                min_ns: 100,
                avg_ns: 300,
                max_ns: 900,
                p99_ns: 900,
                lost: 0,
            },
            Row {
                syscall: "getppid".into(),
                nr: 110,
                count: 5,
                errors: 0,
                timed: 0,
                total_ns: 0,
                min_ns: 0,
                avg_ns: 0,
                max_ns: 0,
                p99_ns: 0,
                lost: 0,
            },
        ];
        let t = syscalls(&rows, 0);
        assert!(t.contains(" read\n"));
        assert!(t.lines().last().unwrap().contains("15"));
        assert!(t.lines().last().unwrap().ends_with("total"));
        let one = syscalls(&rows, 1);
        assert!(one.contains("(1 more)"));
        let counts = syscalls(&rows[1..], 0);
        assert!(
            counts.contains("         5           getppid\n"),
            "{counts}"
        );
        assert!(counts.contains("         5           total\n"), "{counts}");
        assert!(counts.ends_with("add --latency for latency columns)\n"));
        assert_eq!(bytes(1536), "1.5 KiB");
        assert_eq!(bytes(12), "12 B");
    }
}
