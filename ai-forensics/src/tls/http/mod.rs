//! HTTP/1.1 and HTTP/2 over a captured TLS connection: enough framing to
//! cut the two byte streams into requests and responses (heads, bodies,
//! chunked and event-stream bodies) and pair them.
//!
//! Everything here is fed untrusted bytes: sizes are bounded, malformed
//! input ends the parse of that connection (counted), never a panic.
mod h1;
mod h2;

use std::collections::VecDeque;

use self::{h1::H1, h2::H2};

/// Largest body kept per message; the rest is counted, not kept.
pub const MAX_BODY: usize = 1 << 20;
/// Largest head (request or status line and headers).
const MAX_HEAD: usize = 64 << 10;
/// HTTP/2 client connection preface.
pub const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
/// Most HTTP/2 streams open at once per connection.
const MAX_STREAMS: usize = 256;

/// One request or response.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Message {
    /// Request method (requests).
    pub method: Option<String>,
    /// Request target (requests).
    pub path: Option<String>,
    /// Status code (responses).
    pub status: Option<u16>,
    /// Headers in order, names lower-case, values as sent (not redacted).
    pub headers: Vec<(String, Vec<u8>)>,
    /// Body (decoded from chunked framing), at most [`MAX_BODY`] bytes.
    pub body: Vec<u8>,
    /// Body bytes beyond [`MAX_BODY`] (or lost from the capture).
    pub body_dropped: u64,
    /// When its first byte was seen.
    pub first_ns: u64,
    /// When its last byte was seen.
    pub last_ns: u64,
}

impl Message {
    /// First value of header `name` (lower-case).
    #[must_use]
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_slice())
    }

    /// Header value as text.
    #[must_use]
    pub fn header_str(&self, name: &str) -> Option<String> {
        self.header(name)
            .map(|v| String::from_utf8_lossy(v).trim().to_owned())
    }
}

/// A request and its response.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Exchange {
    /// `http/1.1` or `h2`.
    pub version: &'static str,
    /// HTTP/2 stream id (0 for HTTP/1).
    pub stream: u32,
    /// The request.
    pub request: Message,
    /// The response (`None` when the connection ended before it came).
    pub response: Option<Message>,
}

/// Which way bytes go, seen from the traced process.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dir {
    /// Written by the process.
    Send,
    /// Read by the process.
    Recv,
}

/// The protocol state of one connection.
#[derive(Debug, Default)]
pub struct Conn {
    /// Which direction carries requests (known from the first bytes).
    client: Option<Dir>,
    h1: Option<[H1; 2]>,
    h2: Option<H2>,
    /// The connection's bytes are not HTTP, or could not be parsed.
    pub failed: Option<String>,
    /// Requests waiting for their response (HTTP/1).
    waiting: VecDeque<Message>,
}

impl Conn {
    /// Whether the connection speaks HTTP/2.
    #[must_use]
    pub fn is_h2(&self) -> bool {
        self.h2.is_some()
    }

    /// Bytes this connection holds (buffers, bodies not yet complete).
    #[must_use]
    pub fn buffered(&self) -> usize {
        let mut n: usize = self.waiting.iter().map(|m| m.body.len()).sum();
        if let Some(h1) = &self.h1 {
            n += h1
                .iter()
                .map(|s| s.buf.len() + s.cur.body.len())
                .sum::<usize>();
        }
        if let Some(h2) = &self.h2 {
            n += h2.client.buf.len() + h2.server.buf.len();
            n += h2
                .streams
                .0
                .values()
                .map(|s| s.request.body.len() + s.response.body.len())
                .sum::<usize>();
        }
        n
    }

    /// Gives up on the connection (its parse state is dropped).
    pub fn abandon(&mut self, why: &str) {
        *self = Self {
            failed: Some(why.to_owned()),
            ..Self::default()
        };
    }

    /// Whether the traced process is the client.
    #[must_use]
    pub fn is_client(&self) -> bool {
        self.client != Some(Dir::Recv)
    }

    /// Feeds bytes that went `dir` at `ts`; returns the exchanges they completed.
    pub fn feed(&mut self, dir: Dir, data: &[u8], ts: u64) -> Vec<Exchange> {
        if self.failed.is_some() || data.is_empty() {
            return Vec::new();
        }
        if self.client.is_none() {
            if data.starts_with(&H2_PREFACE[..data.len().min(H2_PREFACE.len())]) {
                self.client = Some(dir);
                self.h2 = Some(H2::default());
            } else if looks_like_request(data) {
                self.client = Some(dir);
                self.h1 = Some([H1::new(true), H1::new(false)]);
            } else {
                self.failed = Some("not HTTP".into());
                return Vec::new();
            }
        }
        let from_client = Some(dir) == self.client;
        if let Some(h2) = &mut self.h2 {
            return match h2.feed(from_client, data, ts) {
                Ok(v) => v,
                Err(e) => {
                    self.failed = Some(e);
                    Vec::new()
                }
            };
        }
        let Some(h1) = &mut self.h1 else {
            return Vec::new();
        };
        let side = &mut h1[usize::from(!from_client)];
        let done = match side.feed(data, ts) {
            Ok(v) => v,
            Err(e) => {
                self.failed = Some(e);
                return Vec::new();
            }
        };
        let mut out = Vec::new();
        for m in done {
            if from_client {
                self.waiting.push_back(m);
            } else if m.status.is_some_and(|s| (100..200).contains(&s)) {
                // 100 Continue and friends come before the real response.
            } else {
                let request = self.waiting.pop_front().unwrap_or_default();
                out.push(Exchange {
                    version: "http/1.1",
                    stream: 0,
                    request,
                    response: Some(m),
                });
            }
        }
        out
    }

    /// The connection is gone: a response delimited by the connection's
    /// end completes, and requests left unanswered come out without one.
    pub fn close(&mut self) -> Vec<Exchange> {
        let mut out = Vec::new();
        if let Some(h1) = &mut self.h1
            && let Some(m) = h1[1].finish()
        {
            out.push(Exchange {
                version: "http/1.1",
                stream: 0,
                request: self.waiting.pop_front().unwrap_or_default(),
                response: Some(m),
            });
        }
        for request in self.waiting.drain(..) {
            out.push(Exchange {
                version: "http/1.1",
                stream: 0,
                request,
                response: None,
            });
        }
        if let Some(h2) = &mut self.h2 {
            out.extend(h2.streams.drain_all());
        }
        out
    }
}

fn looks_like_request(data: &[u8]) -> bool {
    const METHODS: &[&[u8]] = &[
        b"GET ",
        b"POST ",
        b"PUT ",
        b"DELETE ",
        b"HEAD ",
        b"OPTIONS ",
        b"PATCH ",
        b"CONNECT ",
    ];
    METHODS
        .iter()
        .any(|m| data.starts_with(&m[..data.len().min(m.len())]))
}

#[cfg(test)]
mod tests {
    use super::{
        h2::{DATA, END_HEADERS, END_STREAM, HEADERS, PADDED},
        *,
    };

    fn frame(kind: u8, flags: u8, id: u32, payload: &[u8]) -> Vec<u8> {
        let n = payload.len();
        let mut v = vec![(n >> 16) as u8, (n >> 8) as u8, n as u8, kind, flags];
        v.extend_from_slice(&id.to_be_bytes());
        v.extend_from_slice(payload);
        v
    }

    #[test]
    fn http1_content_length_and_chunked_split_anywhere() {
        let req =
            b"POST /v1/chat/completions HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello";
        let resp = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Type: text/event-stream\r\n\r\n6\r\ndata: \r\n3\r\nabc\r\n0\r\n\r\n";
        for cut in 1..resp.len() {
            let mut c = Conn::default();
            assert!(c.feed(Dir::Send, &req[..10], 1).is_empty());
            assert!(c.feed(Dir::Send, &req[10..], 2).is_empty());
            let mut ex = c.feed(Dir::Recv, &resp[..cut], 3);
            ex.extend(c.feed(Dir::Recv, &resp[cut..], 4));
            assert_eq!(ex.len(), 1, "cut {cut}");
            assert_eq!(ex[0].request.body, b"hello");
            assert_eq!(ex[0].request.path.as_deref(), Some("/v1/chat/completions"));
            let r = ex[0].response.as_ref().map(|r| r.body.clone());
            assert_eq!(r.as_deref(), Some(&b"data: abc"[..]));
        }
    }

    #[test]
    fn http1_server_side_and_close_delimited() {
        let mut c = Conn::default();
        assert!(c.feed(Dir::Recv, b"GET / HTTP/1.1\r\n\r\n", 1).is_empty());
        assert!(!c.is_client());
        assert!(
            c.feed(Dir::Send, b"HTTP/1.0 200 OK\r\n\r\npartial", 2)
                .is_empty()
        );
        let ex = c.close();
        assert_eq!(ex.len(), 1);
        assert_eq!(
            ex[0].response.as_ref().map(|r| r.body.clone()),
            Some(b"partial".to_vec())
        );
        let mut junk = Conn::default();
        assert!(junk.feed(Dir::Send, b"\x16\x03\x01garbage", 1).is_empty());
        assert!(junk.failed.is_some());
    }

    #[test]
    fn http2_headers_data_and_hpack_state() {
        let mut enc = fluke_hpack::Encoder::new();
        let mut senc = fluke_hpack::Encoder::new();
        let mut c = Conn::default();
        let mut client = H2_PREFACE.to_vec();
        client.extend(frame(4, 0, 0, b""));
        for id in [1u32, 3] {
            let h = enc.encode(vec![
                (&b":method"[..], &b"POST"[..]),
                (b":path", b"/v1/messages"),
                (b"authorization", b"Bearer secret-token-xyz"),
            ]);
            client.extend(frame(HEADERS, END_HEADERS, id, &h));
            client.extend(frame(DATA, END_STREAM, id, b"{\"model\":\"m\"}"));
        }
        // Fed one byte at a time.
        for b in client.chunks(1) {
            assert!(c.feed(Dir::Send, b, 1).is_empty());
        }
        let h = senc.encode(vec![(&b":status"[..], &b"200"[..])]);
        let mut server = frame(HEADERS, END_HEADERS, 3, &h);
        server.extend(frame(DATA, PADDED | END_STREAM, 3, b"\x02{}xx"));
        let ex = c.feed(Dir::Recv, &server, 2);
        assert!(c.is_h2());
        assert_eq!(ex.len(), 1);
        assert_eq!(ex[0].stream, 3);
        assert_eq!(ex[0].request.path.as_deref(), Some("/v1/messages"));
        assert_eq!(
            ex[0].request.header_str("authorization").as_deref(),
            Some("Bearer secret-token-xyz")
        );
        assert_eq!(
            ex[0].response.as_ref().map(|r| r.body.clone()),
            Some(b"{}".to_vec())
        );
        assert_eq!(c.close().len(), 1);
    }
}
