//! `os-release(5)`: `KEY=value` lines, values optionally in double or single quotes
//! with backslash escapes; anything else is ignored, as the specification says.

use crate::error::ParseError;
use crate::OsRelease;

/// Parse an os-release file. `ID` defaults to `linux` as the specification says.
pub fn parse(data: &[u8]) -> Result<OsRelease, ParseError> {
    let mut out = OsRelease {
        id: "linux".to_owned(),
        version_id: None,
        codename: None,
        pretty_name: None,
    };
    for (_, line) in super::lines(data) {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        let value = unquote(value.trim());
        match key.trim() {
            "ID" if !value.is_empty() => out.id = value,
            "VERSION_ID" => out.version_id = Some(value),
            "VERSION_CODENAME" => out.codename = Some(value),
            "PRETTY_NAME" => out.pretty_name = Some(value),
            _ => {}
        }
    }
    Ok(out)
}

fn unquote(v: &str) -> String {
    let inner = match (v.chars().next(), v.chars().last()) {
        (Some(q @ ('"' | '\'')), Some(e)) if v.len() >= 2 && e == q => &v[1..v.len() - 1],
        _ => v,
    };
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(n) = chars.next() {
                out.push(n);
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debian_and_alpine() {
        let d = parse(b"PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nNAME=\"Debian GNU/Linux\"\nVERSION_ID=\"12\"\nVERSION_CODENAME=bookworm\nID=debian\n").unwrap();
        assert_eq!(d.id, "debian");
        assert_eq!(d.version_id.as_deref(), Some("12"));
        assert_eq!(d.codename.as_deref(), Some("bookworm"));
        assert_eq!(
            d.pretty_name.as_deref(),
            Some("Debian GNU/Linux 12 (bookworm)")
        );
        let a = parse(b"NAME=\"Alpine Linux\"\nID=alpine\nVERSION_ID=3.19.1\n# c\ngarbage\n'\nX=\"\\\"q\\\"\"\n").unwrap();
        assert_eq!(a.id, "alpine");
        assert_eq!(a.version_id.as_deref(), Some("3.19.1"));
        assert_eq!(parse(b"").unwrap().id, "linux");
        assert_eq!(parse(b"ID=\"\n").unwrap().id, "\"");
    }
}
