//! HTTP/2 framing: frames, HPACK header blocks (one decoder per
//! direction, fed every block in order), DATA per stream.
use std::collections::BTreeMap;

use super::{Exchange, H2_PREFACE, MAX_BODY, MAX_HEAD, MAX_STREAMS, Message};

/// One HTTP/2 stream.
#[derive(Debug, Default)]
pub(super) struct Stream {
    pub(super) request: Message,
    pub(super) response: Message,
    request_done: bool,
    response_done: bool,
    has_response: bool,
}

/// Streams of a connection, by id.
#[derive(Debug, Default)]
pub(super) struct Streams(pub(super) BTreeMap<u32, Stream>);

impl Streams {
    pub(super) fn drain_all(&mut self) -> Vec<Exchange> {
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
pub(super) struct H2Side {
    pub(super) buf: Vec<u8>,
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
pub(super) struct H2 {
    pub(super) client: H2Side,
    pub(super) server: H2Side,
    pub(super) streams: Streams,
}

pub(super) const DATA: u8 = 0;
pub(super) const HEADERS: u8 = 1;
pub(super) const CONTINUATION: u8 = 9;
pub(super) const END_STREAM: u8 = 0x1;
pub(super) const END_HEADERS: u8 = 0x4;
pub(super) const PADDED: u8 = 0x8;
pub(super) const PRIORITY: u8 = 0x20;

impl H2 {
    pub(super) fn feed(
        &mut self,
        from_client: bool,
        data: &[u8],
        ts: u64,
    ) -> Result<Vec<Exchange>, String> {
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
