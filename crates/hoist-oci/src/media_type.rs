//! Media type strings of the OCI image-spec and of Docker's v2 schema 2.
//!
//! Media types stay plain strings in descriptors (a registry must carry ones it does
//! not know); this module names the ones hoist acts on and classifies them. It also
//! holds the one decoder that undoes a blob's compression by its magic bytes
//! ([`Decompressor`]), shared by the image transfers and the layer reader.

/// OCI image manifest.
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// OCI image index.
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// OCI image config.
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
/// OCI uncompressed layer.
pub const OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar";
/// OCI gzip layer.
pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
/// OCI zstd layer.
pub const OCI_LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
/// OCI empty JSON descriptor (`{}`), used by artifacts.
pub const OCI_EMPTY: &str = "application/vnd.oci.empty.v1+json";
/// OCI image layout header file.
pub const OCI_LAYOUT_HEADER: &str = "application/vnd.oci.layout.header.v1+json";

/// Docker v2 schema 2 manifest.
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// Docker manifest list.
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
/// Docker image config.
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
/// Docker gzip layer.
pub const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
/// Docker uncompressed layer (rare, produced by some tools).
pub const DOCKER_LAYER: &str = "application/vnd.docker.image.rootfs.diff.tar";
/// Docker foreign (non-distributable) layer.
pub const DOCKER_LAYER_FOREIGN: &str = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip";
/// Docker schema 1 signed manifest (refused).
pub const DOCKER_SCHEMA1_SIGNED: &str = "application/vnd.docker.distribution.manifest.v1+prettyjws";
/// Docker schema 1 manifest (refused).
pub const DOCKER_SCHEMA1: &str = "application/vnd.docker.distribution.manifest.v1+json";

use std::io::{self, BufReader, Chain, Cursor, Read};

use flate2::read::MultiGzDecoder;

/// Compression of a layer blob, from its media type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// Plain tar.
    None,
    /// gzip.
    Gzip,
    /// zstd.
    Zstd,
}

impl Compression {
    /// The compression a stream starting with `prefix` uses, by magic bytes: gzip
    /// `1f 8b`, a zstd frame `28 b5 2f fd` or skippable frame `5? 2a 4d 18`; anything
    /// else is taken as plain (a tar parser rejects garbage on its own).
    pub fn detect(prefix: &[u8]) -> Compression {
        match prefix {
            [0x1f, 0x8b, ..] => Compression::Gzip,
            [0x28, 0xb5, 0x2f, 0xfd, ..] => Compression::Zstd,
            [b0, 0x2a, 0x4d, 0x18, ..] if b0 & 0xf0 == 0x50 => Compression::Zstd,
            _ => Compression::None,
        }
    }
}

/// Bytes needed to tell the formats apart.
const MAGIC_LEN: usize = 4;

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
        let compression = Compression::detect(&prefix);
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

/// Whether `mt` is a single-image manifest (OCI or Docker).
pub fn is_image_manifest(mt: &str) -> bool {
    mt == OCI_MANIFEST || mt == DOCKER_MANIFEST
}

/// Whether `mt` is an index or manifest list (OCI or Docker).
pub fn is_index(mt: &str) -> bool {
    mt == OCI_INDEX || mt == DOCKER_MANIFEST_LIST
}

/// Whether `mt` is any manifest type hoist understands.
pub fn is_manifest(mt: &str) -> bool {
    is_image_manifest(mt) || is_index(mt)
}

/// The compression of a layer media type, or `None` when `mt` is not a layer type.
pub fn layer_compression(mt: &str) -> Option<Compression> {
    match mt {
        OCI_LAYER | DOCKER_LAYER | "application/vnd.oci.image.layer.nondistributable.v1.tar" => {
            Some(Compression::None)
        }
        OCI_LAYER_GZIP
        | DOCKER_LAYER_GZIP
        | DOCKER_LAYER_FOREIGN
        | "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip" => Some(Compression::Gzip),
        OCI_LAYER_ZSTD | "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd" => {
            Some(Compression::Zstd)
        }
        _ => None,
    }
}

/// The OCI layer media type for a compression.
pub fn oci_layer(c: Compression) -> &'static str {
    match c {
        Compression::None => OCI_LAYER,
        Compression::Gzip => OCI_LAYER_GZIP,
        Compression::Zstd => OCI_LAYER_ZSTD,
    }
}
