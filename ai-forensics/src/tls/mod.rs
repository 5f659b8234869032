//! TLS plaintext: which files get uprobes, calls put back together from
//! their records, connections tied to their sockets, and what the bytes say
//! (HTTP exchanges, LLM API calls). Credentials are redacted here, before
//! any record is built.
//!
//! The socket of a call: OpenSSL and GnuTLS read and write the socket
//! inside the call on the same thread, so the socket I/O syscall seen
//! between the call's entry and return names it. Libraries that move bytes
//! through memory buffers (node's) touch the socket right after: the next
//! socket I/O of the thread binds the connection then.
pub mod files;
pub mod http;
pub mod llm;
pub mod redact;

use std::collections::HashMap;

use ai_forensics_common::tls;
use serde::Serialize;

use crate::decode::{TlsChunk, escape};

/// The functions watched, with their wire ids.
pub const FUNCTIONS: &[(u32, &str)] = &[
    (tls::SSL_WRITE, "SSL_write"),
    (tls::SSL_READ, "SSL_read"),
    (tls::SSL_WRITE_EX, "SSL_write_ex"),
    (tls::SSL_READ_EX, "SSL_read_ex"),
    (tls::GNUTLS_SEND, "gnutls_record_send"),
    (tls::GNUTLS_RECV, "gnutls_record_recv"),
];

/// Syscalls through which TLS libraries move a connection's bytes.
pub const SOCKET_IO: &[&str] = &[
    "read", "write", "readv", "writev", "sendto", "recvfrom", "sendmsg", "recvmsg",
];

/// Default bytes captured per call.
pub const DEFAULT_CAPTURE: u32 = 16 << 10;

/// How long after a call without socket I/O the thread's next socket I/O
/// still names the call's connection.
const BIND_WINDOW_NS: u64 = 200_000_000;
/// Most connections followed at once (oldest forgotten first).
const MAX_CONNS: usize = 4096;
/// Most bytes all connections may hold for parsing: past it the connection
/// that grew is given up (counted), so a hostile target cannot make the
/// recorder hold its bodies without end.
const MAX_BUFFERED: usize = 256 << 20;

/// Name of a function id.
#[must_use]
pub fn func_name(id: u16) -> &'static str {
    FUNCTIONS
        .iter()
        .find(|(i, _)| *i == u32::from(id))
        .map_or("?", |(_, n)| n)
}

/// One call's plaintext, whole.
#[derive(Clone, Debug, Default)]
struct Call {
    ts_ns: u64,
    entry_ns: u64,
    tgid: u32,
    tid: u32,
    tree: u32,
    conn: u64,
    func: u16,
    total: u64,
    data: Vec<u8>,
    truncated: bool,
    fault: bool,
    /// Pieces of it were lost (a ring buffer full).
    incomplete: bool,
}

/// A connection: its socket and its protocol state.
#[derive(Debug, Default)]
struct Conn {
    /// Who used it last: (tgid, tid, tree).
    who: (u32, u32, u32),
    /// Bytes its parse state held after the last call.
    buffered: usize,
    fd: Option<i64>,
    endpoint: Option<String>,
    http: http::Conn,
    redact: [redact::Lines; 2],
    last_ns: u64,
    /// A call's data was cut or lost: the byte stream has a hole, so the
    /// parse stops.
    gap: bool,
}

/// Counters for the summary.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Stats {
    /// Calls with data.
    pub calls: u64,
    /// Plaintext bytes the targets sent.
    pub bytes_sent: u64,
    /// Plaintext bytes the targets received.
    pub bytes_received: u64,
    /// Bytes captured (the rest was beyond the per-call limit).
    pub bytes_captured: u64,
    /// Calls with more data than the per-call limit.
    pub truncated_calls: u64,
    /// Calls some of whose records were lost.
    pub incomplete_calls: u64,
    /// Calls whose buffer could not be read.
    pub unreadable_calls: u64,
    /// Connections seen.
    pub connections: u64,
    /// Connections whose bytes were not HTTP or could not be parsed.
    pub not_http: u64,
    /// Connections given up because all of them together held too much.
    pub over_budget: u64,
    /// HTTP exchanges.
    pub http_exchanges: u64,
    /// LLM API calls.
    pub llm_calls: u64,
}

/// A TLS call, ready for its record.
#[derive(Debug, Serialize)]
pub struct CallRecord {
    /// Function.
    pub function: &'static str,
    /// `send` or `recv`.
    pub direction: &'static str,
    /// The connection object's address.
    pub conn: String,
    /// The socket, when known.
    pub fd: Option<i64>,
    /// Its remote end, when known.
    pub endpoint: Option<String>,
    /// Bytes the call transferred.
    pub bytes: u64,
    /// Bytes captured.
    pub captured: u64,
    /// More than the per-call limit went through.
    pub truncated: bool,
    /// Some of the call's records were lost.
    pub incomplete: bool,
    /// The buffer could not be read.
    pub unreadable: bool,
    /// Call duration.
    pub duration_ns: u64,
    /// `http/1.1`, `h2`, or null.
    pub protocol: Option<&'static str>,
    /// The plaintext, redacted and escaped (null for HTTP/2, whose header
    /// blocks are compressed: its exchanges carry the decoded, redacted text).
    pub data: Option<String>,
}

/// An HTTP exchange or LLM call, ready for its record.
#[derive(Debug, Serialize)]
pub struct ExchangeRecord {
    /// `http/1.1` or `h2`.
    pub version: &'static str,
    /// The connection object's address.
    pub conn: String,
    /// The socket, when known.
    pub fd: Option<i64>,
    /// Remote end, when known.
    pub endpoint: Option<String>,
    /// The traced process was the client.
    pub client: bool,
    /// `Host` / `:authority`.
    pub host: Option<String>,
    /// Method.
    pub method: Option<String>,
    /// Path.
    pub path: Option<String>,
    /// Response status.
    pub status: Option<u16>,
    /// Request headers, credentials redacted.
    pub request_headers: Vec<(String, String)>,
    /// Response headers, credentials redacted.
    pub response_headers: Vec<(String, String)>,
    /// Request body, redacted and escaped.
    pub request_body: String,
    /// Response body (de-chunked), redacted and escaped.
    pub response_body: String,
    /// Body bytes not kept (beyond the limits, or lost).
    pub body_bytes_dropped: u64,
    /// Request start to response end.
    pub duration_ns: u64,
    /// Time of the request's first byte.
    pub request_ns: u64,
    /// The LLM call, when the path is an LLM API's.
    pub llm: Option<llm::Call>,
}

/// What a record of plaintext produced.
#[derive(Debug)]
pub enum Output {
    /// A whole call.
    Call {
        /// Who.
        who: (u32, u32, u32),
        /// When it returned.
        ts_ns: u64,
        /// The record.
        rec: CallRecord,
    },
    /// An exchange completed (an `llm` record when `rec.llm` is set, else `http`).
    Exchange {
        /// Who.
        who: (u32, u32, u32),
        /// When it completed.
        ts_ns: u64,
        /// The record.
        rec: Box<ExchangeRecord>,
    },
}

/// Follows every connection of the targets.
#[derive(Debug, Default)]
pub struct Tracker {
    partial: HashMap<u32, Call>,
    conns: HashMap<(u32, u64), Conn>,
    /// Last socket I/O per thread: (tgid, fd, time).
    io: HashMap<u32, (u32, i64, u64)>,
    /// Per thread, the last connection a call could not tie to a socket.
    unbound: HashMap<u32, (u32, u64, u64)>,
    /// Counters.
    pub stats: Stats,
    /// Files with uprobes attached: (path, functions).
    pub files: Vec<(String, Vec<String>)>,
    /// Files that could not be attached, and why.
    pub failed: Vec<(String, String)>,
    /// Bytes all connections hold for parsing.
    buffered: usize,
}

/// Looks a socket's remote end up: (tgid, fd) -> text.
pub type Endpoints<'a> = &'a dyn Fn(u32, i64) -> Option<String>;

impl Tracker {
    /// A thread did socket I/O on `fd` (a read/write-family call that returned).
    pub fn socket_io(&mut self, tgid: u32, tid: u32, fd: i64, ts: u64, ep: Endpoints<'_>) {
        self.io.insert(tid, (tgid, fd, ts));
        if let Some((pid, conn, at)) = self.unbound.get(&tid).copied()
            && pid == tgid
            && ts.saturating_sub(at) <= BIND_WINDOW_NS
        {
            self.unbound.remove(&tid);
            if let Some(c) = self.conns.get_mut(&(tgid, conn))
                && c.fd.is_none()
            {
                c.fd = Some(fd);
                c.endpoint = ep(tgid, fd);
            }
        }
    }

    /// One record of plaintext.
    pub fn chunk(&mut self, c: TlsChunk, ep: Endpoints<'_>) -> Vec<Output> {
        let mut out = Vec::new();
        let same = self
            .partial
            .get(&c.tid)
            .is_some_and(|p| p.entry_ns == c.entry_ns && p.conn == c.conn);
        if !same && let Some(p) = self.partial.remove(&c.tid) {
            // Its last record never came.
            let mut p = p;
            p.incomplete = true;
            self.finish(p, ep, &mut out);
        }
        let p = self.partial.entry(c.tid).or_insert_with(|| Call {
            ts_ns: c.ts_ns,
            entry_ns: c.entry_ns,
            tgid: c.tgid,
            tid: c.tid,
            tree: c.tree,
            conn: c.conn,
            func: c.func,
            total: c.total,
            ..Call::default()
        });
        if c.offset as usize != p.data.len() {
            p.incomplete = true;
        }
        p.data.extend_from_slice(&c.data);
        p.truncated |= c.flags & tls::TRUNCATED != 0;
        p.fault |= c.flags & tls::READ_FAULT != 0;
        if c.flags & tls::LAST != 0
            && let Some(p) = self.partial.remove(&c.tid)
        {
            self.finish(p, ep, &mut out);
        }
        out
    }

    fn finish(&mut self, call: Call, ep: Endpoints<'_>, out: &mut Vec<Output>) {
        let key = (call.tgid, call.conn);
        let read = tls::is_read(u32::from(call.func));
        self.stats.calls += 1;
        if read {
            self.stats.bytes_received += call.total;
        } else {
            self.stats.bytes_sent += call.total;
        }
        self.stats.bytes_captured += call.data.len() as u64;
        self.stats.truncated_calls += u64::from(call.truncated);
        self.stats.incomplete_calls += u64::from(call.incomplete);
        self.stats.unreadable_calls += u64::from(call.fault);
        if !self.conns.contains_key(&key) {
            if self.conns.len() >= MAX_CONNS
                && let Some(old) = self
                    .conns
                    .iter()
                    .min_by_key(|(_, c)| c.last_ns)
                    .map(|(k, _)| *k)
            {
                self.close_conn(old, out);
            }
            self.stats.connections += 1;
        }
        let io = self
            .io
            .get(&call.tid)
            .filter(|(pid, _, at)| *pid == call.tgid && *at >= call.entry_ns && *at <= call.ts_ns)
            .map(|(_, fd, _)| *fd);
        let conn = self.conns.entry(key).or_default();
        conn.last_ns = call.ts_ns;
        conn.who = (call.tgid, call.tid, call.tree);
        match io {
            Some(fd) if conn.fd != Some(fd) => {
                if conn.fd.is_some() {
                    // The object was freed and reused for another socket.
                    *conn = Conn::default();
                    conn.last_ns = call.ts_ns;
                }
                conn.fd = Some(fd);
                conn.endpoint = ep(call.tgid, fd);
            }
            Some(_) => {}
            None if conn.fd.is_none() => {
                self.unbound
                    .insert(call.tid, (call.tgid, call.conn, call.ts_ns));
            }
            None => {}
        }
        let dir = if read {
            http::Dir::Recv
        } else {
            http::Dir::Send
        };
        let exchanges = if conn.gap {
            Vec::new()
        } else {
            conn.http.feed(dir, &call.data, call.ts_ns)
        };
        if call.truncated || call.incomplete || call.fault {
            conn.gap = true;
        }
        let now = conn.http.buffered();
        self.buffered = self.buffered.saturating_sub(conn.buffered) + now;
        conn.buffered = now;
        if self.buffered > MAX_BUFFERED {
            conn.http.abandon("over the parse budget");
            self.buffered -= conn.buffered;
            conn.buffered = 0;
            self.stats.over_budget += 1;
        }
        let h2 = conn.http.is_h2();
        let data = (!h2).then(|| {
            let r = conn.redact[usize::from(read)].redact(&call.data);
            escape::escape(&r)
        });
        let protocol = if conn.http.failed.is_some() {
            None
        } else if h2 {
            Some("h2")
        } else {
            Some("http/1.1")
        };
        let who = (call.tgid, call.tid, call.tree);
        let (fd, endpoint, client) = (conn.fd, conn.endpoint.clone(), conn.http.is_client());
        out.push(Output::Call {
            who,
            ts_ns: call.ts_ns,
            rec: CallRecord {
                function: func_name(call.func),
                direction: if read { "recv" } else { "send" },
                conn: format!("{:#x}", call.conn),
                fd,
                endpoint: endpoint.clone(),
                bytes: call.total,
                captured: call.data.len() as u64,
                truncated: call.truncated,
                incomplete: call.incomplete,
                unreadable: call.fault,
                duration_ns: call.ts_ns.saturating_sub(call.entry_ns),
                protocol,
                data,
            },
        });
        for ex in exchanges {
            self.exchange(
                ex,
                who,
                call.conn,
                (fd, endpoint.clone(), client),
                call.ts_ns,
                out,
            );
        }
    }

    fn exchange(
        &mut self,
        ex: http::Exchange,
        who: (u32, u32, u32),
        conn: u64,
        sock: (Option<i64>, Option<String>, bool),
        ts_ns: u64,
        out: &mut Vec<Output>,
    ) {
        self.stats.http_exchanges += 1;
        let llm = llm::recognise(&ex).map(escape_call);
        self.stats.llm_calls += u64::from(llm.is_some());
        let headers = |m: &http::Message| {
            m.headers
                .iter()
                .map(|(n, v)| {
                    (
                        escape::escape(n.as_bytes()),
                        escape::escape(&redact::header_value(n, v)),
                    )
                })
                .collect::<Vec<_>>()
        };
        let body = |m: &http::Message| escape::escape(&redact::tokens(&m.body));
        let resp = ex.response.as_ref();
        let rec = ExchangeRecord {
            version: ex.version,
            conn: format!("{conn:#x}"),
            fd: sock.0,
            endpoint: sock.1,
            client: sock.2,
            host: ex
                .request
                .header_str("host")
                .or_else(|| ex.request.header_str(":authority"))
                .map(|h| escape::escape(h.as_bytes())),
            method: ex
                .request
                .method
                .as_deref()
                .map(|m| escape::escape(m.as_bytes())),
            path: ex
                .request
                .path
                .as_deref()
                .map(|p| escape::escape(&redact::tokens(p.as_bytes()))),
            status: resp.and_then(|r| r.status),
            request_headers: headers(&ex.request),
            response_headers: resp.map(headers).unwrap_or_default(),
            request_body: body(&ex.request),
            response_body: resp.map(body).unwrap_or_default(),
            body_bytes_dropped: ex.request.body_dropped + resp.map_or(0, |r| r.body_dropped),
            duration_ns: resp.map_or(0, |r| r.last_ns.saturating_sub(ex.request.first_ns)),
            request_ns: ex.request.first_ns,
            llm,
        };
        out.push(Output::Exchange {
            who,
            ts_ns,
            rec: Box::new(rec),
        });
    }

    fn close_conn(&mut self, key: (u32, u64), out: &mut Vec<Output>) {
        let Some(mut c) = self.conns.remove(&key) else {
            return;
        };
        self.buffered = self.buffered.saturating_sub(c.buffered);
        if c.http.failed.is_some() {
            self.stats.not_http += 1;
        }
        let (fd, ep, client) = (c.fd, c.endpoint.clone(), c.http.is_client());
        for ex in c.http.close() {
            self.exchange(
                ex,
                (key.0, key.0, 0),
                key.1,
                (fd, ep.clone(), client),
                c.last_ns,
                out,
            );
        }
    }

    /// A process exited: its connections end.
    pub fn exited(&mut self, tgid: u32) -> Vec<Output> {
        let mut out = Vec::new();
        let keys: Vec<_> = self
            .conns
            .keys()
            .filter(|(p, _)| *p == tgid)
            .copied()
            .collect();
        for k in keys {
            self.close_conn(k, &mut out);
        }
        self.io.retain(|_, (p, _, _)| *p != tgid);
        self.unbound.retain(|_, (p, _, _)| *p != tgid);
        out
    }

    /// The session ends: every connection ends.
    pub fn finish_all(&mut self, ep: Endpoints<'_>) -> Vec<Output> {
        let mut out = Vec::new();
        let partial: Vec<Call> = self.partial.drain().map(|(_, c)| c).collect();
        for mut p in partial {
            p.incomplete = true;
            self.finish(p, ep, &mut out);
        }
        let keys: Vec<_> = self.conns.keys().copied().collect();
        for k in keys {
            self.close_conn(k, &mut out);
        }
        out
    }

    /// Summary JSON.
    #[must_use]
    pub fn json(&self) -> serde_json::Value {
        serde_json::json!({
            "stats": self.stats,
            "files": self.files.iter().map(|(f, fns)| serde_json::json!({"file": escape::escape(f.as_bytes()), "functions": fns})).collect::<Vec<_>>(),
            "failed": self.failed.iter().map(|(f, why)| serde_json::json!({"file": escape::escape(f.as_bytes()), "why": why})).collect::<Vec<_>>(),
        })
    }
}

/// Every string of an LLM call in its escaped form (they are the target's
/// bytes), secrets redacted.
fn escape_call(mut c: llm::Call) -> llm::Call {
    let e = |s: &str| escape::escape(&redact::tokens(s.as_bytes()));
    c.model = c.model.as_deref().map(e);
    for t in &mut c.messages {
        t.role = e(&t.role);
        t.content = e(&t.content);
    }
    for t in &mut c.tools {
        *t = e(t);
    }
    c.reply = e(&c.reply);
    for t in &mut c.tool_calls {
        t.id = t.id.as_deref().map(e);
        t.name = e(&t.name);
        t.arguments = e(&t.arguments);
    }
    c.finish = c.finish.as_deref().map(e);
    c.error = c.error.as_deref().map(e);
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    #[expect(clippy::too_many_arguments, reason = "a record's fields, in order")]
    fn chunk(
        tid: u32,
        entry: u64,
        ts: u64,
        func: u32,
        offset: u32,
        total: u64,
        data: &[u8],
        flags: u16,
    ) -> TlsChunk {
        TlsChunk {
            ts_ns: ts,
            tgid: 10,
            tid,
            tree: 1,
            conn: 0xc0,
            entry_ns: entry,
            total,
            offset,
            func: func as u16,
            flags,
            data: data.to_vec(),
        }
    }

    fn calls(out: &[Output]) -> Vec<&CallRecord> {
        out.iter()
            .filter_map(|o| match o {
                Output::Call { rec, .. } => Some(rec),
                Output::Exchange { .. } => None,
            })
            .collect()
    }

    #[test]
    fn calls_are_put_together_and_tied_to_their_socket() {
        let ep = |_: u32, fd: i64| Some(format!("10.0.0.1:{fd}"));
        let mut t = Tracker::default();
        let req = b"POST /v1/chat/completions HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}";
        // A call in two records, with its socket write in between.
        assert!(
            t.chunk(
                chunk(
                    11,
                    100,
                    200,
                    tls::SSL_WRITE,
                    0,
                    req.len() as u64,
                    &req[..20],
                    0
                ),
                &ep
            )
            .is_empty()
        );
        t.socket_io(10, 11, 7, 150, &ep);
        let out = t.chunk(
            chunk(
                11,
                100,
                200,
                tls::SSL_WRITE,
                20,
                req.len() as u64,
                &req[20..],
                tls::LAST,
            ),
            &ep,
        );
        let c = calls(&out);
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].fd, Some(7));
        assert_eq!(c[0].endpoint.as_deref(), Some("10.0.0.1:7"));
        assert_eq!(c[0].captured, req.len() as u64);
        assert!(!c[0].incomplete);
        // The response, read through a memory buffer: no socket I/O during
        // the call, the connection is already known.
        let resp = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
        let out = t.chunk(
            chunk(
                11,
                300,
                310,
                tls::SSL_READ,
                0,
                resp.len() as u64,
                resp,
                tls::LAST,
            ),
            &ep,
        );
        assert_eq!(calls(&out)[0].fd, Some(7));
        assert!(out.iter().any(|o| matches!(o, Output::Exchange { rec, .. } if rec.status == Some(200) && rec.response_body == "ok")));
        assert_eq!(t.stats.http_exchanges, 1);
    }

    #[test]
    fn a_memory_buffer_library_binds_at_its_next_socket_write_and_losses_show() {
        let ep = |_: u32, fd: i64| Some(format!("e{fd}"));
        let mut t = Tracker::default();
        let out = t.chunk(
            chunk(5, 10, 20, tls::SSL_WRITE, 0, 3, b"GET", tls::LAST),
            &ep,
        );
        assert_eq!(calls(&out)[0].fd, None);
        // node writes the socket after SSL_write returned.
        t.socket_io(10, 5, 9, 30, &ep);
        let out = t.chunk(
            chunk(5, 40, 50, tls::SSL_WRITE, 0, 3, b" / ", tls::LAST),
            &ep,
        );
        assert_eq!(calls(&out)[0].fd, Some(9));
        // A call whose last record was lost is written as incomplete when
        // the thread's next call begins, and the stream stops being parsed.
        assert!(
            t.chunk(
                chunk(5, 60, 70, tls::SSL_WRITE, 0, 8192, &[b'x'; 4096], 0),
                &ep
            )
            .is_empty()
        );
        let out = t.chunk(chunk(5, 80, 90, tls::SSL_WRITE, 0, 1, b"y", tls::LAST), &ep);
        let c = calls(&out);
        assert_eq!(c.len(), 2);
        assert!(c[0].incomplete && !c[1].incomplete);
        assert_eq!(t.stats.incomplete_calls, 1);
        assert_eq!(t.stats.bytes_sent, 3 + 3 + 8192 + 1);
    }
}
