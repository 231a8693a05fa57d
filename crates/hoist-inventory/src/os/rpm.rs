//! rpm's SQLite database (`var/lib/rpm/rpmdb.sqlite`).
//!
//! The `Packages` table holds one row per package, `(hnum INTEGER, blob BLOB)`, the
//! blob being the package's header as `headerExport` writes it, read here by hand:
//!
//! ```text
//! il: u32 BE   number of index entries
//! dl: u32 BE   length of the data store
//! il × { tag: i32, type: u32, offset: i32, count: u32 }   (all BE, 16 bytes each)
//! dl bytes of data; an entry's value starts at `offset` into it
//! ```
//!
//! Types used: `STRING` (6), `STRING_ARRAY` (8) and `I18NSTRING` (9), NUL-terminated
//! (the first string is taken), and `INT32` (4), big-endian. Tags read: `NAME`
//! (1000), `VERSION` (1001), `RELEASE` (1002), `EPOCH` (1003), `LICENSE` (1014),
//! `SOURCERPM` (1044, `name-version-release.src.rpm`). Everything else, the
//! immutable-region trailer included, is skipped. The version is
//! `[epoch:]version-release`; the source version is the source rpm's
//! `version-release` with the binary package's epoch (source rpms record none).
//! `gpg-pubkey` entries are imported signing keys, not software, and are left out.
//!
//! The database is opened in memory from the bytes (`sqlite3_deserialize`), never
//! as a file. A database in WAL mode is read as if in rollback mode (the header's
//! two version bytes patched), so changes still in a `-wal` file are not seen. Berkeley
//! DB (`Packages`, RHEL ≤ 8) and NDB (`Packages.db`, older SUSE) are not read.

use std::path::PathBuf;

use rusqlite::{Connection, OpenFlags, MAIN_DB};

use crate::error::ParseError;
use crate::{Package, PackageKind};

const TAG_NAME: i32 = 1000;
const TAG_VERSION: i32 = 1001;
const TAG_RELEASE: i32 = 1002;
const TAG_EPOCH: i32 = 1003;
const TAG_LICENSE: i32 = 1014;
const TAG_SOURCERPM: i32 = 1044;

const TYPE_INT32: u32 = 4;
const TYPE_STRING: u32 = 6;
const TYPE_STRING_ARRAY: u32 = 8;
const TYPE_I18NSTRING: u32 = 9;

/// rpm's own limits on a header (`hdrblobVerifyInfo`): 64 Ki entries, 256 MiB data.
const MAX_INDEX: u32 = 0xffff;
const MAX_DATA: u32 = 256 << 20;
/// Largest database read into memory.
pub const MAX_DB_SIZE: usize = 1 << 30;

/// The fields of one rpm header this crate uses.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Header {
    /// `NAME`.
    pub name: Option<String>,
    /// `VERSION`.
    pub version: Option<String>,
    /// `RELEASE`.
    pub release: Option<String>,
    /// `EPOCH`.
    pub epoch: Option<u32>,
    /// `LICENSE`.
    pub license: Option<String>,
    /// `SOURCERPM`.
    pub source_rpm: Option<String>,
}

fn be32(b: &[u8], at: usize) -> Option<u32> {
    let s = b.get(at..at.checked_add(4)?)?;
    Some(u32::from_be_bytes([s[0], s[1], s[2], s[3]]))
}

/// Parse a header blob (as stored in the database: no lead, no magic).
pub fn parse_header(blob: &[u8]) -> Result<Header, String> {
    let il = be32(blob, 0).ok_or("header shorter than 8 bytes")?;
    let dl = be32(blob, 4).ok_or("header shorter than 8 bytes")?;
    if il == 0 || il > MAX_INDEX {
        return Err(format!("header index count {il} out of range"));
    }
    if dl > MAX_DATA {
        return Err(format!("header data length {dl} out of range"));
    }
    let index_end = 8 + il as usize * 16;
    let data = blob
        .get(index_end..index_end + dl as usize)
        .ok_or_else(|| {
            format!(
                "header truncated: {} bytes, {il} entries and {dl} data bytes declared",
                blob.len()
            )
        })?;
    let mut h = Header::default();
    for i in 0..il as usize {
        let at = 8 + i * 16;
        let (Some(tag), Some(ty), Some(offset), Some(count)) = (
            be32(blob, at),
            be32(blob, at + 4),
            be32(blob, at + 8),
            be32(blob, at + 12),
        ) else {
            return Err("header index truncated".to_owned());
        };
        let tag = tag as i32;
        if !matches!(
            tag,
            TAG_NAME | TAG_VERSION | TAG_RELEASE | TAG_EPOCH | TAG_LICENSE | TAG_SOURCERPM
        ) {
            continue;
        }
        let offset = offset as usize;
        if offset >= data.len() || count == 0 {
            return Err(format!(
                "tag {tag}: offset {offset} or count {count} out of range"
            ));
        }
        if tag == TAG_EPOCH {
            if ty != TYPE_INT32 {
                return Err(format!("tag {tag}: type {ty}, expected INT32"));
            }
            h.epoch = Some(be32(data, offset).ok_or_else(|| format!("tag {tag}: truncated"))?);
            continue;
        }
        if !matches!(ty, TYPE_STRING | TYPE_STRING_ARRAY | TYPE_I18NSTRING) {
            return Err(format!("tag {tag}: type {ty}, expected a string"));
        }
        let rest = &data[offset..];
        let end = rest
            .iter()
            .position(|&b| b == 0)
            .ok_or_else(|| format!("tag {tag}: string without NUL"))?;
        let s = String::from_utf8_lossy(&rest[..end]).into_owned();
        let slot = match tag {
            TAG_NAME => &mut h.name,
            TAG_VERSION => &mut h.version,
            TAG_RELEASE => &mut h.release,
            TAG_LICENSE => &mut h.license,
            _ => &mut h.source_rpm,
        };
        *slot = Some(s);
    }
    Ok(h)
}

/// Split `name-version-release.src.rpm` into (name, version-release).
pub fn split_source_rpm(s: &str) -> Option<(String, String)> {
    let base = s
        .strip_suffix(".src.rpm")
        .or_else(|| s.strip_suffix(".nosrc.rpm"))?;
    let (rest, release) = base.rsplit_once('-')?;
    let (name, version) = rest.rsplit_once('-')?;
    if name.is_empty() || version.is_empty() || release.is_empty() {
        return None;
    }
    Some((name.to_owned(), format!("{version}-{release}")))
}

/// Parse `var/lib/rpm/rpmdb.sqlite`.
pub fn parse(data: &[u8]) -> Result<Vec<Package>, ParseError> {
    if data.len() > MAX_DB_SIZE {
        return Err(ParseError::new(format!(
            "database of {} bytes is too large",
            data.len()
        )));
    }
    let sql = |e: rusqlite::Error| ParseError::new(format!("SQLite: {e}"));
    let mut bytes = data.to_vec();
    // WAL mode (file format bytes 18 and 19 = 2) cannot be deserialized; read as
    // a rollback-journal database instead.
    if bytes.len() >= 20
        && bytes.starts_with(b"SQLite format 3\0")
        && bytes[18] == 2
        && bytes[19] == 2
    {
        bytes[18] = 1;
        bytes[19] = 1;
    }
    let mut conn = Connection::open_with_flags(
        ":memory:",
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(sql)?;
    let len = bytes.len();
    conn.deserialize_read_exact(MAIN_DB, &bytes[..], len, true)
        .map_err(sql)?;
    let mut stmt = conn
        .prepare("SELECT hnum, blob FROM Packages ORDER BY hnum")
        .map_err(sql)?;
    let rows = stmt
        .query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, Vec<u8>>(1)?)))
        .map_err(sql)?;
    let mut out = Vec::new();
    for row in rows {
        let (hnum, blob) = row.map_err(sql)?;
        let h = parse_header(&blob).map_err(|e| ParseError::new(format!("package {hnum}: {e}")))?;
        let field = |v: Option<String>, what: &str| {
            v.filter(|s| !s.is_empty())
                .ok_or_else(|| ParseError::new(format!("package {hnum}: no {what}")))
        };
        let name = field(h.name, "NAME")?;
        if name == "gpg-pubkey" {
            continue;
        }
        let version = field(h.version, "VERSION")?;
        let release = field(h.release, "RELEASE")?;
        let epoch = h.epoch.map(|e| format!("{e}:")).unwrap_or_default();
        let (source_name, source_version) = match h.source_rpm.as_deref().and_then(split_source_rpm)
        {
            Some((n, v)) => (Some(n), Some(format!("{epoch}{v}"))),
            None => (None, None),
        };
        out.push(Package {
            kind: PackageKind::Rpm,
            version: format!("{epoch}{version}-{release}"),
            name,
            source_name,
            source_version,
            licenses: h.license.filter(|l| !l.is_empty()).into_iter().collect(),
            path: PathBuf::new(),
            layer: None,
        });
    }
    Ok(out)
}

/// Encode a header blob from `(tag, value)` pairs: test fixtures and fuzz seeds.
/// Strings are `STRING`, numbers `INT32`.
pub fn encode_header(entries: &[(i32, HeaderValue<'_>)]) -> Vec<u8> {
    let mut index = Vec::new();
    let mut data: Vec<u8> = Vec::new();
    for (tag, value) in entries {
        let (ty, bytes) = match value {
            HeaderValue::Str(s) => (TYPE_STRING, [s.as_bytes(), &[0]].concat()),
            HeaderValue::Int(n) => {
                while !data.len().is_multiple_of(4) {
                    data.push(0);
                }
                (TYPE_INT32, n.to_be_bytes().to_vec())
            }
        };
        index.extend_from_slice(&tag.to_be_bytes());
        index.extend_from_slice(&ty.to_be_bytes());
        index.extend_from_slice(&(data.len() as u32).to_be_bytes());
        index.extend_from_slice(&1u32.to_be_bytes());
        data.extend_from_slice(&bytes);
    }
    let mut out = Vec::new();
    out.extend_from_slice(&(entries.len() as u32).to_be_bytes());
    out.extend_from_slice(&(data.len() as u32).to_be_bytes());
    out.extend_from_slice(&index);
    out.extend_from_slice(&data);
    out
}

/// A value for [`encode_header`].
#[derive(Debug, Clone, Copy)]
pub enum HeaderValue<'a> {
    /// A `STRING`.
    Str(&'a str),
    /// An `INT32`.
    Int(u32),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trip_and_source_rpm() {
        let blob = encode_header(&[
            (TAG_NAME, HeaderValue::Str("bash")),
            (TAG_EPOCH, HeaderValue::Int(2)),
            (TAG_VERSION, HeaderValue::Str("5.1.8")),
            (1010, HeaderValue::Str("ignored")),
            (TAG_RELEASE, HeaderValue::Str("6.el9")),
            (TAG_LICENSE, HeaderValue::Str("GPLv3+")),
            (TAG_SOURCERPM, HeaderValue::Str("bash-5.1.8-6.el9.src.rpm")),
        ]);
        let h = parse_header(&blob).unwrap();
        assert_eq!(h.name.as_deref(), Some("bash"));
        assert_eq!(h.epoch, Some(2));
        assert_eq!(h.release.as_deref(), Some("6.el9"));
        assert_eq!(
            split_source_rpm("python3-pip-21.2.3-7.el9.src.rpm"),
            Some(("python3-pip".to_owned(), "21.2.3-7.el9".to_owned()))
        );
        assert_eq!(split_source_rpm("x.src.rpm"), None);
        assert_eq!(split_source_rpm("a-1-2.rpm"), None);
    }

    #[test]
    fn malformed_headers_are_errors() {
        let good = encode_header(&[(TAG_NAME, HeaderValue::Str("bash"))]);
        for cut in 0..good.len() {
            assert!(parse_header(&good[..cut]).is_err(), "cut at {cut}");
        }
        let mut bad = good.clone();
        bad[8 + 8..8 + 12].copy_from_slice(&1000u32.to_be_bytes()); // offset
        assert!(parse_header(&bad).is_err());
        let mut huge = good.clone();
        huge[0..4].copy_from_slice(&u32::MAX.to_be_bytes());
        assert!(parse_header(&huge).is_err());
        assert!(parse(b"not a database").is_err());
        assert!(parse(b"").is_err());
    }
}
