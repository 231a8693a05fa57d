//! dpkg's status database (`var/lib/dpkg/status`) and distroless' `status.d/*`.
//!
//! Both are RFC 822-style paragraphs separated by blank lines: `Field: value`, with
//! continuation lines starting with a space or tab. A package counts as installed
//! when the third word of `Status` is `installed` (`install ok installed`, also
//! `hold ok installed` and `deinstall ok installed`, whose files are still there);
//! `config-files`, `half-installed`, `not-installed` and the rest do not.
//! `status.d` files, which have no `Status` field, count as installed.
//!
//! The version is kept as dpkg spells it (`1:2.38.1-5+deb12u3`). `Source: name
//! (version)` gives the source package; without it the source is the package
//! itself, and without a version in parentheses the source version is the
//! package's. dpkg's status has no license (that is in `/usr/share/doc/*/copyright`,
//! not read).

use std::path::PathBuf;

use crate::error::ParseError;
use crate::{Package, PackageKind};

/// Parse `var/lib/dpkg/status`.
pub fn parse(data: &[u8]) -> Result<Vec<Package>, ParseError> {
    parse_with(data, false)
}

/// Parse one `var/lib/dpkg/status.d/*` file (entries without `Status` count as
/// installed).
pub fn parse_status_d(data: &[u8]) -> Result<Vec<Package>, ParseError> {
    parse_with(data, true)
}

/// One paragraph's fields, with the line it starts at.
struct Paragraph {
    line: usize,
    fields: Vec<(String, String)>,
}

impl Paragraph {
    fn get(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Split into paragraphs. Only the fields this parser needs are kept whole;
/// continuation lines are checked but not stored.
fn paragraphs(data: &[u8]) -> Result<Vec<Paragraph>, ParseError> {
    let mut out = Vec::new();
    let mut cur: Option<Paragraph> = None;
    for (n, line) in super::lines(data) {
        if line.trim().is_empty() {
            out.extend(cur.take());
            continue;
        }
        if line.starts_with(' ') || line.starts_with('\t') {
            if cur.is_none() {
                return Err(ParseError::at(n, "continuation line outside an entry"));
            }
            continue;
        }
        let Some((key, value)) = line.split_once(':') else {
            return Err(ParseError::at(n, format!("not a field: {:?}", clip(&line))));
        };
        let key = key.trim();
        if key.is_empty() || key.contains(char::is_whitespace) {
            return Err(ParseError::at(n, format!("not a field: {:?}", clip(&line))));
        }
        cur.get_or_insert_with(|| Paragraph {
            line: n,
            fields: Vec::new(),
        })
        .fields
        .push((key.to_owned(), value.trim().to_owned()));
    }
    out.extend(cur);
    Ok(out)
}

fn clip(s: &str) -> String {
    s.chars().take(60).collect()
}

fn parse_with(data: &[u8], status_optional: bool) -> Result<Vec<Package>, ParseError> {
    let mut out = Vec::new();
    for p in paragraphs(data)? {
        let name = match p.get("Package") {
            Some(n) if !n.is_empty() => n.to_owned(),
            _ => return Err(ParseError::at(p.line, "entry without Package")),
        };
        match p.get("Status") {
            Some(status) => {
                if status.split_whitespace().nth(2) != Some("installed") {
                    continue;
                }
            }
            None if status_optional => {}
            None => {
                return Err(ParseError::at(
                    p.line,
                    format!("entry {name:?} without Status"),
                ))
            }
        }
        let version = match p.get("Version") {
            Some(v) if !v.is_empty() => v.to_owned(),
            _ => {
                return Err(ParseError::at(
                    p.line,
                    format!("installed entry {name:?} without Version"),
                ))
            }
        };
        let (source_name, source_version) = match p.get("Source") {
            None | Some("") => (name.clone(), version.clone()),
            Some(src) => match src.split_once('(') {
                Some((n, rest)) => {
                    let v = rest.trim().trim_end_matches(')').trim();
                    if v.is_empty() || !rest.trim_end().ends_with(')') {
                        return Err(ParseError::at(
                            p.line,
                            format!("entry {name:?}: malformed Source {src:?}"),
                        ));
                    }
                    (n.trim().to_owned(), v.to_owned())
                }
                None => (src.trim().to_owned(), version.clone()),
            },
        };
        out.push(Package {
            kind: PackageKind::Deb,
            name,
            version,
            source_name: Some(source_name),
            source_version: Some(source_version),
            licenses: Vec::new(),
            path: PathBuf::new(),
            layer: None,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const STATUS: &str = "\
Package: libc6
Status: install ok installed
Priority: optional
Architecture: amd64
Multi-Arch: same
Source: glibc
Version: 2.36-9+deb12u4
Description: GNU C Library: Shared libraries
 Contains the standard libraries that are used by nearly all programs on
 .
 the system.

Package: gcc-12-base
Status: install ok installed
Source: gcc-12 (12.2.0-14)
Version: 12.2.0-14
Conffiles:
 /etc/foo 0123

Package: removed
Status: deinstall ok config-files
Version: 1.0

Package: held
Status: hold ok installed
Version: 1:2.0-1
";

    fn triples(p: &[Package]) -> Vec<(&str, &str, &str, &str)> {
        p.iter()
            .map(|p| {
                (
                    p.name.as_str(),
                    p.version.as_str(),
                    p.source_name.as_deref().unwrap_or(""),
                    p.source_version.as_deref().unwrap_or(""),
                )
            })
            .collect()
    }

    #[test]
    fn installed_entries_with_sources() {
        let p = parse(STATUS.as_bytes()).unwrap();
        assert_eq!(
            triples(&p),
            vec![
                ("libc6", "2.36-9+deb12u4", "glibc", "2.36-9+deb12u4"),
                ("gcc-12-base", "12.2.0-14", "gcc-12", "12.2.0-14"),
                ("held", "1:2.0-1", "held", "1:2.0-1"),
            ]
        );
        assert!(p.iter().all(|p| p.kind == PackageKind::Deb));
    }

    #[test]
    fn malformed_entries_name_the_line() {
        let e = parse(b"Package: a\nStatus: install ok installed\nVersion: 1\n\nStatus: install ok installed\nVersion: 2\n").unwrap_err();
        assert_eq!(e.to_string(), "5: entry without Package");
        let e = parse(b"Package: a\nStatus: install ok installed\n").unwrap_err();
        assert_eq!(e.line, Some(1));
        assert!(e.reason.contains("without Version"), "{e}");
        assert_eq!(parse(b" leading\n").unwrap_err().line, Some(1));
        assert_eq!(
            parse(b"Package: a\nbogus line\n").unwrap_err().line,
            Some(2)
        );
        assert!(
            parse(b"Package: a\nStatus: install ok installed\nVersion: 1\nSource: x (1\n").is_err()
        );
        assert!(
            parse(b"Package: a\nVersion: 1\n").is_err(),
            "status file entries need Status"
        );
    }

    #[test]
    fn status_d_without_status() {
        let p =
            parse_status_d(b"Package: base-files\nVersion: 12.4+deb12u5\nArchitecture: amd64\n")
                .unwrap();
        assert_eq!(
            triples(&p),
            vec![("base-files", "12.4+deb12u5", "base-files", "12.4+deb12u5")]
        );
    }

    #[test]
    fn empty_and_odd_inputs_do_not_panic() {
        assert_eq!(parse(b"").unwrap(), vec![]);
        assert_eq!(parse(b"\n\n\r\n").unwrap(), vec![]);
        for input in [
            &b"\xff\xfe:\x00"[..],
            b":",
            b"Package:",
            b"Source: (",
            b"a:b\n\tc\n\n",
        ] {
            let _ = parse(input);
            let _ = parse_status_d(input);
        }
    }
}
