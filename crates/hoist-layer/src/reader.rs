//! Reading a layer's entries without applying them.
//!
//! [`LayerReader`] detects the compression, parses the tar (PAX and GNU long names
//! included) and turns each header into an [`EntryInfo`]: a normalised relative
//! path, the kind, ownership, mode, mtime, xattrs and the OCI whiteout meaning, if
//! any. The applier is built on it, and so can the scanner be.

use std::io::{self, Read};
use std::path::PathBuf;

use hoist_oci::{Algorithm, Digest, DigestReader};
use tar::EntryType;

use crate::compression::{Compression, Decompressor};
use crate::error::ReadError;
use crate::paths::{lossy, normalize, split_parent, to_path_buf};

/// Prefix of an OCI whiteout file name.
pub const WHITEOUT_PREFIX: &str = ".wh.";
/// Name of the OCI opaque-directory marker.
pub const WHITEOUT_OPAQUE: &str = ".wh..wh..opq";
/// Prefix of AUFS metadata names (`.wh..wh.plnk`, ...), skipped on apply.
pub const WHITEOUT_META_PREFIX: &str = ".wh..wh.";

/// What an entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum EntryKind {
    /// Regular file (also contiguous and GNU sparse files).
    File,
    /// Directory.
    Dir,
    /// Symbolic link.
    Symlink,
    /// Hard link to an earlier entry or a file of a lower layer.
    Hardlink,
    /// Character device.
    CharDevice,
    /// Block device.
    BlockDevice,
    /// Named pipe.
    Fifo,
    /// Anything else (PAX global header, GNU volume label...), by typeflag.
    Other(u8),
}

/// The OCI whiteout meaning of an entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Whiteout {
    /// `.wh.<name>`: delete this path (relative to the root) from lower layers.
    Remove(PathBuf),
    /// `.wh..wh..opq`: hide everything lower layers put in this directory.
    Opaque(PathBuf),
    /// AUFS metadata (`.wh..wh.*`), carrying no meaning for OCI.
    Meta,
}

/// The metadata of one layer entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryInfo {
    /// Path relative to the root: no leading `/`, no `.` or `..` components; empty
    /// for the root itself.
    pub path: PathBuf,
    /// The path exactly as the tar spelled it (for messages).
    pub raw_path: String,
    /// Kind of entry.
    pub kind: EntryKind,
    /// Size of the entry's data (0 for everything but files).
    pub size: u64,
    /// Permission bits including setuid, setgid and sticky.
    pub mode: u32,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// Modification time, seconds since the epoch.
    pub mtime: i64,
    /// Sub-second part of the modification time (PAX `mtime` only).
    pub mtime_nsec: u32,
    /// Symlink target, as-is; or hardlink target, normalised like `path`.
    pub link_target: Option<PathBuf>,
    /// Device numbers (major, minor) for character and block devices.
    pub device: Option<(u32, u32)>,
    /// Extended attributes (`SCHILY.xattr.*` PAX records), in archive order.
    pub xattrs: Vec<(Vec<u8>, Vec<u8>)>,
    /// OCI whiteout meaning, if the file name says so.
    pub whiteout: Option<Whiteout>,
}

type Inner<R> = DigestReader<Decompressor<R>>;

/// A layer stream being read: compression detected, diff_id computed as it goes.
pub struct LayerReader<R: Read> {
    archive: tar::Archive<Inner<R>>,
    compression: Compression,
}

impl<R: Read> LayerReader<R> {
    /// Detect the compression of `reader` and prepare to read its entries.
    pub fn new(reader: R) -> Result<Self, ReadError> {
        let dec = Decompressor::new(reader).map_err(ReadError::Stream)?;
        let compression = dec.compression();
        Ok(LayerReader {
            archive: tar::Archive::new(DigestReader::new(dec, Algorithm::Sha256)),
            compression,
        })
    }

    /// The detected compression.
    pub fn compression(&self) -> Compression {
        self.compression
    }

    /// The entries, in archive order.
    pub fn entries(&mut self) -> Result<Entries<'_, R>, ReadError> {
        Ok(Entries {
            inner: self.archive.entries().map_err(ReadError::Stream)?,
        })
    }

    /// Read the rest of the stream and return the diff_id (SHA-256 of the
    /// uncompressed tar) and the uncompressed size.
    pub fn finish(self) -> Result<(Digest, u64), ReadError> {
        let mut r = self.archive.into_inner();
        io::copy(&mut r, &mut io::sink()).map_err(ReadError::Stream)?;
        Ok(r.finish())
    }
}

/// Iterator over a layer's entries. After a stream error it ends; after an entry
/// refused for its header ([`ReadError::UnsafePath`], [`ReadError::InvalidHeader`])
/// it goes on with the next entry.
pub struct Entries<'a, R: Read + 'a> {
    inner: tar::Entries<'a, Inner<R>>,
}

/// One entry: its metadata and, for files, its content as a reader.
pub struct LayerEntry<'a, R: Read + 'a> {
    info: EntryInfo,
    entry: tar::Entry<'a, Inner<R>>,
}

impl<'a, R: Read + 'a> LayerEntry<'a, R> {
    /// The entry's metadata.
    pub fn info(&self) -> &EntryInfo {
        &self.info
    }
}

impl<'a, R: Read + 'a> Read for LayerEntry<'a, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.entry.read(buf)
    }
}

impl<'a, R: Read + 'a> Iterator for Entries<'a, R> {
    type Item = Result<LayerEntry<'a, R>, ReadError>;

    fn next(&mut self) -> Option<Self::Item> {
        let mut entry = match self.inner.next()? {
            Ok(e) => e,
            Err(e) => return Some(Err(ReadError::Stream(e))),
        };
        Some(entry_info(&mut entry).map(|info| LayerEntry { info, entry }))
    }
}

fn invalid(raw: &[u8], reason: impl Into<String>) -> ReadError {
    ReadError::InvalidHeader {
        path: lossy(raw),
        reason: reason.into(),
    }
}

fn unsafe_path(raw: &[u8], reason: impl Into<String>) -> ReadError {
    ReadError::UnsafePath {
        path: lossy(raw),
        reason: reason.into(),
    }
}

/// PAX records this crate reads beyond what the tar crate applies itself.
#[derive(Default)]
struct Pax {
    mtime: Option<Vec<u8>>,
    devmajor: Option<Vec<u8>>,
    devminor: Option<Vec<u8>>,
    xattrs: Vec<(Vec<u8>, Vec<u8>)>,
}

fn read_pax<R: Read>(entry: &mut tar::Entry<'_, R>) -> io::Result<Pax> {
    let mut pax = Pax::default();
    if let Some(exts) = entry.pax_extensions()? {
        for ext in exts {
            let ext = ext?;
            let key = ext.key_bytes();
            let value = ext.value_bytes().to_vec();
            match key {
                b"mtime" => pax.mtime = Some(value),
                b"SCHILY.devmajor" => pax.devmajor = Some(value),
                b"SCHILY.devminor" => pax.devminor = Some(value),
                _ => {
                    if let Some(name) = key.strip_prefix(b"SCHILY.xattr.") {
                        pax.xattrs.push((name.to_vec(), value));
                    }
                }
            }
        }
    }
    Ok(pax)
}

/// Parse a PAX time (`[-]seconds[.fraction]`).
fn parse_pax_time(v: &[u8]) -> Option<(i64, u32)> {
    let s = std::str::from_utf8(v).ok()?;
    let (neg, s) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s),
    };
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    if int.is_empty() || !int.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let secs: i64 = int.parse().ok()?;
    let mut nsec: u32 = 0;
    for (i, d) in frac.bytes().take(9).enumerate() {
        nsec += u32::from(d - b'0') * 10u32.pow(8 - i as u32);
    }
    if neg {
        // -1.25 is 1.25 seconds before the epoch: -2 s + 0.75 s.
        if nsec > 0 {
            Some((-secs - 1, 1_000_000_000 - nsec))
        } else {
            Some((-secs, 0))
        }
    } else {
        Some((secs, nsec))
    }
}

fn parse_dec_u32(v: &[u8]) -> Option<u32> {
    std::str::from_utf8(v).ok()?.parse().ok()
}

fn whiteout_of(path: &[u8], raw: &[u8]) -> Result<Option<Whiteout>, ReadError> {
    if path
        .split(|&b| b == b'/')
        .any(|c| c.starts_with(WHITEOUT_META_PREFIX.as_bytes()) && c != WHITEOUT_OPAQUE.as_bytes())
    {
        return Ok(Some(Whiteout::Meta));
    }
    let (parent, name) = split_parent(path);
    if name == WHITEOUT_OPAQUE.as_bytes() {
        return Ok(Some(Whiteout::Opaque(to_path_buf(parent))));
    }
    match name.strip_prefix(WHITEOUT_PREFIX.as_bytes()) {
        None => Ok(None),
        Some(b"") | Some(b".") | Some(b"..") => Err(unsafe_path(
            raw,
            "whiteout names no file (`.wh.`, `.wh..` or `.wh...`)",
        )),
        Some(target) => Ok(Some(Whiteout::Remove(to_path_buf(&crate::paths::join(
            parent, target,
        ))))),
    }
}

pub(crate) fn entry_info<R: Read>(entry: &mut tar::Entry<'_, R>) -> Result<EntryInfo, ReadError> {
    let raw = entry.path_bytes().into_owned();
    let path = normalize(&raw).map_err(|p| unsafe_path(&raw, p.as_str()))?;
    let header = entry.header();
    let typeflag = header.entry_type();
    let kind = match typeflag {
        // Old tars mark directories only by the trailing slash.
        EntryType::Regular if raw.ends_with(b"/") => EntryKind::Dir,
        EntryType::Regular | EntryType::Continuous => EntryKind::File,
        EntryType::GNUSparse => return Err(ReadError::Unsupported {
            path: String::from_utf8_lossy(&raw).into_owned(),
            reason:
                "GNU sparse files are not supported in layers (re-create the tar without --sparse)"
                    .to_owned(),
        }),
        EntryType::Directory => EntryKind::Dir,
        EntryType::Symlink => EntryKind::Symlink,
        EntryType::Link => EntryKind::Hardlink,
        EntryType::Char => EntryKind::CharDevice,
        EntryType::Block => EntryKind::BlockDevice,
        EntryType::Fifo => EntryKind::Fifo,
        other => EntryKind::Other(other.as_byte()),
    };
    let mode = header
        .mode()
        .map_err(|e| invalid(&raw, format!("mode: {e}")))?
        & 0o7777;
    let uid = header
        .uid()
        .map_err(|e| invalid(&raw, format!("uid: {e}")))
        .and_then(|u| {
            u32::try_from(u).map_err(|_| invalid(&raw, format!("uid {u} exceeds 32 bits")))
        })?;
    let gid = header
        .gid()
        .map_err(|e| invalid(&raw, format!("gid: {e}")))
        .and_then(|g| {
            u32::try_from(g).map_err(|_| invalid(&raw, format!("gid {g} exceeds 32 bits")))
        })?;
    let header_mtime = header
        .mtime()
        .map_err(|e| invalid(&raw, format!("mtime: {e}")))?;
    let header_dev = if matches!(kind, EntryKind::CharDevice | EntryKind::BlockDevice) {
        let major = header
            .device_major()
            .map_err(|e| invalid(&raw, format!("device major: {e}")))?
            .unwrap_or(0);
        let minor = header
            .device_minor()
            .map_err(|e| invalid(&raw, format!("device minor: {e}")))?
            .unwrap_or(0);
        Some((major, minor))
    } else {
        None
    };
    let link_raw = entry.link_name_bytes().map(|l| l.into_owned());
    let size = entry.size();

    let pax = read_pax(entry).map_err(|e| invalid(&raw, format!("PAX records: {e}")))?;
    let (mtime, mtime_nsec) = match &pax.mtime {
        Some(v) => {
            parse_pax_time(v).ok_or_else(|| invalid(&raw, format!("PAX mtime {:?}", lossy(v))))?
        }
        None => (i64::try_from(header_mtime).unwrap_or(i64::MAX), 0),
    };
    let device = match header_dev {
        Some((maj, min)) => {
            let maj = match &pax.devmajor {
                Some(v) => parse_dec_u32(v).ok_or_else(|| invalid(&raw, "PAX devmajor"))?,
                None => maj,
            };
            let min = match &pax.devminor {
                Some(v) => parse_dec_u32(v).ok_or_else(|| invalid(&raw, "PAX devminor"))?,
                None => min,
            };
            Some((maj, min))
        }
        None => None,
    };

    let link_target = match kind {
        EntryKind::Symlink => {
            let t = link_raw.unwrap_or_default();
            if t.is_empty() || t.contains(&0) {
                return Err(unsafe_path(
                    &raw,
                    "symlink target is empty or has a NUL byte",
                ));
            }
            Some(to_path_buf(&t))
        }
        EntryKind::Hardlink => {
            let t = link_raw.unwrap_or_default();
            let n = normalize(&t).map_err(|p| {
                unsafe_path(
                    &raw,
                    format!("hardlink target {:?}: {}", lossy(&t), p.as_str()),
                )
            })?;
            if n.is_empty() {
                return Err(unsafe_path(&raw, "hardlink target is the root"));
            }
            Some(to_path_buf(&n))
        }
        _ => None,
    };
    let whiteout = if path.is_empty() {
        None
    } else {
        whiteout_of(&path, &raw)?
    };
    Ok(EntryInfo {
        path: to_path_buf(&path),
        raw_path: lossy(&raw),
        kind,
        size: if kind == EntryKind::File { size } else { 0 },
        mode,
        uid,
        gid,
        mtime,
        mtime_nsec,
        link_target,
        device,
        xattrs: pax.xattrs,
        whiteout,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pax_times() {
        assert_eq!(parse_pax_time(b"12"), Some((12, 0)));
        assert_eq!(parse_pax_time(b"12.5"), Some((12, 500_000_000)));
        assert_eq!(parse_pax_time(b"-1.25"), Some((-2, 750_000_000)));
        assert_eq!(parse_pax_time(b"-3"), Some((-3, 0)));
        assert_eq!(parse_pax_time(b"1.1234567891234"), Some((1, 123_456_789)));
        assert_eq!(parse_pax_time(b""), None);
        assert_eq!(parse_pax_time(b"x"), None);
        assert_eq!(parse_pax_time(b"1.x"), None);
        assert_eq!(parse_pax_time(b"99999999999999999999999"), None);
    }

    #[test]
    fn whiteout_names() {
        assert_eq!(
            whiteout_of(b"a/.wh.b", b"").unwrap(),
            Some(Whiteout::Remove(PathBuf::from("a/b")))
        );
        assert_eq!(
            whiteout_of(b"a/.wh..wh..opq", b"").unwrap(),
            Some(Whiteout::Opaque(PathBuf::from("a")))
        );
        assert_eq!(
            whiteout_of(b".wh..wh..opq", b"").unwrap(),
            Some(Whiteout::Opaque(PathBuf::from("")))
        );
        assert_eq!(
            whiteout_of(b".wh..wh.plnk/123", b"").unwrap(),
            Some(Whiteout::Meta)
        );
        assert_eq!(whiteout_of(b"a/b", b"").unwrap(), None);
        assert!(whiteout_of(b"a/.wh...", b"").is_err());
        assert!(whiteout_of(b"a/.wh.", b"").is_err());
    }
}
