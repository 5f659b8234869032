//! Draining the ring buffer. No decoding and no I/O here: records are copied
//! into batches and handed to the consumer thread, so the ring buffer is
//! emptied as fast as the kernel fills it.
use std::{
    os::fd::AsRawFd as _,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
        mpsc::SyncSender,
    },
    thread::{self, JoinHandle},
};

use aya::maps::{MapData, RingBuf};

/// Records copied out of the ring buffer, back to back.
#[derive(Debug, Default)]
pub struct Batch {
    /// Record bytes.
    pub data: Vec<u8>,
    /// (offset, length) of each record in `data`.
    pub spans: Vec<(u32, u32)>,
}

impl Batch {
    /// The records of the batch.
    pub fn records(&self) -> impl Iterator<Item = &[u8]> {
        self.spans
            .iter()
            .map(|(o, l)| &self.data[*o as usize..(*o + *l) as usize])
    }
}

/// Counters of the reader.
#[derive(Debug, Default)]
pub struct ReaderStats {
    /// Records read.
    pub records: AtomicU64,
    /// Bytes read.
    pub bytes: AtomicU64,
}

/// Records per batch before it is handed over.
const BATCH_RECORDS: usize = 4096;

/// Starts the reader thread. It stops after `stop` is set, once the ring
/// buffer is empty, so nothing submitted before `stop` is lost.
///
/// Syscall records do not wake the reader until a quarter megabyte has
/// piled up (a wake-up costs the traced process an interrupt), so the reader
/// also looks every `poll_ms` milliseconds: that bounds how long a record
/// waits when traffic is light.
pub fn spawn<M: From<Batch> + Send + 'static>(
    mut ring: RingBuf<MapData>,
    tx: SyncSender<M>,
    stop: Arc<AtomicBool>,
    stats: Arc<ReaderStats>,
    poll_ms: i32,
) -> std::io::Result<JoinHandle<()>> {
    thread::Builder::new()
        .name("ringbuf-reader".into())
        .spawn(move || {
            let fd = ring.as_raw_fd();
            loop {
                let stopping = stop.load(Ordering::Acquire);
                let mut batch = Batch::default();
                while let Some(item) = ring.next() {
                    let off = batch.data.len() as u32;
                    batch.data.extend_from_slice(&item);
                    batch.spans.push((off, item.len() as u32));
                    if batch.spans.len() >= BATCH_RECORDS {
                        break;
                    }
                }
                let n = batch.spans.len();
                if n > 0 {
                    stats.records.fetch_add(n as u64, Ordering::Relaxed);
                    stats
                        .bytes
                        .fetch_add(batch.data.len() as u64, Ordering::Relaxed);
                    if tx.send(M::from(batch)).is_err() {
                        return;
                    }
                    if n >= BATCH_RECORDS {
                        continue;
                    }
                }
                if stopping {
                    return;
                }
                let mut pfd = libc::pollfd {
                    fd,
                    events: libc::POLLIN,
                    revents: 0,
                };
                // SAFETY: one valid pollfd for the duration of the call.
                unsafe { libc::poll(&raw mut pfd, 1, poll_ms) };
            }
        })
}
