//! Layer compression: magic-byte detection, streaming decoders and encoders.
//!
//! The [`Compression`] enum is `hoist_oci`'s, so the media type of a blob and the
//! format this crate writes or detects are the same value.

use std::collections::VecDeque;
use std::io::{self, Write};
use std::sync::mpsc::{self, Receiver, Sender, SyncSender, TryRecvError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use flate2::{Compress, FlushCompress, Status};
pub use hoist_oci::media_type::Compression;

/// The compression a stream starting with `prefix` uses, by magic bytes (see
/// [`Compression::detect`]; anything unrecognized is taken as a plain tar, whose
/// parser rejects garbage on its own).
pub fn detect(prefix: &[u8]) -> Compression {
    Compression::detect(prefix)
}

pub use hoist_oci::media_type::Decompressor;

/// A writer that compresses into `W`.
pub(crate) enum Encoder<W: Write> {
    Plain(W),
    Gzip(ParallelGzEncoder<W>),
    Zstd(zstd::stream::write::Encoder<'static, W>),
}

impl<W: Write> Encoder<W> {
    /// A deterministic encoder: gzip without mtime, file name or OS byte variance,
    /// on up to `threads` threads with the same bytes for any count (see
    /// [`ParallelGzEncoder`]); single-threaded zstd.
    pub(crate) fn new(
        inner: W,
        compression: Compression,
        level: Option<i32>,
        threads: usize,
    ) -> io::Result<Self> {
        Ok(match compression {
            Compression::None => Encoder::Plain(inner),
            Compression::Gzip => {
                let level = level.map_or(6, |l| l.clamp(0, 9) as u32);
                Encoder::Gzip(ParallelGzEncoder::new(inner, level, threads))
            }
            Compression::Zstd => {
                let level = level.unwrap_or(zstd::DEFAULT_COMPRESSION_LEVEL);
                let mut enc = zstd::stream::write::Encoder::new(inner, level)?;
                enc.include_checksum(true)?;
                Encoder::Zstd(enc)
            }
        })
    }

    /// Flush the compressor's trailer and hand back the inner writer.
    pub(crate) fn finish(self) -> io::Result<W> {
        match self {
            Encoder::Plain(w) => Ok(w),
            Encoder::Gzip(e) => e.finish(),
            Encoder::Zstd(e) => e.finish(),
        }
    }
}

impl<W: Write> Write for Encoder<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Encoder::Plain(w) => w.write(buf),
            Encoder::Gzip(w) => w.write(buf),
            Encoder::Zstd(w) => w.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Encoder::Plain(w) => w.flush(),
            Encoder::Gzip(w) => w.flush(),
            Encoder::Zstd(w) => w.flush(),
        }
    }
}

/// Uncompressed bytes per deflate block of [`ParallelGzEncoder`].
///
/// The output depends on it, so it is a constant and never follows the core count.
pub const GZIP_BLOCK_SIZE: usize = 1 << 20;

/// Deflate's window: each block is primed with this much of the data before it.
const DICT_SIZE: usize = 32 * 1024;

/// The gzip header `GzBuilder::new().mtime(0).operating_system(255)` writes: no
/// mtime, name, comment or extra; XFL from the level, as flate2 sets it.
fn gzip_header(level: u32) -> [u8; 10] {
    let xfl = if level >= 9 {
        2
    } else if level <= 1 {
        4
    } else {
        0
    };
    [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, xfl, 255]
}

/// A gzip writer that deflates fixed-size blocks on several threads, pigz-style,
/// with output that depends only on the input bytes and the level.
///
/// The input is cut into [`GZIP_BLOCK_SIZE`] blocks, however it arrives. Each
/// block is compressed as raw deflate by a fresh compressor primed with the last
/// 32 KiB of the block before it (so matches still reach back across the cut), and
/// ends with a sync flush (the last one with the final block), so the
/// concatenation is one deflate stream inside one gzip member whose CRC-32 and
/// ISIZE cover the whole input. Blocks are written out in order; at most two per
/// thread are in flight. The thread count never changes a byte: one thread runs
/// the same per-block code inline, without spawning anything, and so do inputs
/// shorter than one block.
///
/// [`Write::flush`] writes out the blocks already compressed but does not cut a
/// block (that would make the output depend on when it is called).
pub struct ParallelGzEncoder<W: Write> {
    inner: W,
    level: flate2::Compression,
    threads: usize,
    header_written: bool,
    /// The block being filled; handed off once full *and* more input arrives, so
    /// the last block is always the one `finish` sees.
    block: Vec<u8>,
    /// The last `DICT_SIZE` bytes of the block handed off before `block`.
    dict: Vec<u8>,
    crc: flate2::Crc,
    len: u64,
    pool: Option<Pool>,
    /// Compressed blocks not yet written, oldest first.
    pending: VecDeque<Receiver<io::Result<Vec<u8>>>>,
}

impl<W: Write> ParallelGzEncoder<W> {
    /// A gzip writer at `level` (0-9, clamped) compressing on up to `threads`
    /// threads (0 counts as 1).
    pub fn new(inner: W, level: u32, threads: usize) -> Self {
        ParallelGzEncoder {
            inner,
            level: flate2::Compression::new(level.min(9)),
            threads: threads.max(1),
            header_written: false,
            block: Vec::new(),
            dict: Vec::new(),
            crc: flate2::Crc::new(),
            len: 0,
            pool: None,
            pending: VecDeque::new(),
        }
    }

    /// Compress what is left, write the trailer and hand back the inner writer.
    pub fn finish(mut self) -> io::Result<W> {
        self.hand_off(true)?;
        while !self.pending.is_empty() {
            self.write_oldest()?;
        }
        let crc = self.crc.sum();
        let mut trailer = [0u8; 8];
        trailer[..4].copy_from_slice(&crc.to_le_bytes());
        // ISIZE is the input size modulo 2^32.
        trailer[4..].copy_from_slice(&(self.len as u32).to_le_bytes());
        self.inner.write_all(&trailer)?;
        // Stop the workers before giving the writer back.
        self.pool = None;
        Ok(self.inner)
    }

    /// Send `self.block` off to be compressed (or compress it here with one thread).
    fn hand_off(&mut self, last: bool) -> io::Result<()> {
        let data = if last {
            std::mem::take(&mut self.block)
        } else {
            std::mem::replace(&mut self.block, Vec::with_capacity(GZIP_BLOCK_SIZE))
        };
        let dict = if last {
            std::mem::take(&mut self.dict)
        } else {
            let tail = data[data.len().saturating_sub(DICT_SIZE)..].to_vec();
            std::mem::replace(&mut self.dict, tail)
        };
        if self.pool.is_none() && self.threads > 1 && !last {
            self.pool = Pool::spawn(self.threads);
            if self.pool.is_none() {
                // Not even one thread: carry on inline, with the same bytes.
                self.threads = 1;
            }
        }
        let Some(size) = self.pool.as_ref().map(|p| p.size) else {
            let out = compress_block(&data, &dict, self.level, last)?;
            return self.write_compressed(&out);
        };
        while self.pending.len() >= 2 * size {
            self.write_oldest()?;
        }
        let (done_tx, done_rx) = mpsc::sync_channel(1);
        let pool = self.pool.as_ref().ok_or_else(worker_died)?;
        pool.send(Job {
            data,
            dict,
            level: self.level,
            last,
            done: done_tx,
        })?;
        self.pending.push_back(done_rx);
        // Write whatever is already done, without waiting.
        while let Some(rx) = self.pending.front() {
            match rx.try_recv() {
                Ok(out) => {
                    self.pending.pop_front();
                    self.write_compressed(&out?)?;
                }
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => return Err(worker_died()),
            }
        }
        Ok(())
    }

    /// Wait for the oldest block in flight and write it.
    fn write_oldest(&mut self) -> io::Result<()> {
        let Some(rx) = self.pending.pop_front() else {
            return Ok(());
        };
        let out = rx.recv().map_err(|_| worker_died())??;
        self.write_compressed(&out)
    }

    fn write_compressed(&mut self, out: &[u8]) -> io::Result<()> {
        if !self.header_written {
            self.inner.write_all(&gzip_header(self.level.level()))?;
            self.header_written = true;
        }
        self.inner.write_all(out)
    }
}

impl<W: Write> Write for ParallelGzEncoder<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        if self.block.len() == GZIP_BLOCK_SIZE {
            self.hand_off(false)?;
        }
        if self.block.capacity() == 0 {
            self.block.reserve_exact(GZIP_BLOCK_SIZE);
        }
        let n = buf.len().min(GZIP_BLOCK_SIZE - self.block.len());
        self.block.extend_from_slice(&buf[..n]);
        self.crc.update(&buf[..n]);
        self.len += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        while !self.pending.is_empty() {
            self.write_oldest()?;
        }
        self.inner.flush()
    }
}

fn worker_died() -> io::Error {
    io::Error::other("gzip compression thread exited unexpectedly")
}

/// Deflate one block: raw deflate primed with `dict`, ending byte-aligned with a
/// sync flush, or with the final block if `last`. A pure function of its arguments.
fn compress_block(
    data: &[u8],
    dict: &[u8],
    level: flate2::Compression,
    last: bool,
) -> io::Result<Vec<u8>> {
    let mut c = Compress::new(level, false);
    if !dict.is_empty() {
        c.set_dictionary(dict).map_err(io::Error::other)?;
    }
    let flush = if last {
        FlushCompress::Finish
    } else {
        FlushCompress::Sync
    };
    // Enough for incompressible data plus stored-block and flush overhead, so one
    // call normally does it all.
    let mut out = Vec::with_capacity(data.len() + data.len() / 8 + 1024);
    loop {
        let (in_before, out_before) = (c.total_in(), c.total_out());
        let consumed = usize::try_from(in_before).map_err(io::Error::other)?;
        let status = c
            .compress_vec(&data[consumed..], &mut out, flush)
            .map_err(io::Error::other)?;
        let all_in = usize::try_from(c.total_in()).map_err(io::Error::other)? == data.len();
        let room_left = out.len() < out.capacity();
        match status {
            Status::StreamEnd => return Ok(out),
            // A sync flush is complete once deflate stops with output room to spare.
            _ if !last && all_in && room_left => return Ok(out),
            _ if room_left && (in_before, out_before) == (c.total_in(), c.total_out()) => {
                return Err(io::Error::other("deflate made no progress"));
            }
            _ => out.reserve(out.capacity().max(1 << 16)),
        }
    }
}

struct Job {
    data: Vec<u8>,
    dict: Vec<u8>,
    level: flate2::Compression,
    last: bool,
    done: SyncSender<io::Result<Vec<u8>>>,
}

/// Worker threads taking [`Job`]s from one queue. Dropping it closes the queue and
/// joins them.
struct Pool {
    jobs: Option<Sender<Job>>,
    workers: Vec<JoinHandle<()>>,
    size: usize,
}

impl Pool {
    /// Up to `threads` workers; `None` if not even one could be started (the
    /// caller then compresses inline, with the same result).
    fn spawn(threads: usize) -> Option<Pool> {
        let (tx, rx) = mpsc::channel::<Job>();
        let rx = Arc::new(Mutex::new(rx));
        let mut workers = Vec::with_capacity(threads);
        for _ in 0..threads {
            let rx = Arc::clone(&rx);
            let spawned = std::thread::Builder::new()
                .name("hoist-gzip".to_owned())
                .spawn(move || worker(&rx));
            match spawned {
                Ok(handle) => workers.push(handle),
                Err(e) => {
                    tracing::debug!(error = %e, "could not start a gzip thread");
                    break;
                }
            }
        }
        if workers.is_empty() {
            return None;
        }
        let size = workers.len();
        Some(Pool {
            jobs: Some(tx),
            workers,
            size,
        })
    }

    fn send(&self, job: Job) -> io::Result<()> {
        match &self.jobs {
            Some(tx) => tx.send(job).map_err(|_| worker_died()),
            None => Err(worker_died()),
        }
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        self.jobs = None;
        for w in self.workers.drain(..) {
            // A worker that panicked has already reported through its job's channel.
            let _ = w.join();
        }
    }
}

fn worker(jobs: &Mutex<Receiver<Job>>) {
    loop {
        let job = {
            let rx = jobs.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            match rx.recv() {
                Ok(job) => job,
                Err(_) => return,
            }
        };
        let out = compress_block(&job.data, &job.dict, job.level, job.last);
        // The encoder may have been dropped meanwhile; nobody wants the result then.
        let _ = job.done.send(out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn detects_by_magic() {
        assert_eq!(detect(&[0x1f, 0x8b, 8, 0]), Compression::Gzip);
        assert_eq!(detect(&[0x28, 0xb5, 0x2f, 0xfd]), Compression::Zstd);
        assert_eq!(detect(&[0x5a, 0x2a, 0x4d, 0x18]), Compression::Zstd);
        assert_eq!(detect(b"etc/"), Compression::None);
        assert_eq!(detect(&[]), Compression::None);
        assert_eq!(detect(&[0x1f]), Compression::None);
    }

    #[test]
    fn round_trips_each_format() {
        let data = b"some tar bytes, not really".repeat(100);
        for c in [Compression::None, Compression::Gzip, Compression::Zstd] {
            let mut enc = Encoder::new(Vec::new(), c, None, 2).unwrap();
            enc.write_all(&data).unwrap();
            let bytes = enc.finish().unwrap();
            let mut dec = Decompressor::new(&bytes[..]).unwrap();
            assert_eq!(dec.compression(), c);
            let mut out = Vec::new();
            dec.read_to_end(&mut out).unwrap();
            assert_eq!(out, data);
        }
    }

    #[test]
    fn short_input_is_plain() {
        let mut dec = Decompressor::new(&b"ab"[..]).unwrap();
        assert_eq!(dec.compression(), Compression::None);
        let mut out = Vec::new();
        dec.read_to_end(&mut out).unwrap();
        assert_eq!(out, b"ab");
    }
}
