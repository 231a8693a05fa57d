//! The bytes of a ustar header and its PAX extended header, written by hand.
//!
//! The writer owns every byte it emits so that two runs over the same tree give the
//! same archive: uname/gname empty, no atime/ctime, PAX records sorted by key, a
//! fixed name for the PAX header itself, and no GNU extensions.

use std::collections::BTreeMap;
use std::io::{self, Write};

pub(crate) const BLOCK: usize = 512;

/// Typeflags of the entries this crate writes.
pub(crate) mod typeflag {
    pub(crate) const REGULAR: u8 = b'0';
    pub(crate) const HARDLINK: u8 = b'1';
    pub(crate) const SYMLINK: u8 = b'2';
    pub(crate) const CHAR: u8 = b'3';
    pub(crate) const BLOCK: u8 = b'4';
    pub(crate) const DIR: u8 = b'5';
    pub(crate) const FIFO: u8 = b'6';
    pub(crate) const PAX: u8 = b'x';
}

/// What goes into one entry's header(s).
pub(crate) struct HeaderSpec<'a> {
    /// Tar path, with a trailing `/` for directories.
    pub path: &'a [u8],
    pub typeflag: u8,
    /// Permission bits including setuid/setgid/sticky.
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    pub size: u64,
    pub mtime: i64,
    pub linkname: &'a [u8],
    pub devmajor: u32,
    pub devminor: u32,
    /// Extended attributes, emitted as `SCHILY.xattr.<name>`.
    pub xattrs: &'a [(Vec<u8>, Vec<u8>)],
}

/// Write `v` as zero-padded octal with a trailing NUL; false if it does not fit.
fn octal(field: &mut [u8], v: u64) -> bool {
    let digits = field.len() - 1;
    let s = format!("{v:0digits$o}");
    if s.len() > digits {
        field.fill(0);
        return false;
    }
    field[..digits].copy_from_slice(s.as_bytes());
    field[digits] = 0;
    true
}

/// Copy `src` into a fixed-size field; false if it had to be cut.
fn bytes_field(field: &mut [u8], src: &[u8]) -> bool {
    field.fill(0);
    let n = src.len().min(field.len());
    field[..n].copy_from_slice(&src[..n]);
    n == src.len()
}

/// One PAX record: `"<len> <key>=<value>\n"` where `<len>` counts itself.
fn pax_record(out: &mut Vec<u8>, key: &[u8], value: &[u8]) {
    let base = key.len() + value.len() + 3;
    let mut len = base + base.to_string().len();
    if len.to_string().len() + base != len {
        len = base + len.to_string().len();
    }
    out.extend_from_slice(len.to_string().as_bytes());
    out.push(b' ');
    out.extend_from_slice(key);
    out.push(b'=');
    out.extend_from_slice(value);
    out.push(b'\n');
}

struct Ustar([u8; BLOCK]);

impl Ustar {
    fn new() -> Self {
        let mut h = [0u8; BLOCK];
        h[257..263].copy_from_slice(b"ustar\0");
        h[263..265].copy_from_slice(b"00");
        Ustar(h)
    }
    fn name(&mut self) -> &mut [u8] {
        &mut self.0[0..100]
    }
    fn mode(&mut self) -> &mut [u8] {
        &mut self.0[100..108]
    }
    fn uid(&mut self) -> &mut [u8] {
        &mut self.0[108..116]
    }
    fn gid(&mut self) -> &mut [u8] {
        &mut self.0[116..124]
    }
    fn size(&mut self) -> &mut [u8] {
        &mut self.0[124..136]
    }
    fn mtime(&mut self) -> &mut [u8] {
        &mut self.0[136..148]
    }
    fn linkname(&mut self) -> &mut [u8] {
        &mut self.0[157..257]
    }
    fn devmajor(&mut self) -> &mut [u8] {
        &mut self.0[329..337]
    }
    fn devminor(&mut self) -> &mut [u8] {
        &mut self.0[337..345]
    }
    fn finish(mut self, typeflag: u8) -> [u8; BLOCK] {
        self.0[156] = typeflag;
        self.0[148..156].fill(b' ');
        let sum: u64 = self.0.iter().map(|&b| u64::from(b)).sum();
        let s = format!("{sum:06o}\0 ");
        self.0[148..156].copy_from_slice(&s.as_bytes()[..8]);
        self.0
    }
}

/// Write the PAX header (when needed) and the ustar header for one entry.
pub(crate) fn write_headers(w: &mut impl Write, spec: &HeaderSpec<'_>) -> io::Result<()> {
    let mut pax: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
    let mut h = Ustar::new();

    if !bytes_field(h.name(), spec.path) {
        pax.insert(b"path".to_vec(), spec.path.to_vec());
    }
    if !bytes_field(h.linkname(), spec.linkname) {
        pax.insert(b"linkpath".to_vec(), spec.linkname.to_vec());
    }
    octal(h.mode(), u64::from(spec.mode & 0o7777));
    if !octal(h.uid(), spec.uid) {
        pax.insert(b"uid".to_vec(), spec.uid.to_string().into_bytes());
    }
    if !octal(h.gid(), spec.gid) {
        pax.insert(b"gid".to_vec(), spec.gid.to_string().into_bytes());
    }
    if !octal(h.size(), spec.size) {
        pax.insert(b"size".to_vec(), spec.size.to_string().into_bytes());
    }
    let mtime_fits = u64::try_from(spec.mtime).is_ok_and(|m| octal(h.mtime(), m));
    if !mtime_fits {
        pax.insert(b"mtime".to_vec(), spec.mtime.to_string().into_bytes());
    }
    if matches!(spec.typeflag, typeflag::CHAR | typeflag::BLOCK) {
        if !octal(h.devmajor(), u64::from(spec.devmajor)) {
            pax.insert(
                b"SCHILY.devmajor".to_vec(),
                spec.devmajor.to_string().into_bytes(),
            );
        }
        if !octal(h.devminor(), u64::from(spec.devminor)) {
            pax.insert(
                b"SCHILY.devminor".to_vec(),
                spec.devminor.to_string().into_bytes(),
            );
        }
    }
    for (name, value) in spec.xattrs {
        let mut key = b"SCHILY.xattr.".to_vec();
        key.extend_from_slice(name);
        pax.insert(key, value.clone());
    }

    if !pax.is_empty() {
        let mut records = Vec::new();
        for (k, v) in &pax {
            pax_record(&mut records, k, v);
        }
        let mut ph = Ustar::new();
        let trimmed = spec.path.strip_suffix(b"/").unwrap_or(spec.path);
        let base = trimmed.rsplit(|&b| b == b'/').next().unwrap_or(trimmed);
        let mut name = b"PaxHeaders.0/".to_vec();
        name.extend_from_slice(base);
        bytes_field(ph.name(), &name);
        octal(ph.mode(), 0o644);
        octal(ph.uid(), 0);
        octal(ph.gid(), 0);
        octal(ph.size(), records.len() as u64);
        octal(ph.mtime(), 0);
        w.write_all(&ph.finish(typeflag::PAX))?;
        w.write_all(&records)?;
        pad(w, records.len() as u64)?;
    }
    w.write_all(&h.finish(spec.typeflag))
}

/// Zero padding after `len` bytes of entry data.
pub(crate) fn pad(w: &mut impl Write, len: u64) -> io::Result<()> {
    let rem = (len % BLOCK as u64) as usize;
    if rem != 0 {
        w.write_all(&[0u8; BLOCK][..BLOCK - rem])?;
    }
    Ok(())
}

/// The end-of-archive marker: two zero blocks.
pub(crate) fn write_trailer(w: &mut impl Write) -> io::Result<()> {
    w.write_all(&[0u8; BLOCK * 2])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pax_record_length_counts_itself() {
        for vlen in 0..120 {
            let mut out = Vec::new();
            pax_record(&mut out, b"path", &vec![b'a'; vlen]);
            let sp = out.iter().position(|&b| b == b' ').unwrap();
            let n: usize = std::str::from_utf8(&out[..sp]).unwrap().parse().unwrap();
            assert_eq!(n, out.len(), "value length {vlen}");
        }
    }

    #[test]
    fn octal_fields_refuse_overflow() {
        let mut f = [0u8; 8];
        assert!(octal(&mut f, 0o7777777));
        assert_eq!(&f, b"7777777\0");
        assert!(!octal(&mut f, 0o10000000));
    }

    #[test]
    fn headers_parse_back_with_tar_crate() {
        let long = vec![b'n'; 200];
        let spec = HeaderSpec {
            path: &long,
            typeflag: typeflag::REGULAR,
            mode: 0o4755,
            uid: 5_000_000,
            gid: 7,
            size: 3,
            mtime: 1_700_000_000,
            linkname: b"",
            devmajor: 0,
            devminor: 0,
            xattrs: &[(b"user.k".to_vec(), b"v".to_vec())],
        };
        let mut buf = Vec::new();
        write_headers(&mut buf, &spec).unwrap();
        buf.extend_from_slice(b"abc");
        pad(&mut buf, 3).unwrap();
        write_trailer(&mut buf).unwrap();
        let mut ar = tar::Archive::new(&buf[..]);
        let mut entries = ar.entries().unwrap();
        let e = entries.next().unwrap().unwrap();
        assert_eq!(&*e.path_bytes(), &long[..]);
        assert_eq!(e.header().uid().unwrap(), 5_000_000);
        assert_eq!(e.header().mode().unwrap(), 0o4755);
        assert_eq!(e.size(), 3);
        assert!(entries.next().is_none());
    }
}
