//! apk's installed database (`lib/apk/db/installed`): paragraphs separated by blank
//! lines, one `X:value` field per line. Read: `P:` name, `V:` version, `o:` origin
//! (the source package; defaults to the name), `L:` license (kept as one
//! expression). The source version is the package's version: apk builds every
//! subpackage of an origin at the origin's version.

use std::path::PathBuf;

use crate::error::ParseError;
use crate::{Package, PackageKind};

/// Parse `lib/apk/db/installed`.
pub fn parse(data: &[u8]) -> Result<Vec<Package>, ParseError> {
    let mut out = Vec::new();
    let mut cur = Entry::default();
    for (n, line) in super::lines(data) {
        if line.trim().is_empty() {
            cur.finish(&mut out)?;
            continue;
        }
        let mut chars = line.chars();
        let (Some(key), Some(':')) = (chars.next(), chars.next()) else {
            return Err(ParseError::at(
                n,
                format!(
                    "not a field: {:?}",
                    line.chars().take(60).collect::<String>()
                ),
            ));
        };
        let value = chars.as_str();
        if cur.line == 0 {
            cur.line = n;
        }
        match key {
            'P' => cur.name = Some(value.to_owned()),
            'V' => cur.version = Some(value.to_owned()),
            'o' => cur.origin = Some(value.to_owned()),
            'L' => cur.license = Some(value.to_owned()),
            _ => {}
        }
    }
    cur.finish(&mut out)?;
    Ok(out)
}

#[derive(Default)]
struct Entry {
    line: usize,
    name: Option<String>,
    version: Option<String>,
    origin: Option<String>,
    license: Option<String>,
}

impl Entry {
    fn finish(&mut self, out: &mut Vec<Package>) -> Result<(), ParseError> {
        let e = std::mem::take(self);
        if e.line == 0 {
            return Ok(()); // no entry (leading or repeated blank lines)
        }
        let name = match e.name {
            Some(n) if !n.is_empty() => n,
            _ => return Err(ParseError::at(e.line, "entry without P: (name)")),
        };
        let version = match e.version {
            Some(v) if !v.is_empty() => v,
            _ => {
                return Err(ParseError::at(
                    e.line,
                    format!("entry {name:?} without V: (version)"),
                ))
            }
        };
        out.push(Package {
            kind: PackageKind::Apk,
            source_name: Some(
                e.origin
                    .filter(|o| !o.is_empty())
                    .unwrap_or_else(|| name.clone()),
            ),
            source_version: Some(version.clone()),
            licenses: e.license.filter(|l| !l.is_empty()).into_iter().collect(),
            name,
            version,
            path: PathBuf::new(),
            layer: None,
        });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_and_errors() {
        let p = parse(b"C:Q1abc=\nP:musl\nV:1.2.4-r2\nA:x86_64\nL:MIT\no:musl\n\nP:libcrypto3\nV:3.1.4-r5\no:openssl\nL:Apache-2.0\nF:lib\nR:libcrypto.so.3\n\n\n").unwrap();
        assert_eq!(p.len(), 2);
        assert_eq!(p[1].name, "libcrypto3");
        assert_eq!(p[1].source_name.as_deref(), Some("openssl"));
        assert_eq!(p[1].source_version.as_deref(), Some("3.1.4-r5"));
        assert_eq!(p[0].licenses, vec!["MIT".to_owned()]);
        assert_eq!(
            parse(b"P:a\nV:1\n\nV:2\n").unwrap_err().to_string(),
            "4: entry without P: (name)"
        );
        assert_eq!(parse(b"P:a\n").unwrap_err().line, Some(1));
        assert_eq!(parse(b"P:a\nnonsense\n").unwrap_err().line, Some(2));
        for input in [&b""[..], b"\n", b":", b"\xff:", b"P:\n", b"\xc3"] {
            let _ = parse(input);
        }
    }
}
