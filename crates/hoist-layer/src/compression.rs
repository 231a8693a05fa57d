//! Layer compression: magic-byte detection, streaming decoders and encoders.
//!
//! The [`Compression`] enum is `hoist_oci`'s, so the media type of a blob and the
//! format this crate writes or detects are the same value.

use std::io::{self, BufReader, Chain, Cursor, Read, Write};

use flate2::read::MultiGzDecoder;
use flate2::write::GzEncoder;
pub use hoist_oci::media_type::Compression;

/// Bytes needed to tell the formats apart.
const MAGIC_LEN: usize = 4;

/// The compression a stream starting with `prefix` uses, by magic bytes (see
/// [`Compression::detect`]; anything unrecognized is taken as a plain tar, whose
/// parser rejects garbage on its own).
pub fn detect(prefix: &[u8]) -> Compression {
    Compression::detect(prefix)
}

type Peeked<R> = Chain<Cursor<Vec<u8>>, R>;

/// A reader that undoes whatever compression its input has.
pub struct Decompressor<R: Read> {
    compression: Compression,
    inner: DecoderKind<R>,
}

enum DecoderKind<R: Read> {
    Plain(Peeked<R>),
    Gzip(Box<MultiGzDecoder<Peeked<R>>>),
    Zstd(Box<zstd::stream::read::Decoder<'static, BufReader<Peeked<R>>>>),
}

impl<R: Read> Decompressor<R> {
    /// Peek at the first bytes of `reader` and set up the matching decoder.
    pub fn new(mut reader: R) -> io::Result<Self> {
        let mut prefix = Vec::with_capacity(MAGIC_LEN);
        let mut buf = [0u8; MAGIC_LEN];
        while prefix.len() < MAGIC_LEN {
            match reader.read(&mut buf[..MAGIC_LEN - prefix.len()]) {
                Ok(0) => break,
                Ok(n) => prefix.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        let compression = detect(&prefix);
        let peeked = Cursor::new(prefix).chain(reader);
        let inner = match compression {
            Compression::None => DecoderKind::Plain(peeked),
            Compression::Gzip => DecoderKind::Gzip(Box::new(MultiGzDecoder::new(peeked))),
            Compression::Zstd => {
                DecoderKind::Zstd(Box::new(zstd::stream::read::Decoder::new(peeked)?))
            }
        };
        Ok(Decompressor { compression, inner })
    }

    /// The detected compression.
    pub fn compression(&self) -> Compression {
        self.compression
    }
}

impl<R: Read> Read for Decompressor<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match &mut self.inner {
            DecoderKind::Plain(r) => r.read(buf),
            DecoderKind::Gzip(r) => r.read(buf),
            DecoderKind::Zstd(r) => r.read(buf),
        }
    }
}

/// A writer that compresses into `W`.
pub(crate) enum Encoder<W: Write> {
    Plain(W),
    Gzip(GzEncoder<W>),
    Zstd(zstd::stream::write::Encoder<'static, W>),
}

impl<W: Write> Encoder<W> {
    /// A deterministic encoder: gzip without mtime, file name or OS byte variance;
    /// single-threaded zstd.
    pub(crate) fn new(inner: W, compression: Compression, level: Option<i32>) -> io::Result<Self> {
        Ok(match compression {
            Compression::None => Encoder::Plain(inner),
            Compression::Gzip => {
                let level = level.map_or(flate2::Compression::default(), |l| {
                    flate2::Compression::new(l.clamp(0, 9) as u32)
                });
                // `GzBuilder` writes mtime 0, no name, no comment unless told.
                Encoder::Gzip(
                    flate2::GzBuilder::new()
                        .mtime(0)
                        .operating_system(255)
                        .write(inner, level),
                )
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

#[cfg(test)]
mod tests {
    use super::*;

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
            let mut enc = Encoder::new(Vec::new(), c, None).unwrap();
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
