//! HTTP/1.1 and HTTP/2 over a captured TLS connection: enough framing to
//! cut the two byte streams into requests and responses (heads, bodies,
//! chunked and event-stream bodies) and pair them.
//!
//! Everything here is fed untrusted bytes: sizes are bounded, malformed
//! input ends the parse of that connection (counted), never a panic.
use std::collections::{BTreeMap, VecDeque};

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

#[derive(Debug)]
enum Body {
    /// Waiting for a head.
    Head,
    /// This many bytes left.
    Length(u64),
    /// Chunked: waiting for a size line.
    ChunkSize,
    /// Chunked: this many bytes of the chunk left, then CRLF.
    Chunk(u64),
    /// Chunked: the CRLF after a chunk.
    ChunkEnd,
    /// Chunked: trailers after the last chunk.
    Trailers,
    /// Until the connection closes.
    UntilClose,
}

/// One direction of an HTTP/1 connection.
#[derive(Debug)]
struct H1 {
    requests: bool,
    buf: Vec<u8>,
    state: Body,
    cur: Message,
    /// Methods of requests sent, to know which responses have no body (HEAD).
    head_requests: u32,
}

impl H1 {
    fn new(requests: bool) -> Self {
        Self {
            requests,
            buf: Vec::new(),
            state: Body::Head,
            cur: Message::default(),
            head_requests: 0,
        }
    }

    fn finish(&mut self) -> Option<Message> {
        matches!(self.state, Body::UntilClose).then(|| {
            self.state = Body::Head;
            std::mem::take(&mut self.cur)
        })
    }

    fn body(&mut self, data: &[u8]) {
        let room = MAX_BODY.saturating_sub(self.cur.body.len());
        let keep = data.len().min(room);
        self.cur.body.extend_from_slice(&data[..keep]);
        self.cur.body_dropped += (data.len() - keep) as u64;
    }

    fn feed(&mut self, data: &[u8], ts: u64) -> Result<Vec<Message>, String> {
        self.buf.extend_from_slice(data);
        let mut out = Vec::new();
        loop {
            match self.state {
                Body::Head => {
                    if self.buf.is_empty() {
                        break;
                    }
                    let Some(used) = self.head(ts)? else {
                        if self.buf.len() > MAX_HEAD {
                            return Err("HTTP head too long".into());
                        }
                        break;
                    };
                    self.buf.drain(..used);
                    if matches!(self.state, Body::Head) {
                        self.cur.last_ns = ts;
                        out.push(std::mem::take(&mut self.cur));
                    }
                }
                Body::Length(n) => {
                    let take = (n as usize).min(self.buf.len());
                    let piece: Vec<u8> = self.buf.drain(..take).collect();
                    self.body(&piece);
                    let left = n - take as u64;
                    self.cur.last_ns = ts;
                    if left == 0 {
                        self.state = Body::Head;
                        out.push(std::mem::take(&mut self.cur));
                    } else {
                        self.state = Body::Length(left);
                        break;
                    }
                }
                Body::ChunkSize => {
                    let Some(end) = find(&self.buf, b"\r\n") else {
                        if self.buf.len() > 1024 {
                            return Err("chunk size line too long".into());
                        }
                        break;
                    };
                    let line = String::from_utf8_lossy(&self.buf[..end]).into_owned();
                    let hex = line.split(';').next().unwrap_or("").trim();
                    let n = u64::from_str_radix(hex, 16)
                        .map_err(|_| format!("bad chunk size {hex:?}"))?;
                    self.buf.drain(..end + 2);
                    self.state = if n == 0 {
                        Body::Trailers
                    } else {
                        Body::Chunk(n)
                    };
                }
                Body::Chunk(n) => {
                    if self.buf.is_empty() {
                        break;
                    }
                    let take = (n as usize).min(self.buf.len());
                    let piece: Vec<u8> = self.buf.drain(..take).collect();
                    self.body(&piece);
                    self.cur.last_ns = ts;
                    let left = n - take as u64;
                    self.state = if left == 0 {
                        Body::ChunkEnd
                    } else {
                        Body::Chunk(left)
                    };
                }
                Body::ChunkEnd => {
                    if self.buf.len() < 2 {
                        break;
                    }
                    if &self.buf[..2] != b"\r\n" {
                        return Err("chunk not followed by CRLF".into());
                    }
                    self.buf.drain(..2);
                    self.state = Body::ChunkSize;
                }
                Body::Trailers => {
                    let Some(end) = find(&self.buf, b"\r\n") else {
                        break;
                    };
                    self.buf.drain(..end + 2);
                    if end == 0 {
                        self.state = Body::Head;
                        self.cur.last_ns = ts;
                        out.push(std::mem::take(&mut self.cur));
                    }
                }
                Body::UntilClose => {
                    let piece = std::mem::take(&mut self.buf);
                    self.body(&piece);
                    self.cur.last_ns = ts;
                    break;
                }
            }
        }
        Ok(out)
    }

    /// Parses a head at the start of the buffer; `None` when incomplete.
    /// Sets the body state; returns the bytes used.
    fn head(&mut self, ts: u64) -> Result<Option<usize>, String> {
        let mut headers = [httparse::EMPTY_HEADER; 96];
        let mut m = Message {
            first_ns: ts,
            ..Message::default()
        };
        let used = if self.requests {
            let mut r = httparse::Request::new(&mut headers);
            match r.parse(&self.buf) {
                Ok(httparse::Status::Complete(n)) => {
                    m.method = r.method.map(str::to_owned);
                    m.path = r.path.map(str::to_owned);
                    m.headers = r
                        .headers
                        .iter()
                        .map(|h| (h.name.to_ascii_lowercase(), h.value.to_vec()))
                        .collect();
                    n
                }
                Ok(httparse::Status::Partial) => return Ok(None),
                Err(e) => return Err(format!("HTTP request: {e}")),
            }
        } else {
            let mut r = httparse::Response::new(&mut headers);
            match r.parse(&self.buf) {
                Ok(httparse::Status::Complete(n)) => {
                    m.status = r.code;
                    m.headers = r
                        .headers
                        .iter()
                        .map(|h| (h.name.to_ascii_lowercase(), h.value.to_vec()))
                        .collect();
                    n
                }
                Ok(httparse::Status::Partial) => return Ok(None),
                Err(e) => return Err(format!("HTTP response: {e}")),
            }
        };
        let chunked = m
            .header_str("transfer-encoding")
            .is_some_and(|t| t.to_ascii_lowercase().contains("chunked"));
        let length = m
            .header_str("content-length")
            .and_then(|l| l.parse::<u64>().ok());
        let no_body = if self.requests {
            if m.method.as_deref() == Some("HEAD") {
                self.head_requests += 1;
            }
            !chunked && length.is_none()
        } else {
            let s = m.status.unwrap_or(0);
            (100..200).contains(&s) || s == 204 || s == 304
        };
        self.state = if no_body {
            Body::Head
        } else if chunked {
            Body::ChunkSize
        } else if let Some(n) = length {
            if n == 0 { Body::Head } else { Body::Length(n) }
        } else {
            Body::UntilClose
        };
        self.cur = m;
        Ok(Some(used))
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// One HTTP/2 stream.
#[derive(Debug, Default)]
struct Stream {
    request: Message,
    response: Message,
    request_done: bool,
    response_done: bool,
    has_response: bool,
}

/// Streams of a connection, by id.
#[derive(Debug, Default)]
struct Streams(BTreeMap<u32, Stream>);

impl Streams {
    fn drain_all(&mut self) -> Vec<Exchange> {
        std::mem::take(&mut self.0)
            .into_iter()
            .map(|(id, s)| Exchange {
                version: "h2",
                stream: id,
                request: s.request,
                response: s.has_response.then_some(s.response),
            })
            .collect()
    }
}

/// One direction's framing state.
#[derive(Default)]
struct H2Side {
    buf: Vec<u8>,
    preface_done: bool,
    hpack: fluke_hpack::Decoder<'static>,
    /// A header block continued in CONTINUATION frames: (stream, end_stream, bytes).
    block: Option<(u32, bool, Vec<u8>)>,
}

impl std::fmt::Debug for H2Side {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("H2Side")
            .field("buffered", &self.buf.len())
            .finish_non_exhaustive()
    }
}

/// An HTTP/2 connection.
#[derive(Debug, Default)]
struct H2 {
    client: H2Side,
    server: H2Side,
    streams: Streams,
}

const DATA: u8 = 0;
const HEADERS: u8 = 1;
const CONTINUATION: u8 = 9;
const END_STREAM: u8 = 0x1;
const END_HEADERS: u8 = 0x4;
const PADDED: u8 = 0x8;
const PRIORITY: u8 = 0x20;

impl H2 {
    fn feed(&mut self, from_client: bool, data: &[u8], ts: u64) -> Result<Vec<Exchange>, String> {
        let side = if from_client {
            &mut self.client
        } else {
            &mut self.server
        };
        side.buf.extend_from_slice(data);
        if from_client && !side.preface_done {
            if side.buf.len() < H2_PREFACE.len() {
                return Ok(Vec::new());
            }
            side.buf.drain(..H2_PREFACE.len());
            side.preface_done = true;
        }
        let mut out = Vec::new();
        loop {
            let side = if from_client {
                &mut self.client
            } else {
                &mut self.server
            };
            if side.buf.len() < 9 {
                break;
            }
            let len = (usize::from(side.buf[0]) << 16)
                | (usize::from(side.buf[1]) << 8)
                | usize::from(side.buf[2]);
            if len > (1 << 24) {
                return Err("HTTP/2 frame too long".into());
            }
            if side.buf.len() < 9 + len {
                if side.buf.len() > (16 << 20) {
                    return Err("HTTP/2 frame never completes".into());
                }
                break;
            }
            let (kind, flags) = (side.buf[3], side.buf[4]);
            let id = u32::from_be_bytes([side.buf[5], side.buf[6], side.buf[7], side.buf[8]])
                & 0x7fff_ffff;
            let payload: Vec<u8> = side.buf[9..9 + len].to_vec();
            side.buf.drain(..9 + len);
            self.frame(from_client, kind, flags, id, &payload, ts, &mut out)?;
        }
        Ok(out)
    }

    #[expect(clippy::too_many_arguments, reason = "one frame's fields")]
    fn frame(
        &mut self,
        from_client: bool,
        kind: u8,
        flags: u8,
        id: u32,
        payload: &[u8],
        ts: u64,
        out: &mut Vec<Exchange>,
    ) -> Result<(), String> {
        match kind {
            DATA => {
                let body = unpad(payload, flags)?;
                let st = self.stream(id)?;
                let m = if from_client {
                    &mut st.request
                } else {
                    &mut st.response
                };
                let room = MAX_BODY.saturating_sub(m.body.len());
                let keep = body.len().min(room);
                m.body.extend_from_slice(&body[..keep]);
                m.body_dropped += (body.len() - keep) as u64;
                m.last_ns = ts;
                if flags & END_STREAM != 0 {
                    self.end(from_client, id, out);
                }
            }
            HEADERS => {
                let mut block = unpad(payload, flags)?;
                if flags & PRIORITY != 0 {
                    block = block.get(5..).ok_or("short HEADERS priority")?;
                }
                let end_stream = flags & END_STREAM != 0;
                if flags & END_HEADERS != 0 {
                    self.headers(from_client, id, block, end_stream, ts, out)?;
                } else {
                    let side = self.side(from_client);
                    side.block = Some((id, end_stream, block.to_vec()));
                }
            }
            CONTINUATION => {
                let side = self.side(from_client);
                let Some((sid, end_stream, mut block)) = side.block.take() else {
                    return Err("CONTINUATION without HEADERS".into());
                };
                block.extend_from_slice(payload);
                if block.len() > MAX_HEAD * 4 {
                    return Err("HTTP/2 header block too long".into());
                }
                if flags & END_HEADERS != 0 {
                    self.headers(from_client, sid, &block, end_stream, ts, out)?;
                } else {
                    self.side(from_client).block = Some((sid, end_stream, block));
                }
            }
            // SETTINGS, PING, WINDOW_UPDATE, PRIORITY, GOAWAY, RST_STREAM,
            // PUSH_PROMISE: nothing a request or reply is made of.
            _ => {}
        }
        Ok(())
    }

    fn side(&mut self, from_client: bool) -> &mut H2Side {
        if from_client {
            &mut self.client
        } else {
            &mut self.server
        }
    }

    fn stream(&mut self, id: u32) -> Result<&mut Stream, String> {
        if !self.streams.0.contains_key(&id) && self.streams.0.len() >= MAX_STREAMS {
            return Err("too many HTTP/2 streams".into());
        }
        Ok(self.streams.0.entry(id).or_default())
    }

    fn headers(
        &mut self,
        from_client: bool,
        id: u32,
        block: &[u8],
        end_stream: bool,
        ts: u64,
        out: &mut Vec<Exchange>,
    ) -> Result<(), String> {
        // Every block goes through the decoder, in order: its table is
        // shared by all streams of the direction.
        let list = self
            .side(from_client)
            .hpack
            .decode(block)
            .map_err(|e| format!("HPACK: {e:?}"))?;
        let st = self.stream(id)?;
        let m = if from_client {
            &mut st.request
        } else {
            &mut st.response
        };
        let mut informational = false;
        for (n, v) in list {
            let name = String::from_utf8_lossy(&n).to_ascii_lowercase();
            match name.as_str() {
                ":method" => m.method = Some(String::from_utf8_lossy(&v).into_owned()),
                ":path" => m.path = Some(String::from_utf8_lossy(&v).into_owned()),
                ":status" => {
                    let s = String::from_utf8_lossy(&v).parse::<u16>().ok();
                    informational = s.is_some_and(|s| (100..200).contains(&s));
                    if !informational {
                        m.status = s;
                    }
                }
                _ => m.headers.push((name, v)),
            }
        }
        if m.first_ns == 0 {
            m.first_ns = ts;
        }
        m.last_ns = ts;
        if !from_client && !informational {
            st.has_response = true;
        }
        if end_stream {
            self.end(from_client, id, out);
        }
        Ok(())
    }

    fn end(&mut self, from_client: bool, id: u32, out: &mut Vec<Exchange>) {
        let Some(st) = self.streams.0.get_mut(&id) else {
            return;
        };
        if from_client {
            st.request_done = true;
        } else {
            st.response_done = true;
        }
        if st.request_done
            && st.response_done
            && let Some(s) = self.streams.0.remove(&id)
        {
            out.push(Exchange {
                version: "h2",
                stream: id,
                request: s.request,
                response: s.has_response.then_some(s.response),
            });
        }
    }
}

fn unpad(payload: &[u8], flags: u8) -> Result<&[u8], String> {
    if flags & PADDED == 0 {
        return Ok(payload);
    }
    let pad = usize::from(*payload.first().ok_or("empty padded frame")?);
    payload
        .get(1..payload.len().saturating_sub(pad))
        .filter(|_| pad < payload.len())
        .ok_or_else(|| "bad HTTP/2 padding".into())
}

#[cfg(test)]
mod tests {
    use super::*;

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
