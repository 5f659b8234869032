//! HTTP/1.1 framing of one direction: heads, and bodies by length,
//! chunked, or until the connection closes.
use super::{MAX_BODY, MAX_HEAD, Message};

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
pub(super) struct H1 {
    requests: bool,
    pub(super) buf: Vec<u8>,
    state: Body,
    pub(super) cur: Message,
    /// Methods of requests sent, to know which responses have no body (HEAD).
    head_requests: u32,
}

impl H1 {
    pub(super) fn new(requests: bool) -> Self {
        Self {
            requests,
            buf: Vec::new(),
            state: Body::Head,
            cur: Message::default(),
            head_requests: 0,
        }
    }

    pub(super) fn finish(&mut self) -> Option<Message> {
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

    pub(super) fn feed(&mut self, data: &[u8], ts: u64) -> Result<Vec<Message>, String> {
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
                    m.headers = headers_of(r.headers);
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
                    m.headers = headers_of(r.headers);
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

/// Headers with lower-case names, values as sent.
fn headers_of(h: &[httparse::Header<'_>]) -> Vec<(String, Vec<u8>)> {
    h.iter()
        .map(|h| (h.name.to_ascii_lowercase(), h.value.to_vec()))
        .collect()
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}
