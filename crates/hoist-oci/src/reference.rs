//! Docker image references: parsing, normalization and the familiar short form.
//!
//! A reference names an image the way `docker pull` does:
//!
//! ```text
//! reference  := name [ ":" tag ] [ "@" digest ]
//! name       := [ domain "/" ] path
//! domain     := host [ ":" port ]            host: DNS-like name, IPv4, or [IPv6]
//! path       := component [ "/" component ]*
//! component  := [a-z0-9]+ ( ( "." | "_" | "__" | "-"+ ) [a-z0-9]+ )*
//! tag        := [A-Za-z0-9_] [A-Za-z0-9_.-]{0,127}
//! ```
//!
//! Parsing follows the rules of Docker's `distribution/reference` package
//! (`ParseNormalizedNamed`), re-implemented here with a hand-written scanner:
//!
//! - The first `/`-separated component is a registry domain only when it is
//!   `localhost`, contains `.` or `:`, or contains an uppercase letter;
//!   otherwise the image is on Docker Hub (`docker.io`). `index.docker.io` is
//!   rewritten to `docker.io`, and a single-component Docker Hub path gets the
//!   `library/` prefix: `busybox` is `docker.io/library/busybox`.
//! - The path must be lowercase and at most 255 characters (the domain is not
//!   counted, as in the current `reference.go`).
//! - A bare 64-digit lowercase hex string is refused: it is an image ID, not a
//!   name (`docker.io/<64 hex>` is accepted).
//! - [`FromStr`] adds the tag `latest` when neither a tag nor a digest is given
//!   (`busybox` is `docker.io/library/busybox:latest`); `name@digest` keeps no
//!   tag, and `name:tag@digest` keeps both. [`Reference::parse_normalized`]
//!   normalizes without adding the default tag.
//!
//! [`Display`](fmt::Display) prints the full normalized form and
//! [`Reference::familiar`] the short form the Docker CLI shows (`busybox:latest`,
//! `user/app:tag`).
//!
//! What this module does not do: it does not resolve anything over the network,
//! does not map `docker.io` to the host actually serving Docker Hub
//! (`registry-1.docker.io`), does not parse bare digests or image IDs as
//! references (`ParseAnyReference`), and does not implement `FamiliarMatch`
//! patterns. Digests are [`Digest`]s, so only `sha256` and `sha512` are
//! accepted after `@`.
//!
//! Deliberate differences from `distribution/reference`:
//!
//! - A first component that looks like a domain but is not a valid one (such as
//!   `foo_bar.com/app`, with an underscore) is an error here; Go silently
//!   parses it as a path with no domain at all.
//! - [`Reference::familiar`] keeps the `docker.io/` prefix when dropping it
//!   would make the first path component look like a domain
//!   (`docker.io/foo.bar/app`), so the familiar form always parses back to the
//!   same reference.
//! - Errors are more specific: a bad tag or digest is reported as such rather
//!   than as a generic format error.

use std::fmt;
use std::str::FromStr;

use crate::digest::{Digest, DigestError};

/// The registry domain of Docker Hub, used when a reference names none.
pub const DEFAULT_DOMAIN: &str = "docker.io";

/// The legacy name of Docker Hub, rewritten to [`DEFAULT_DOMAIN`] on parsing.
pub const LEGACY_DEFAULT_DOMAIN: &str = "index.docker.io";

/// The Docker Hub namespace of official images (`busybox` is `library/busybox`).
pub const OFFICIAL_REPO_PREFIX: &str = "library/";

/// The tag [`FromStr`] adds when a reference has neither tag nor digest.
pub const DEFAULT_TAG: &str = "latest";

/// The longest repository path allowed, in bytes (the domain is not counted).
pub const MAX_PATH_LEN: usize = 255;

/// The longest tag allowed, in bytes.
pub const MAX_TAG_LEN: usize = 128;

/// Why a string is not a valid image reference.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReferenceError {
    /// The input is not shaped like `[domain/]path[:tag][@digest]`.
    #[error("invalid reference format: {input:?}: {reason}")]
    InvalidFormat {
        /// The whole input.
        input: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The repository path has uppercase letters (and would be valid without them).
    #[error(
        "invalid reference format: {input:?}: repository name {repository:?} must be lowercase"
    )]
    LowercaseRequired {
        /// The whole input.
        input: String,
        /// The repository path, after normalization.
        repository: String,
    },
    /// The repository path is longer than [`MAX_PATH_LEN`].
    #[error(
        "invalid reference {input:?}: repository name must not be more than {max} characters (it has {len})",
        max = MAX_PATH_LEN
    )]
    NameTooLong {
        /// The whole input.
        input: String,
        /// The length of the normalized repository path.
        len: usize,
    },
    /// The input is 64 hex digits: an image ID, not a repository name.
    #[error("invalid repository name {input:?}: a 64-character hexadecimal string is an image ID, not a name")]
    ImageIdAsName {
        /// The whole input.
        input: String,
    },
    /// The tag is empty, too long, or has characters outside `[A-Za-z0-9_.-]`.
    #[error(
        "invalid tag {tag:?} in reference {input:?}: a tag is 1 to {max} characters from [A-Za-z0-9_.-] and does not start with '.' or '-'",
        max = MAX_TAG_LEN
    )]
    InvalidTag {
        /// The whole input (for [`Reference::with_tag`], the reference and the tag).
        input: String,
        /// The offending tag.
        tag: String,
    },
    /// The part after `@` is not a supported digest.
    #[error("invalid digest in reference {input:?}: {source}")]
    InvalidDigest {
        /// The whole input.
        input: String,
        /// Why the digest was refused.
        source: DigestError,
    },
}

/// A normalized Docker image reference: domain, repository path, optional tag,
/// optional digest.
///
/// Always valid once constructed. Parse with [`FromStr`] (adds `:latest` when
/// neither tag nor digest is given) or [`Reference::parse_normalized`].
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Reference {
    /// `domain/path`.
    name: String,
    /// Length of the domain part of `name`.
    domain_len: usize,
    tag: Option<String>,
    digest: Option<Digest>,
}

impl Reference {
    /// Parse and normalize `input` like Docker's `ParseNormalizedNamed`, without
    /// adding a default tag: `busybox` gives `docker.io/library/busybox` with no
    /// tag. [`FromStr`] is the same plus the default tag.
    pub fn parse_normalized(input: &str) -> Result<Reference, ReferenceError> {
        parse(input)
    }

    /// The registry domain, with the port if any: `docker.io`, `localhost:5000`,
    /// `[::1]:5000`.
    pub fn domain(&self) -> &str {
        &self.name[..self.domain_len]
    }

    /// The repository path without the domain: `library/busybox`, `user/app`.
    pub fn repository(&self) -> &str {
        self.name.get(self.domain_len + 1..).unwrap_or_default()
    }

    /// The full name, `domain/path`, without tag or digest:
    /// `docker.io/library/busybox`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The tag, if any.
    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    /// The digest, if any.
    pub fn digest(&self) -> Option<&Digest> {
        self.digest.as_ref()
    }

    /// The name in the short form the Docker CLI shows: `docker.io/` and, for
    /// single-component official images, `library/` are dropped
    /// (`busybox`, `user/app`, `library/a/b`, `quay.io/x/y`).
    ///
    /// `docker.io/` is kept when dropping it would make the result parse as a
    /// different registry (`docker.io/foo.bar/app`).
    pub fn familiar_name(&self) -> &str {
        if self.domain() != DEFAULT_DOMAIN {
            return &self.name;
        }
        let path = self.repository();
        if let Some(rest) = path.strip_prefix(OFFICIAL_REPO_PREFIX) {
            if !rest.contains('/') {
                return rest;
            }
        }
        match path.split_once('/') {
            Some((first, _)) if looks_like_domain(first) => &self.name,
            _ => path,
        }
    }

    /// The whole reference in the short form the Docker CLI shows:
    /// `busybox:latest`, `user/app:tag`, `busybox@sha256:…`,
    /// `localhost:5000/app:1`. See [`Reference::familiar_name`].
    pub fn familiar(&self) -> String {
        let mut out = self.familiar_name().to_owned();
        self.push_suffix(&mut out);
        out
    }

    /// This reference with its tag replaced by `tag` (a digest is kept).
    pub fn with_tag(&self, tag: &str) -> Result<Reference, ReferenceError> {
        if !is_valid_tag(tag) {
            return Err(ReferenceError::InvalidTag {
                input: format!("{}:{tag}", self.without_tag()),
                tag: tag.to_owned(),
            });
        }
        Ok(Reference {
            tag: Some(tag.to_owned()),
            ..self.clone()
        })
    }

    /// This reference with its digest replaced by `digest` (a tag is kept).
    pub fn with_digest(&self, digest: Digest) -> Reference {
        Reference {
            digest: Some(digest),
            ..self.clone()
        }
    }

    /// This reference without its tag (a digest is kept).
    pub fn without_tag(&self) -> Reference {
        Reference {
            tag: None,
            ..self.clone()
        }
    }

    /// This reference without its digest (a tag is kept).
    pub fn without_digest(&self) -> Reference {
        Reference {
            digest: None,
            ..self.clone()
        }
    }

    fn push_suffix(&self, out: &mut String) {
        if let Some(tag) = &self.tag {
            out.push(':');
            out.push_str(tag);
        }
        if let Some(digest) = &self.digest {
            out.push('@');
            out.push_str(&digest.to_string());
        }
    }
}

impl FromStr for Reference {
    type Err = ReferenceError;

    /// Parse and normalize `input`, adding the tag `latest` when it has neither
    /// tag nor digest.
    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let mut r = parse(input)?;
        if r.tag.is_none() && r.digest.is_none() {
            r.tag = Some(DEFAULT_TAG.to_owned());
        }
        Ok(r)
    }
}

impl fmt::Display for Reference {
    /// The full normalized form: `docker.io/library/busybox:latest`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)?;
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Reference({self})")
    }
}

impl serde::Serialize for Reference {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Reference {
    /// Parses like [`FromStr`], so a name-only reference comes back with `:latest`.
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// The parser shared by [`FromStr`] and [`Reference::parse_normalized`].
fn parse(input: &str) -> Result<Reference, ReferenceError> {
    let format_err = |reason: String| ReferenceError::InvalidFormat {
        input: input.to_owned(),
        reason,
    };
    if input.is_empty() {
        return Err(format_err("empty reference".to_owned()));
    }
    if input.len() == 64 && input.bytes().all(is_lower_hex) {
        return Err(ReferenceError::ImageIdAsName {
            input: input.to_owned(),
        });
    }

    // Neither a tag nor a digest can hold '@', '/' or ':', and a path cannot
    // hold ':', so the digest starts at the first '@' and the tag at the last
    // ':' after the last '/'.
    let (rest, digest) = match input.split_once('@') {
        Some((rest, digest)) => (rest, Some(digest)),
        None => (input, None),
    };
    let last_segment = rest.rfind('/').map_or(0, |i| i + 1);
    let (name, tag) = match rest[last_segment..].rfind(':') {
        Some(i) => (
            &rest[..last_segment + i],
            Some(&rest[last_segment + i + 1..]),
        ),
        None => (rest, None),
    };
    if name.is_empty() {
        return Err(format_err("missing repository name".to_owned()));
    }

    let (domain, path) = split_docker_domain(name);
    if domain != DEFAULT_DOMAIN && !is_valid_domain(domain) {
        return Err(format_err(format!(
            "{domain:?} is taken as a registry domain but is not a valid host[:port]"
        )));
    }
    if let Err(reason) = check_path(&path) {
        if path.bytes().any(|b| b.is_ascii_uppercase())
            && check_path(&path.to_ascii_lowercase()).is_ok()
        {
            return Err(ReferenceError::LowercaseRequired {
                input: input.to_owned(),
                repository: path,
            });
        }
        return Err(format_err(reason));
    }
    if path.len() > MAX_PATH_LEN {
        return Err(ReferenceError::NameTooLong {
            input: input.to_owned(),
            len: path.len(),
        });
    }
    if let Some(tag) = tag {
        if !is_valid_tag(tag) {
            return Err(ReferenceError::InvalidTag {
                input: input.to_owned(),
                tag: tag.to_owned(),
            });
        }
    }
    let digest = digest
        .map(|d| {
            d.parse::<Digest>()
                .map_err(|source| ReferenceError::InvalidDigest {
                    input: input.to_owned(),
                    source,
                })
        })
        .transpose()?;

    Ok(Reference {
        name: format!("{domain}/{path}"),
        domain_len: domain.len(),
        tag: tag.map(str::to_owned),
        digest,
    })
}

/// Split a name (no tag, no digest) into domain and path, applying Docker Hub
/// defaults. The domain is not validated here.
fn split_docker_domain(name: &str) -> (&str, String) {
    let Some((first, rest)) = name.split_once('/') else {
        // A single component is always a Docker Hub official image, even
        // `localhost` or `example.com`.
        return (DEFAULT_DOMAIN, format!("{OFFICIAL_REPO_PREFIX}{name}"));
    };
    let (domain, path) = if first == LEGACY_DEFAULT_DOMAIN {
        (DEFAULT_DOMAIN, rest)
    } else if looks_like_domain(first) {
        (first, rest)
    } else {
        (DEFAULT_DOMAIN, name)
    };
    if domain == DEFAULT_DOMAIN && !path.contains('/') {
        (domain, format!("{OFFICIAL_REPO_PREFIX}{path}"))
    } else {
        (domain, path.to_owned())
    }
}

/// Whether the first component of a multi-component name is a registry domain:
/// `localhost`, anything with `.` or `:`, or anything with uppercase letters
/// (which a path may not have).
fn looks_like_domain(first: &str) -> bool {
    first == "localhost" || first.contains(['.', ':']) || first.chars().any(char::is_uppercase)
}

/// `host[:port]`, where host is a DNS-like name, an IPv4 address, or an IPv6
/// address in brackets (hex digits and colons only: no zones, no embedded IPv4).
fn is_valid_domain(domain: &str) -> bool {
    let (host_ok, port) = if let Some(bracketed) = domain.strip_prefix('[') {
        let Some((inner, after)) = bracketed.split_once(']') else {
            return false;
        };
        let inner_ok =
            !inner.is_empty() && inner.bytes().all(|b| b.is_ascii_hexdigit() || b == b':');
        let port = match after {
            "" => None,
            _ => match after.strip_prefix(':') {
                Some(p) => Some(p),
                None => return false,
            },
        };
        (inner_ok, port)
    } else {
        match domain.split_once(':') {
            Some((host, port)) => (is_valid_host_name(host), Some(port)),
            None => (is_valid_host_name(domain), None),
        }
    };
    host_ok && port.is_none_or(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
}

/// Dot-separated components of ASCII letters, digits and inner hyphens.
fn is_valid_host_name(host: &str) -> bool {
    !host.is_empty()
        && host.split('.').all(|c| {
            let b = c.as_bytes();
            match (b.first(), b.last()) {
                (Some(first), Some(last)) => {
                    first.is_ascii_alphanumeric()
                        && last.is_ascii_alphanumeric()
                        && b.iter().all(|x| x.is_ascii_alphanumeric() || *x == b'-')
                }
                _ => false,
            }
        })
}

/// Check every `/`-separated component of a repository path; the error says
/// which component is wrong and how.
fn check_path(path: &str) -> Result<(), String> {
    for component in path.split('/') {
        check_component(component).map_err(|why| {
            if component.is_empty() {
                format!("repository path {path:?} has an empty component")
            } else {
                format!("repository path component {component:?} {why}")
            }
        })?;
    }
    Ok(())
}

/// `[a-z0-9]+` runs joined by exactly `.`, `_`, `__`, or one or more `-`.
fn check_component(c: &str) -> Result<(), &'static str> {
    let b = c.as_bytes();
    match b.first() {
        None => return Err("is empty"),
        Some(&first) if !is_path_alnum(first) => {
            return Err("must start with a lowercase letter or digit")
        }
        Some(_) => {}
    }
    let mut i = 0;
    while i < b.len() {
        while i < b.len() && is_path_alnum(b[i]) {
            i += 1;
        }
        if i == b.len() {
            break;
        }
        let start = i;
        while i < b.len() && !is_path_alnum(b[i]) {
            i += 1;
        }
        let sep = &b[start..i];
        if !sep.iter().all(|x| matches!(x, b'.' | b'_' | b'-')) {
            return Err("may only hold lowercase letters, digits, '.', '_' and '-'");
        }
        let ok = matches!(sep, b"." | b"_" | b"__") || sep.iter().all(|x| *x == b'-');
        if !ok {
            return Err(
                "separates letters and digits with something other than one '.', one or two '_', or a run of '-'",
            );
        }
        if i == b.len() {
            return Err("must end with a lowercase letter or digit");
        }
    }
    Ok(())
}

fn is_path_alnum(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit()
}

fn is_lower_hex(b: u8) -> bool {
    b.is_ascii_digit() || (b'a'..=b'f').contains(&b)
}

/// `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`.
fn is_valid_tag(tag: &str) -> bool {
    let is_word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let b = tag.as_bytes();
    match b.split_first() {
        Some((&first, rest)) => {
            b.len() <= MAX_TAG_LEN
                && is_word(first)
                && rest.iter().all(|&x| is_word(x) || x == b'.' || x == b'-')
        }
        None => false,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    const D: &str = "sha256:ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff";
    const D2: &str = "sha256:dbcc1c35ac38df41fd2f5e4130b32ffdb93ebae8b3dbe638c23575912276fc9c";

    fn p(s: &str) -> Reference {
        match s.parse::<Reference>() {
            Ok(r) => r,
            Err(e) => panic!("{s:?} should parse: {e}"),
        }
    }

    fn pn(s: &str) -> Reference {
        match Reference::parse_normalized(s) {
            Ok(r) => r,
            Err(e) => panic!("{s:?} should parse: {e}"),
        }
    }

    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    enum Kind {
        Format,
        Lowercase,
        TooLong,
        ImageId,
        Tag,
        Digest,
    }

    fn kind(e: &ReferenceError) -> Kind {
        match e {
            ReferenceError::InvalidFormat { .. } => Kind::Format,
            ReferenceError::LowercaseRequired { .. } => Kind::Lowercase,
            ReferenceError::NameTooLong { .. } => Kind::TooLong,
            ReferenceError::ImageIdAsName { .. } => Kind::ImageId,
            ReferenceError::InvalidTag { .. } => Kind::Tag,
            ReferenceError::InvalidDigest { .. } => Kind::Digest,
        }
    }

    /// `reference_test.go` TestReferenceParse (successful cases), restated for
    /// normalized parsing: input, domain, path, tag, digest. Go's plain `Parse`
    /// takes any first component as a domain; normalized parsing only when it
    /// looks like one, so `foo/foo_bar.com` and `a/a/…` land on Docker Hub.
    #[test]
    fn parse_table() {
        let long_a = "a".repeat(255);
        let sha512 = format!("sha512:{}", "f".repeat(128));
        let many_a = format!("{}a", "a/".repeat(127));
        type Case<'a> = (String, &'a str, String, Option<&'a str>, Option<&'a str>);
        let cases: Vec<Case> = vec![
            ("test_com".into(), "docker.io", "library/test_com".into(), None, None),
            ("test.com:tag".into(), "docker.io", "library/test.com".into(), Some("tag"), None),
            ("test.com:5000".into(), "docker.io", "library/test.com".into(), Some("5000"), None),
            ("test.com/repo:tag".into(), "test.com", "repo".into(), Some("tag"), None),
            ("test:5000/repo".into(), "test:5000", "repo".into(), None, None),
            ("test:5000/repo:tag".into(), "test:5000", "repo".into(), Some("tag"), None),
            (format!("test:5000/repo@{D}"), "test:5000", "repo".into(), None, Some(D)),
            (format!("test:5000/repo:tag@{D}"), "test:5000", "repo".into(), Some("tag"), Some(D)),
            ("lowercase:Uppercase".into(), "docker.io", "library/lowercase".into(), Some("Uppercase"), None),
            (format!("{many_a}:tag-puts-this-over-max"), "docker.io", many_a.clone(), Some("tag-puts-this-over-max"), None),
            ("sub-dom1.foo.com/bar/baz/quux".into(), "sub-dom1.foo.com", "bar/baz/quux".into(), None, None),
            ("sub-dom1.foo.com/bar/baz/quux:some-long-tag".into(), "sub-dom1.foo.com", "bar/baz/quux".into(), Some("some-long-tag"), None),
            ("b.gcr.io/test.example.com/my-app:test.example.com".into(), "b.gcr.io", "test.example.com/my-app".into(), Some("test.example.com"), None),
            ("xn--n3h.com/myimage:xn--n3h.com".into(), "xn--n3h.com", "myimage".into(), Some("xn--n3h.com"), None),
            (format!("xn--7o8h.com/myimage:xn--7o8h.com@{D}"), "xn--7o8h.com", "myimage".into(), Some("xn--7o8h.com"), Some(D)),
            ("foo_bar.com:8080".into(), "docker.io", "library/foo_bar.com".into(), Some("8080"), None),
            ("foo/foo_bar.com:8080".into(), "docker.io", "foo/foo_bar.com".into(), Some("8080"), None),
            ("192.168.1.1".into(), "docker.io", "library/192.168.1.1".into(), None, None),
            ("192.168.1.1:tag".into(), "docker.io", "library/192.168.1.1".into(), Some("tag"), None),
            ("192.168.1.1:5000".into(), "docker.io", "library/192.168.1.1".into(), Some("5000"), None),
            ("192.168.1.1/repo".into(), "192.168.1.1", "repo".into(), None, None),
            ("192.168.1.1:5000/repo".into(), "192.168.1.1:5000", "repo".into(), None, None),
            ("192.168.1.1:5000/repo:5050".into(), "192.168.1.1:5000", "repo".into(), Some("5050"), None),
            ("[2001:db8::1]/repo".into(), "[2001:db8::1]", "repo".into(), None, None),
            ("[2001:db8:1:2:3:4:5:6]/repo:tag".into(), "[2001:db8:1:2:3:4:5:6]", "repo".into(), Some("tag"), None),
            ("[2001:db8::1]:5000/repo".into(), "[2001:db8::1]:5000", "repo".into(), None, None),
            ("[2001:db8::1]:5000/repo:tag".into(), "[2001:db8::1]:5000", "repo".into(), Some("tag"), None),
            (format!("[2001:db8::1]:5000/repo@{D}"), "[2001:db8::1]:5000", "repo".into(), None, Some(D)),
            (format!("[2001:db8::1]:5000/repo:tag@{D}"), "[2001:db8::1]:5000", "repo".into(), Some("tag"), Some(D)),
            ("[2001:db8::]:5000/repo".into(), "[2001:db8::]:5000", "repo".into(), None, None),
            ("[::1]:5000/repo".into(), "[::1]:5000", "repo".into(), None, None),
            (format!("example.com/{long_a}:tag"), "example.com", long_a.clone(), Some("tag"), None),
            // TestSerialization.
            ("example.com:8000/named".into(), "example.com:8000", "named".into(), None, None),
            ("example.com:8000/named:tagged".into(), "example.com:8000", "named".into(), Some("tagged"), None),
            (
                "other.com/named@sha256:1234567890098765432112345667890098765432112345667890098765432112".into(),
                "other.com",
                "named".into(),
                None,
                Some("sha256:1234567890098765432112345667890098765432112345667890098765432112"),
            ),
            // Go's test says sha512 is unsupported only because it is not
            // registered there; hoist accepts it.
            (format!("validname@sha512:{}", "f".repeat(128)), "docker.io", "library/validname".into(), None, Some(sha512.as_str())),
            // Uppercase first component is a domain (the FIXME case in Go's table).
            ("Uppercase/lowercase:tag".into(), "Uppercase", "lowercase".into(), Some("tag"), None),
            // The brief's own examples.
            ("localhost:5000/x".into(), "localhost:5000", "x".into(), None, None),
            ("registry.example.com/a/b/c:tag".into(), "registry.example.com", "a/b/c".into(), Some("tag"), None),
            ("[::1]:5000/x".into(), "[::1]:5000", "x".into(), None, None),
            ("index.docker.io/user/app:1".into(), "docker.io", "user/app".into(), Some("1"), None),
        ];
        for (input, domain, path, tag, digest) in &cases {
            let r = pn(input);
            assert_eq!(r.domain(), *domain, "domain of {input:?}");
            assert_eq!(r.repository(), path, "path of {input:?}");
            assert_eq!(r.name(), format!("{domain}/{path}"), "name of {input:?}");
            assert_eq!(r.tag(), *tag, "tag of {input:?}");
            assert_eq!(
                r.digest().map(|d| d.to_string()).as_deref(),
                *digest,
                "digest of {input:?}"
            );
            // FromStr only adds `latest` when there is neither tag nor digest.
            let with_default = p(input);
            let expect_tag = match (tag, digest) {
                (None, None) => Some(DEFAULT_TAG),
                _ => *tag,
            };
            assert_eq!(with_default.tag(), expect_tag, "default tag of {input:?}");
        }
    }

    /// `reference_test.go` TestReferenceParse failures plus `normalize_test.go`
    /// invalid names, with the kind of error hoist reports.
    #[test]
    fn error_table() {
        let sha_bad_len = "repo@sha256:ffffffffffffffffffffffffffffffffff".to_owned();
        let cases: Vec<(String, Kind)> = vec![
            (String::new(), Kind::Format),
            (":justtag".into(), Kind::Format),
            (format!("@{D}"), Kind::Format),
            (sha_bad_len, Kind::Digest),
            (
                "validname@invaliddigest:ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff".into(),
                Kind::Digest,
            ),
            ("Uppercase:tag".into(), Kind::Lowercase),
            ("test:5000/Uppercase/lowercase:tag".into(), Kind::Lowercase),
            ("docker/Docker".into(), Kind::Lowercase),
            ("docker.io/docker/Docker".into(), Kind::Lowercase),
            (format!("domain/{}:tag", "a".repeat(256)), Kind::TooLong),
            ("aa/asdf$$^/aa".into(), Kind::Format),
            ("[2001:db8::1]".into(), Kind::Format),
            ("[2001:db8::1]:5000".into(), Kind::Format),
            ("[2001:db8::1]:tag".into(), Kind::Format),
            ("[fe80::1%eth0]:5000/repo".into(), Kind::Format),
            ("[fe80::1%@invalidzone]:5000/repo".into(), Kind::Format),
            ("https://github.com/docker/docker".into(), Kind::Format),
            ("-docker".into(), Kind::Format),
            ("-docker/docker".into(), Kind::Format),
            ("-docker.io/docker/docker".into(), Kind::Format),
            ("docker///docker".into(), Kind::Format),
            ("docker.io/docker///docker".into(), Kind::Format),
            ("[fc00::1]".into(), Kind::Format),
            ("[fc00::1]:5000".into(), Kind::Format),
            ("fc00::1:5000/debian".into(), Kind::Format),
            ("[fe80::1%eth0]:5000/debian".into(), Kind::Format),
            ("[2001:db8:3:4::192.0.2.33]:5000/debian".into(), Kind::Format),
            ("1a3f5e7d9c1b3a5f7e9d1c3b5a7f9e1d3c5b7a9f1e3d5d7c9b1a3f5e7d9c1b3a".into(), Kind::ImageId),
            ("docker-/docker".into(), Kind::Format),
            ("-docker-/docker".into(), Kind::Format),
            ("____/____".into(), Kind::Format),
            ("_docker/_docker".into(), Kind::Format),
            ("dock..er/docker".into(), Kind::Format),
            ("dock_.er/docker".into(), Kind::Format),
            ("dock-.er/docker".into(), Kind::Format),
            ("docker/".into(), Kind::Format),
            (
                "this_is_not_a_valid_namespace_because_its_lenth_is_greater_than_255_this_is_not_a_valid_namespace_because_its_lenth_is_greater_than_255_this_is_not_a_valid_namespace_because_its_lenth_is_greater_than_255_this_is_not_a_valid_namespace_because_its_lenth_is_greater_than_255/docker".into(),
                Kind::TooLong,
            ),
            // Tags: `[\w][\w.-]{0,127}`.
            ("busybox:-foo".into(), Kind::Tag),
            ("busybox:.foo".into(), Kind::Tag),
            ("busybox:".into(), Kind::Tag),
            (format!("busybox:{}", "t".repeat(129)), Kind::Tag),
            ("busybox:a+b".into(), Kind::Tag),
            // Digests.
            ("busybox@".into(), Kind::Digest),
            ("busybox@sha256:FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF".into(), Kind::Digest),
            (format!("busybox@{D}@{D}"), Kind::Digest),
            // Deliberate divergence: Go accepts this with an empty domain.
            ("foo_bar.com/app".into(), Kind::Format),
            ("localhost:/app".into(), Kind::Format),
            ("localhost:50a/app".into(), Kind::Format),
            ("[::1/app".into(), Kind::Format),
            ("[]:5000/app".into(), Kind::Format),
            ("[::1]x/app".into(), Kind::Format),
            ("a..b/app".into(), Kind::Format),
            ("café/app".into(), Kind::Format),
            ("busybox/café".into(), Kind::Format),
        ];
        for (input, want) in &cases {
            match Reference::parse_normalized(input) {
                Ok(r) => panic!("{input:?} should fail with {want:?}, parsed as {r}"),
                Err(e) => {
                    assert_eq!(kind(&e), *want, "{input:?}: {e}");
                    assert_eq!(input.parse::<Reference>().err(), Some(e));
                }
            }
        }
    }

    /// `normalize_test.go` TestValidateReferenceName and TestValidateRemoteName
    /// valid names.
    #[test]
    fn valid_names() {
        for name in [
            "docker/docker",
            "library/debian",
            "debian",
            "localhost/library/debian",
            "localhost/debian",
            "LOCALDOMAIN/library/debian",
            "LOCALDOMAIN/debian",
            "docker.io/docker/docker",
            "docker.io/library/debian",
            "docker.io/debian",
            "index.docker.io/docker/docker",
            "index.docker.io/library/debian",
            "index.docker.io/debian",
            "127.0.0.1:5000/docker/docker",
            "127.0.0.1:5000/library/debian",
            "127.0.0.1:5000/debian",
            "192.168.0.1",
            "192.168.0.1:80",
            "192.168.0.1:8/debian",
            "192.168.0.2:25000/debian",
            "thisisthesongthatneverendsitgoesonandonandonthisisthesongthatnev",
            "[fc00::1]:5000/docker",
            "[fc00::1]:5000/docker/docker",
            "[fc00:1:2:3:4:5:6:7]:5000/library/debian",
            "docker.io/1a3f5e7d9c1b3a5f7e9d1c3b5a7f9e1d3c5b7a9f1e3d5d7c9b1a3f5e7d9c1b3a",
            "Docker/docker",
            "DOCKER/docker",
            "docker-rules/docker",
            "docker---rules/docker",
            "doc/docker",
            "d/docker",
            "jess/t",
            "dock__er/docker",
            // ParseAnyReference cases that are plain names.
            "dbcc1c35ac38df41fd2f5e4130b32ffdb93ebae8b3dbe638c23575912276fc9",
            "dbcc1",
        ] {
            pn(name);
        }
    }

    /// `normalize_test.go` TestParseRepositoryInfo: every spelling of a name
    /// gives the same familiar name, full name, domain and path.
    #[test]
    fn repository_info() {
        // (path, familiar, full, ambiguous spelling, domain)
        let cases = [
            ("fooo", "localhost/fooo", "localhost/fooo", "", "localhost"),
            (
                "fooo/bar",
                "localhost/fooo/bar",
                "localhost/fooo/bar",
                "",
                "localhost",
            ),
            (
                "fooo",
                "LOCALDOMAIN/fooo",
                "LOCALDOMAIN/fooo",
                "",
                "LOCALDOMAIN",
            ),
            (
                "fooo/bar",
                "LOCALDOMAIN/fooo/bar",
                "LOCALDOMAIN/fooo/bar",
                "",
                "LOCALDOMAIN",
            ),
            (
                "fooo/bar",
                "fooo/bar",
                "docker.io/fooo/bar",
                "index.docker.io/fooo/bar",
                "docker.io",
            ),
            (
                "library/ubuntu",
                "ubuntu",
                "docker.io/library/ubuntu",
                "library/ubuntu",
                "docker.io",
            ),
            (
                "nonlibrary/ubuntu",
                "nonlibrary/ubuntu",
                "docker.io/nonlibrary/ubuntu",
                "",
                "docker.io",
            ),
            (
                "other/library",
                "other/library",
                "docker.io/other/library",
                "",
                "docker.io",
            ),
            (
                "private/moonbase",
                "127.0.0.1:8000/private/moonbase",
                "127.0.0.1:8000/private/moonbase",
                "",
                "127.0.0.1:8000",
            ),
            (
                "privatebase",
                "127.0.0.1:8000/privatebase",
                "127.0.0.1:8000/privatebase",
                "",
                "127.0.0.1:8000",
            ),
            (
                "private/moonbase",
                "example.com/private/moonbase",
                "example.com/private/moonbase",
                "",
                "example.com",
            ),
            (
                "privatebase",
                "example.com/privatebase",
                "example.com/privatebase",
                "",
                "example.com",
            ),
            (
                "private/moonbase",
                "example.com:8000/private/moonbase",
                "example.com:8000/private/moonbase",
                "",
                "example.com:8000",
            ),
            (
                "privatebasee",
                "example.com:8000/privatebasee",
                "example.com:8000/privatebasee",
                "",
                "example.com:8000",
            ),
            (
                "library/ubuntu-12.04-base",
                "ubuntu-12.04-base",
                "docker.io/library/ubuntu-12.04-base",
                "index.docker.io/library/ubuntu-12.04-base",
                "docker.io",
            ),
            (
                "library/foo",
                "foo",
                "docker.io/library/foo",
                "docker.io/foo",
                "docker.io",
            ),
            (
                "library/foo/bar",
                "library/foo/bar",
                "docker.io/library/foo/bar",
                "",
                "docker.io",
            ),
            (
                "store/foo/bar",
                "store/foo/bar",
                "docker.io/store/foo/bar",
                "",
                "docker.io",
            ),
            ("bar", "Foo/bar", "Foo/bar", "", "Foo"),
            ("bar", "FOO/bar", "FOO/bar", "", "FOO"),
        ];
        for (path, familiar, full, ambiguous, domain) in cases {
            for spelling in [familiar, full, ambiguous] {
                if spelling.is_empty() {
                    continue;
                }
                let r = pn(spelling);
                assert_eq!(r.familiar_name(), familiar, "familiar name of {spelling:?}");
                assert_eq!(r.familiar(), familiar, "familiar form of {spelling:?}");
                assert_eq!(r.to_string(), full, "full name of {spelling:?}");
                assert_eq!(r.name(), full, "name of {spelling:?}");
                assert_eq!(r.domain(), domain, "domain of {spelling:?}");
                assert_eq!(r.repository(), path, "path of {spelling:?}");
            }
        }
    }

    /// `normalize_test.go` TestNormalizedSplitHostname and `reference_test.go`
    /// TestDomainAndPath (normalized).
    #[test]
    fn domain_and_path() {
        for (input, domain, path) in [
            ("test.com/foo", "test.com", "foo"),
            ("test_com/foo", "docker.io", "test_com/foo"),
            ("docker/migrator", "docker.io", "docker/migrator"),
            ("test:8080/foo", "test:8080", "foo"),
            ("test.com:8080/foo", "test.com:8080", "foo"),
            ("test-com:8080/foo", "test-com:8080", "foo"),
            ("foo", "docker.io", "library/foo"),
            ("xn--n3h.com/foo", "xn--n3h.com", "foo"),
            ("xn--n3h.com:18080/foo", "xn--n3h.com:18080", "foo"),
            ("docker.io/foo", "docker.io", "library/foo"),
            ("docker.io/library/foo", "docker.io", "library/foo"),
            ("docker.io/library/foo/bar", "docker.io", "library/foo/bar"),
            ("localhost", "docker.io", "library/localhost"),
            ("example.com", "docker.io", "library/example.com"),
            ("localhost:5000", "docker.io", "library/localhost"),
        ] {
            let r = pn(input);
            assert_eq!((r.domain(), r.repository()), (domain, path), "{input:?}");
        }
    }

    /// `normalize_test.go` TestParseReferenceWithTagAndDigest, TestParseDockerRef
    /// and TestParseAnyReference (name cases), for `FromStr`: the default tag
    /// appears only when there is neither tag nor digest.
    #[test]
    fn default_tag_and_full_form() {
        let busybox_d = "sha256:e6693c20186f837fc393390135d8a598a96a833917917789d63766cab6c59582";
        let short = "busybox:latest@sha256:86e0e091d0da6bde2456dbb48306f3956bbeb2eae1b5b9a43045843f69fe4aaa";
        let cases = [
            (
                "busybox".to_owned(),
                "docker.io/library/busybox:latest".to_owned(),
            ),
            (
                "busybox:latest".into(),
                "docker.io/library/busybox:latest".into(),
            ),
            (
                format!("busybox@{busybox_d}"),
                format!("docker.io/library/busybox@{busybox_d}"),
            ),
            (
                "library/busybox".into(),
                "docker.io/library/busybox:latest".into(),
            ),
            (
                "docker.io/busybox".into(),
                "docker.io/library/busybox:latest".into(),
            ),
            (
                "docker.io/library/busybox".into(),
                "docker.io/library/busybox:latest".into(),
            ),
            (
                "docker.io/busybox:latest".into(),
                "docker.io/library/busybox:latest".into(),
            ),
            (
                "library/busybox:latest".into(),
                "docker.io/library/busybox:latest".into(),
            ),
            (
                "gcr.io/library/busybox".into(),
                "gcr.io/library/busybox:latest".into(),
            ),
            // Unlike ParseDockerRef, both tag and digest are kept.
            (
                format!("gcr.io/library/busybox:latest@{busybox_d}"),
                format!("gcr.io/library/busybox:latest@{busybox_d}"),
            ),
            (short.into(), format!("docker.io/library/{short}")),
            ("redis".into(), "docker.io/library/redis:latest".into()),
            (
                format!("redis@{D2}"),
                format!("docker.io/library/redis@{D2}"),
            ),
            (
                "dmcgowan/myapp".into(),
                "docker.io/dmcgowan/myapp:latest".into(),
            ),
            (
                format!("dmcgowan/myapp@{D2}"),
                format!("docker.io/dmcgowan/myapp@{D2}"),
            ),
            (
                "docker.io/mcgowan/myapp:latest".into(),
                "docker.io/mcgowan/myapp:latest".into(),
            ),
            ("user/app".into(), "docker.io/user/app:latest".into()),
            ("dbcc1".into(), "docker.io/library/dbcc1:latest".into()),
            // A bare digest is not a reference: it reads as name `sha256`, tag `<hex>`.
            (D2.into(), format!("docker.io/library/{D2}")),
        ];
        for (input, want) in &cases {
            let r = p(input);
            assert_eq!(&r.to_string(), want, "{input:?}");
            assert_eq!(p(want), r, "{want:?} reparsed");
        }
        let r = p(short);
        assert_eq!(r.tag(), Some("latest"));
        assert!(r.digest().is_some());
        assert_eq!(r.familiar(), short);
    }

    /// `reference_test.go` TestParseNamed: which inputs are already in
    /// canonical (normalized) form.
    #[test]
    fn canonical_forms() {
        for (input, canonical) in [
            ("test.com/foo", true),
            ("test:8080/foo", true),
            ("docker.io/library/foo", true),
            ("test_com/foo", false),
            ("test.com", false),
            ("foo", false),
            ("library/foo", false),
            ("docker.io/foo", false),
        ] {
            assert_eq!(pn(input).to_string() == input, canonical, "{input:?}");
        }
    }

    #[test]
    fn familiar_forms() {
        for (input, familiar) in [
            ("busybox", "busybox:latest"),
            ("docker.io/library/busybox:1.36", "busybox:1.36"),
            ("index.docker.io/library/busybox", "busybox:latest"),
            ("user/app:tag", "user/app:tag"),
            ("docker.io/user/app", "user/app:latest"),
            ("library/a/b:1", "library/a/b:1"),
            ("localhost/app", "localhost/app:latest"),
            ("localhost:5000/app:1", "localhost:5000/app:1"),
            ("quay.io/org/app:v2", "quay.io/org/app:v2"),
            ("[::1]:5000/x:y", "[::1]:5000/x:y"),
            (&format!("busybox@{D}"), &format!("busybox@{D}")),
            (
                &format!("docker.io/library/busybox:1@{D}"),
                &format!("busybox:1@{D}"),
            ),
            // Kept: `foo.bar/app` alone would name registry foo.bar.
            ("docker.io/foo.bar/app", "docker.io/foo.bar/app:latest"),
            ("docker.io/library/foo.bar", "foo.bar:latest"),
        ] {
            let r = p(input);
            assert_eq!(r.familiar(), familiar, "{input:?}");
            assert_eq!(p(familiar), r, "familiar form of {input:?} reparsed");
        }
    }

    /// `reference_test.go` TestWithTag / TestWithDigest and `normalize_test.go`
    /// TestInvalidReferenceComponents.
    #[test]
    fn builders() {
        let d: Digest = D.parse().unwrap();
        for (name, digest, tag, combined) in [
            ("test.com/foo", None, "tag", "test.com/foo:tag".to_owned()),
            ("foo", None, "tag2", "docker.io/library/foo:tag2".to_owned()),
            (
                "test.com:8000/foo",
                None,
                "tag4",
                "test.com:8000/foo:tag4".to_owned(),
            ),
            (
                "test.com:8000/foo",
                None,
                "TAG5",
                "test.com:8000/foo:TAG5".to_owned(),
            ),
            (
                "test.com:8000/foo",
                Some(&d),
                "TAG5",
                format!("test.com:8000/foo:TAG5@{D}"),
            ),
        ] {
            let mut r = pn(name);
            if let Some(d) = digest {
                r = r.with_digest(d.clone());
            }
            assert_eq!(r.with_tag(tag).unwrap().to_string(), combined);
        }
        for (name, tag, combined) in [
            ("test.com/foo", None, format!("test.com/foo@{D}")),
            ("foo", None, format!("docker.io/library/foo@{D}")),
            ("test.com:8000/foo", None, format!("test.com:8000/foo@{D}")),
            (
                "test.com:8000/foo",
                Some("latest"),
                format!("test.com:8000/foo:latest@{D}"),
            ),
        ] {
            let mut r = pn(name);
            if let Some(t) = tag {
                r = r.with_tag(t).unwrap();
            }
            assert_eq!(r.with_digest(d.clone()).to_string(), combined);
        }

        let r = p(&format!("busybox:1@{D}"));
        assert_eq!(
            r.without_tag().to_string(),
            format!("docker.io/library/busybox@{D}")
        );
        assert_eq!(
            r.without_digest().to_string(),
            "docker.io/library/busybox:1"
        );
        let bare = r.without_tag().without_digest();
        assert_eq!(bare.to_string(), "docker.io/library/busybox");
        assert_eq!(bare.familiar(), "busybox");
        assert_eq!(bare.tag(), None);

        let busybox = pn("busybox");
        for bad in ["-foo", ".foo", "", "a/b", "a:b", "a@b", &"t".repeat(129)] {
            let e = busybox.with_tag(bad).unwrap_err();
            assert_eq!(kind(&e), Kind::Tag, "{bad:?}");
        }
        assert!(busybox.with_tag(&"t".repeat(128)).is_ok());
        assert!(busybox.with_tag("_").is_ok());
    }

    #[test]
    fn errors_name_the_input() {
        let cases = [
            ("docker/Docker", "must be lowercase"),
            ("aa/asdf$$^/aa", "\"asdf$$^\""),
            ("busybox:-x", "invalid tag \"-x\""),
            ("busybox@md5:abc", "unsupported algorithm"),
            (
                "foo_bar.com/app",
                "\"foo_bar.com\" is taken as a registry domain",
            ),
            ("docker///docker", "empty component"),
            ("x/dock..er", "one '.'"),
        ];
        for (input, needle) in cases {
            let msg = Reference::parse_normalized(input).unwrap_err().to_string();
            assert!(msg.contains(&format!("{input:?}")), "{msg}");
            assert!(msg.contains(needle), "{input:?}: {msg}");
        }
        let e = Reference::parse_normalized("busybox@sha256:abc").unwrap_err();
        assert!(matches!(
            e,
            ReferenceError::InvalidDigest {
                source: DigestError::BadEncoding { .. },
                ..
            }
        ));
        let e = Reference::parse_normalized(&format!("x/{}", "a".repeat(300))).unwrap_err();
        assert_eq!(
            e,
            ReferenceError::NameTooLong {
                input: format!("x/{}", "a".repeat(300)),
                len: 302
            }
        );
    }

    #[test]
    fn path_length_limit_counts_the_path_only() {
        // 255 is fine, including with a long domain; 256 is not.
        let ok = format!("{}.example.com/{}", "r".repeat(60), "a".repeat(255));
        assert_eq!(pn(&ok).repository().len(), 255);
        let e =
            Reference::parse_normalized(&format!("example.com/{}", "a".repeat(256))).unwrap_err();
        assert_eq!(kind(&e), Kind::TooLong);
        // The `library/` prefix counts.
        assert!(Reference::parse_normalized(&"a".repeat(247)).is_ok());
        let e = Reference::parse_normalized(&"a".repeat(248)).unwrap_err();
        assert_eq!(kind(&e), Kind::TooLong);
    }

    #[test]
    fn serde_as_a_string() {
        let r = p(&format!("localhost:5000/app:1@{D}"));
        let json = serde_json::to_string(&r).unwrap();
        assert_eq!(json, format!("\"localhost:5000/app:1@{D}\""));
        assert_eq!(serde_json::from_str::<Reference>(&json).unwrap(), r);
        let r: Reference = serde_json::from_str("\"busybox\"").unwrap();
        assert_eq!(r.to_string(), "docker.io/library/busybox:latest");
        let e = serde_json::from_str::<Reference>("\"Busy/Box\"").unwrap_err();
        assert!(e.to_string().contains("must be lowercase"), "{e}");
        assert!(serde_json::from_str::<Reference>("42").is_err());
    }

    /// Every string over a small alphabet of significant characters: parsing
    /// never panics, and whatever parses prints back to itself in both the full
    /// and the familiar form.
    #[test]
    fn exhaustive_short_inputs_never_panic_and_round_trip() {
        const ALPHABET: &[&str] = &[
            "a", "B", "0", ".", "-", "_", ":", "/", "@", "[", "]", "é", "9",
        ];
        let mut inputs = vec![String::new()];
        let mut frontier = vec![String::new()];
        for _ in 0..5 {
            let mut next = Vec::new();
            for s in &frontier {
                for c in ALPHABET {
                    next.push(format!("{s}{c}"));
                }
            }
            inputs.extend(next.iter().cloned());
            frontier = next;
        }
        // Longer inputs: a valid reference with one byte position replaced.
        let base = format!("Reg.example:5000/ns/app-1__x.y:v1.0@{D}");
        for i in 0..base.len() {
            for c in ALPHABET {
                let mut s = base.clone();
                s.replace_range(i..=i, c);
                inputs.push(s);
            }
        }
        let mut parsed = 0;
        for input in &inputs {
            let Ok(r) = Reference::parse_normalized(input) else {
                continue;
            };
            parsed += 1;
            assert_eq!(pn(&r.to_string()), r, "{input:?} -> {r}");
            assert_eq!(
                pn(&r.familiar()),
                r,
                "{input:?} -> familiar {}",
                r.familiar()
            );
            assert!(r.repository().len() <= MAX_PATH_LEN);
            assert!(!r.domain().is_empty() && !r.repository().is_empty());
        }
        assert!(parsed > 1000, "only {parsed} inputs parsed");
    }
}
