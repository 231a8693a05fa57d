//! `COPY` and `ADD`: resolve sources, then write what they produce into an empty
//! staging directory that becomes the step's layer.
//!
//! # Semantics (BuildKit's, checked against `dockerfile2llb/convert_copy.go`,
//! `solver/llbsolver/file/backend.go` and `unpack.go`, and fsutil's `copy/copy.go`)
//!
//! - Sources are cleaned against `/`: `../x`, `/x` and `x/` all mean the context's
//!   (or the `--from` tree's) `x`; nothing outside the root is reachable. Symlinks
//!   on the way to a source, and the source itself, are followed inside the
//!   root; symlinks *below* a copied directory are copied as symlinks.
//! - Wildcards (`*`, `?`, `[..]`, `\` escapes: Go's `filepath.Match`) start at the
//!   first component that has one; the directory before it is resolved, then
//!   walked without following symlinks, and every path whose relative name matches
//!   the rest of the pattern is a match (a matched directory is not descended).
//!   `*` never crosses `/`, so `**` is just `*`. A wildcard that matches nothing is
//!   not an error (BuildKit's `AllowEmptyWildcard`), so `COPY a.txt b.tx[t] ./`
//!   makes `b.txt` optional; a missing plain source is.
//! - For each match in order: a directory's *contents* are copied to the
//!   destination (created if missing); anything else goes to `dest/<name>` when the
//!   destination is an existing directory (in the stage's tree, following symlinks,
//!   or created by an earlier source of this instruction), else to the destination
//!   path itself. A destination ending in `/` (or `.`) is created as a directory
//!   first. Like BuildKit, several sources or a wildcard do *not* by themselves
//!   make the destination a directory: `COPY f*.go foo2.go` writes the file
//!   `foo2.go` (BuildKit's own test), and several files to a missing `dest`
//!   without `/` overwrite each other.
//! - The destination path is resolved through the stage's tree, symlinks followed
//!   (so `COPY x /link/` writes below the link's target), except with `--link`,
//!   where the copy happens onto nothing, as BuildKit does it.
//! - Metadata: mode, mtime (and atime), symlinks and hard links (within one
//!   instruction) are kept. Owners are 0:0 from the context and kept from a
//!   `--from` tree, unless `--chown`. `--chmod` replaces the permission and
//!   special bits of every copied file and directory (not symlinks). Directories
//!   created on the way get 0755 and `--chown`'s owner (else root); existing ones
//!   are written into the layer with the mode, owner and mtime they have in the
//!   stage's tree. Nested copied directories take their source's metadata; the
//!   top destination directory keeps its own mode and owner.
//! - `.dockerignore` hides context paths (an ignored directory with re-included
//!   files exists with only those); `--exclude` patterns match paths relative to
//!   each copied source (the source itself is never excluded).
//! - `ADD` of a local regular file that is a tar archive (plain, gzip, zstd, bzip2
//!   or xz, by content, not name) extracts it into the destination directory, with
//!   `--chown` applied to every entry. `ADD <url>` downloads the body (never
//!   unpacked) to `<name from the URL path>` (`__unnamed__` without one), mode
//!   0600, mtime from `Last-Modified` (else `SOURCE_DATE_EPOCH`, else 0), and
//!   checks `--checksum`.
//!
//! # What it does not do
//!
//! - No xattrs, no git sources, no `--parents`, no symbolic `--chmod`.
//! - Unknown `--chown` names are an error here; BuildKit silently uses 0.

use std::collections::{BTreeMap, HashMap};
use std::ffi::OsString;
use std::fs::{self, File};
use std::io::{self, BufReader, Read, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hoist_dockerfile::ignore::{DockerIgnore, IgnoreError, Matcher};
use hoist_layer::{apply_layer, ApplyError, ApplyOptions};
use hoist_oci::media_type::Decompressor;
use hoist_oci::{Algorithm, Digest, Digester};
use hoist_snapshot::{Node, PlainDir, ResolveError, Tree};
use rustix::fs::{AtFlags, FileType, Mode, Timespec, Timestamps, CWD};

use crate::context::BuildContext;

/// Where `COPY` reads from.
#[derive(Clone, Copy)]
pub enum CopyFrom<'a> {
    /// The build context (owners reset to 0:0, `.dockerignore` applied).
    Context(&'a BuildContext),
    /// Another stage's or an image's root file system (`COPY --from`).
    Tree(&'a dyn Tree),
}

/// `ADD`-only options.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AddOptions {
    /// `--checksum` for a URL source.
    pub checksum: Option<Digest>,
    /// Extract local tar archives (plain, gzip, zstd, bzip2, xz). `ADD`'s default
    /// is true (`--unpack=false` turns it off); URLs are never extracted.
    pub unpack: bool,
}

/// One `COPY` or `ADD` instruction, arguments already expanded.
#[derive(Clone)]
pub struct CopyOp<'a> {
    /// Source paths or patterns (`ADD`: also `http(s)://` URLs).
    pub sources: &'a [String],
    /// Destination; relative means relative to `workdir`.
    pub dest: &'a str,
    /// The stage's working directory (absolute).
    pub workdir: &'a str,
    /// Where sources are read from.
    pub from: CopyFrom<'a>,
    /// `--exclude` patterns (`.dockerignore` syntax, relative to each source).
    pub exclude: &'a [String],
    /// `--chown`, resolved (see [`resolve_chown`]).
    pub chown: Option<(u32, u32)>,
    /// `--chmod` (see [`parse_chmod`]).
    pub chmod: Option<u32>,
    /// `--link`: ignore what the stage already has at the destination.
    pub link: bool,
    /// The stage's current root file system.
    pub dest_view: &'a dyn Tree,
    /// `Some` for `ADD`.
    pub add: Option<AddOptions>,
    /// `SOURCE_DATE_EPOCH`: mtime of a downloaded file without `Last-Modified`.
    pub source_date_epoch: Option<i64>,
}

/// What a copy wrote.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CopyStats {
    /// Non-directory entries written (files, symlinks, hard links, devices,
    /// archive entries).
    pub files: u64,
    /// Bytes of regular file content written (uncompressed tar size for archives).
    pub bytes: u64,
}

/// Why a copy failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CopyError {
    /// `COPY` with only a destination.
    #[error("no source files were specified")]
    NoSources,
    /// A source (not a wildcard) that does not exist.
    #[error("{pattern}: no such file or directory {where_}{}", if *.ignored { " (it is excluded by .dockerignore)" } else { "" })]
    NotFound {
        /// The source as written.
        pattern: String,
        /// "in the build context" or "in the source tree".
        where_: &'static str,
        /// Whether `.dockerignore` excludes it.
        ignored: bool,
    },
    /// A URL given to `COPY`.
    #[error("{url}: source can't be a URL for COPY")]
    UrlInCopy {
        /// The source.
        url: String,
    },
    /// The context directory cannot be used.
    #[error("build context {}: {source}", path.display())]
    Context {
        /// The path.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
    /// A `.dockerignore` pattern is invalid.
    #[error("{}: {source}", path.display())]
    IgnoreFile {
        /// The ignore file.
        path: PathBuf,
        /// The bad pattern.
        source: IgnoreError,
    },
    /// An `--exclude` pattern is invalid.
    #[error("--exclude: {0}")]
    Exclude(IgnoreError),
    /// A numeric `--chmod` that is not octal in 0..=07777.
    #[error("invalid chmod parameter: '{0}'. it should be octal string and between 0 and 07777")]
    InvalidChmod(String),
    /// A symbolic `--chmod` (`u+x`).
    #[error("--chmod={0}: symbolic modes are not supported, use an octal mode such as 0755")]
    SymbolicChmod(String),
    /// A `--chown` user name missing from the destination's `/etc/passwd`.
    #[error("--chown={spec}: unable to find user {name}: no matching entries in /etc/passwd")]
    UnknownUser {
        /// The whole `--chown` value.
        spec: String,
        /// The user name.
        name: String,
    },
    /// A `--chown` group name missing from the destination's `/etc/group`.
    #[error("--chown={spec}: unable to find group {name}: no matching entries in /etc/group")]
    UnknownGroup {
        /// The whole `--chown` value.
        spec: String,
        /// The group name.
        name: String,
    },
    /// An empty or malformed `--chown`.
    #[error("--chown={0}: expected user[:group]")]
    BadChown(String),
    /// A file system operation failed.
    #[error("{what} {}: {source}", path.display())]
    Io {
        /// What was being done.
        what: &'static str,
        /// The path (in the source tree, the destination or on the host).
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
    /// A directory would have to be written where a non-directory is.
    #[error("cannot copy to non-directory: /{}", path.display())]
    NotADirectory {
        /// Destination path.
        path: PathBuf,
    },
    /// A file would replace a directory.
    #[error("cannot replace to directory /{} with file", path.display())]
    DirectoryInTheWay {
        /// Destination path.
        path: PathBuf,
    },
    /// Too many symlinks while resolving a path.
    #[error("{}: too many levels of symbolic links", path.display())]
    SymlinkLoop {
        /// The path being resolved.
        path: PathBuf,
    },
    /// A downloaded body does not match `--checksum`.
    #[error("digest mismatch for {url}: {actual} (expected: {expected})")]
    ChecksumMismatch {
        /// The URL.
        url: String,
        /// `--checksum`.
        expected: Digest,
        /// What the body hashed to.
        actual: Digest,
    },
    /// The server answered with an error status.
    #[error("{url}: invalid response status {status}")]
    HttpStatus {
        /// The URL.
        url: String,
        /// The status code.
        status: u16,
    },
    /// The download failed.
    #[error("{url}: {message}")]
    Http {
        /// The URL.
        url: String,
        /// What went wrong.
        message: String,
    },
    /// A local archive could not be extracted.
    #[error("extracting {}: {source}", path.display())]
    Archive {
        /// The archive (source path).
        path: PathBuf,
        /// The error.
        source: ApplyError,
    },
}

type Result<T, E = CopyError> = std::result::Result<T, E>;

fn io_err<'p>(what: &'static str, path: &'p Path) -> impl FnOnce(io::Error) -> CopyError + 'p {
    move |source| CopyError::Io {
        what,
        path: path.to_owned(),
        source,
    }
}

/// Parses `--chmod`: octal `0..=07777`. Symbolic modes are refused with
/// [`CopyError::SymbolicChmod`]; numbers that are not octal or too large with
/// BuildKit's "invalid chmod parameter" message.
pub fn parse_chmod(s: &str) -> Result<u32> {
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        return match u32::from_str_radix(s, 8) {
            Ok(m) if m <= 0o7777 => Ok(m),
            _ => Err(CopyError::InvalidChmod(s.to_owned())),
        };
    }
    Err(CopyError::SymbolicChmod(s.to_owned()))
}

/// Resolves `--chown=user[:group]` against the destination's `/etc/passwd` and
/// `/etc/group` (read through `dest_view`, symlinks followed). `root` is 0 and
/// numbers are taken as ids without lookup; a numeric user without a group gets
/// the same number as gid (as BuildKit), a named one its primary gid.
pub fn resolve_chown(spec: &str, dest_view: &dyn Tree) -> Result<(u32, u32)> {
    let (user, group) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    if user.is_empty() || group == Some("") {
        return Err(CopyError::BadChown(spec.to_owned()));
    }
    let numeric = |s: &str| -> Option<u32> {
        if s == "root" {
            Some(0)
        } else {
            s.parse::<u32>().ok()
        }
    };
    let (uid, primary) = match numeric(user) {
        Some(id) => (id, id),
        None => {
            let passwd = read_etc(dest_view, "etc/passwd")?;
            hoist_runtime::user::parse_passwd(&passwd)
                .into_iter()
                .find(|p| p.name == user)
                .map(|p| (p.uid, p.gid))
                .ok_or_else(|| CopyError::UnknownUser {
                    spec: spec.to_owned(),
                    name: user.to_owned(),
                })?
        }
    };
    let gid = match group {
        None => primary,
        Some(g) => match numeric(g) {
            Some(id) => id,
            None => {
                let groups = read_etc(dest_view, "etc/group")?;
                hoist_runtime::user::parse_group(&groups)
                    .into_iter()
                    .find(|e| e.name == g)
                    .map(|e| e.gid)
                    .ok_or_else(|| CopyError::UnknownGroup {
                        spec: spec.to_owned(),
                        name: g.to_owned(),
                    })?
            }
        },
    };
    Ok((uid, gid))
}

/// A file of the destination's `/etc`, or "" when missing.
fn read_etc(view: &dyn Tree, rel: &str) -> Result<String> {
    let lookup = |p: &Path| tree_lstat(view, p);
    let (_, node) = resolve(&lookup, Path::new(rel), true)?;
    match node {
        Some(n) if n.metadata.is_file() => {
            let bytes = fs::read(&n.host_path).map_err(io_err("read", Path::new(rel)))?;
            Ok(String::from_utf8_lossy(&bytes).into_owned())
        }
        _ => Ok(String::new()),
    }
}

fn tree_lstat(tree: &dyn Tree, p: &Path) -> Result<Option<Node>> {
    match tree.lstat(p) {
        Ok(n) => Ok(n),
        Err(e) if e.raw_os_error() == Some(libc_enotdir()) => Ok(None),
        Err(source) => Err(CopyError::Io {
            what: "stat",
            path: p.to_owned(),
            source,
        }),
    }
}

fn libc_enotdir() -> i32 {
    rustix::io::Errno::NOTDIR.raw_os_error()
}

// ---------------------------------------------------------------------------
// Paths

/// Cleans `p` against the root: `.` and empty parts dropped, `..` clamped at the
/// root, the result relative (`""` is the root).
fn clean_rel(p: &str) -> PathBuf {
    let mut out = PathBuf::new();
    for c in Path::new(p).components() {
        match c {
            Component::Normal(x) => out.push(x),
            Component::ParentDir => {
                out.pop();
            }
            _ => {}
        }
    }
    out
}

fn rel_str(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

/// Resolves `path` following symlinks, never leaving the root (hoist-snapshot's
/// resolver over a builder view's `lookup`). Returns the resolved relative path
/// (continued lexically past the first missing component) and the node there,
/// `None` if missing. With `follow_last` false a final symlink is returned as is.
fn resolve(
    lookup: &dyn Fn(&Path) -> Result<Option<Node>>,
    path: &Path,
    follow_last: bool,
) -> Result<(PathBuf, Option<Node>)> {
    match hoist_snapshot::resolve_with(lookup, path, follow_last) {
        Ok(r) => Ok((r.path, r.node)),
        Err(ResolveError::Lookup(e)) => Err(e),
        Err(ResolveError::ReadLink { path, source }) => Err(io_err("readlink", &path)(source)),
        Err(ResolveError::Loop) => Err(CopyError::SymlinkLoop {
            path: path.to_owned(),
        }),
    }
}

/// Go's `filepath.Match` on Unix (`*` and `?` never match `/`; `\` escapes).
/// A malformed pattern matches nothing (BuildKit ignores the error).
fn go_match(pattern: &[u8], name: &[u8]) -> bool {
    fn class(p: &[u8], c: u8) -> Option<(bool, usize)> {
        // p starts after '['; returns (matched, bytes consumed incl. ']')
        let mut i = 0;
        let negate = p.first() == Some(&b'^');
        if negate {
            i += 1;
        }
        let mut matched = false;
        let mut first = true;
        loop {
            let &b = p.get(i)?;
            if b == b']' && !first {
                i += 1;
                break;
            }
            first = false;
            let (lo, n) = esc(&p[i..])?;
            i += n;
            let mut hi = lo;
            if p.get(i) == Some(&b'-') {
                let (h, n2) = esc(&p[i + 1..])?;
                hi = h;
                i += 1 + n2;
            }
            if lo <= c && c <= hi {
                matched = true;
            }
        }
        Some((matched != negate, i))
    }
    fn esc(p: &[u8]) -> Option<(u8, usize)> {
        match p {
            [b'\\', c, ..] => Some((*c, 2)),
            [b'-' | b']', ..] | [] => None,
            [c, ..] => Some((*c, 1)),
        }
    }
    fn rec(p: &[u8], n: &[u8]) -> bool {
        match p.first() {
            None => n.is_empty(),
            Some(b'*') => {
                let rest = &p[1..];
                for i in 0..=n.len() {
                    if rec(rest, &n[i..]) {
                        return true;
                    }
                    if i < n.len() && n[i] == b'/' {
                        return false;
                    }
                }
                false
            }
            Some(b'?') => match n.first() {
                Some(&c) if c != b'/' => rec(&p[1..], &n[1..]),
                _ => false,
            },
            Some(b'[') => match n.first() {
                Some(&c) if c != b'/' => match class(&p[1..], c) {
                    Some((true, used)) => rec(&p[1 + used..], &n[1..]),
                    _ => false,
                },
                _ => false,
            },
            Some(b'\\') => match (p.get(1), n.first()) {
                (Some(a), Some(b)) if a == b => rec(&p[2..], &n[1..]),
                _ => false,
            },
            Some(&c) => n.first() == Some(&c) && rec(&p[1..], &n[1..]),
        }
    }
    rec(pattern, name)
}

fn contains_wildcards(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'\\' => i += 1,
            b'*' | b'?' | b'[' => return true,
            _ => {}
        }
        i += 1;
    }
    false
}

fn is_url(s: &str) -> bool {
    s.starts_with("http://") || s.starts_with("https://")
}

/// The file name `ADD <url>` uses: the last element of the URL path.
fn url_file_name(url: &str) -> String {
    let after_scheme = url.split_once("://").map(|(_, r)| r).unwrap_or(url);
    let path = after_scheme
        .split(['?', '#'])
        .next()
        .unwrap_or("")
        .split_once('/')
        .map(|(_, p)| p)
        .unwrap_or("");
    let base = path.trim_end_matches('/').rsplit('/').next().unwrap_or("");
    if base.is_empty() || base == "." || base == ".." {
        "__unnamed__".to_owned()
    } else {
        base.to_owned()
    }
}

// ---------------------------------------------------------------------------
// Sources

struct Source<'a> {
    tree: &'a dyn Tree,
    ignore: Option<&'a DockerIgnore>,
    keep_owner: bool,
    where_: &'static str,
}

impl<'a> Source<'a> {
    fn new(from: &CopyFrom<'a>) -> Source<'a> {
        match *from {
            CopyFrom::Context(ctx) => Source {
                tree: ctx.tree(),
                ignore: ctx.ignore(),
                keep_owner: false,
                where_: "in the build context",
            },
            CopyFrom::Tree(tree) => Source {
                tree,
                ignore: None,
                keep_owner: true,
                where_: "in the source tree",
            },
        }
    }

    fn ignored(&self, rel: &Path) -> bool {
        match self.ignore {
            Some(ig) => !rel.as_os_str().is_empty() && ig.is_excluded(&rel_str(rel)),
            None => false,
        }
    }

    /// Whether `rel` exists in the context as BuildKit would send it: not
    /// ignored, or a directory holding something re-included.
    fn visible(&self, rel: &Path, node: &Node) -> Result<bool> {
        let Some(ig) = self.ignore else {
            return Ok(true);
        };
        if !self.ignored(rel) {
            return Ok(true);
        }
        if !node.metadata.is_dir() || !ig.may_include_under(&rel_str(rel)) {
            return Ok(false);
        }
        for name in self.read_dir(rel)? {
            let child = rel.join(&name);
            if let Some(n) = tree_lstat(self.tree, &child)? {
                if self.visible(&child, &n)? {
                    return Ok(true);
                }
            }
        }
        Ok(false)
    }

    fn lookup(&self, rel: &Path) -> Result<Option<Node>> {
        match tree_lstat(self.tree, rel)? {
            Some(n) if self.visible(rel, &n)? => Ok(Some(n)),
            _ => Ok(None),
        }
    }

    fn read_dir(&self, rel: &Path) -> Result<Vec<OsString>> {
        self.tree
            .read_dir(rel)
            .map_err(io_err("read directory", rel))
    }

    fn resolve(&self, rel: &Path, follow_last: bool) -> Result<(PathBuf, Option<Node>)> {
        resolve(&|p| self.lookup(p), rel, follow_last)
    }

    /// The paths a source pattern names, unresolved (relative to the root).
    fn matches(&self, pattern: &str) -> Result<Vec<PathBuf>> {
        let cleaned = clean_rel(pattern);
        let text = rel_str(&cleaned);
        if !contains_wildcards(&text) {
            let (_, node) = self.resolve(&cleaned, true)?;
            if node.is_none() {
                return Err(CopyError::NotFound {
                    pattern: pattern.to_owned(),
                    where_: self.where_,
                    ignored: self.ignored(&cleaned),
                });
            }
            return Ok(vec![cleaned]);
        }
        let mut base = PathBuf::new();
        let mut rest = Vec::new();
        for comp in text.split('/') {
            if rest.is_empty() && !contains_wildcards(comp) {
                base.push(comp);
            } else {
                rest.push(comp);
            }
        }
        let rest = rest.join("/");
        let (base, node) = self.resolve(&base, true)?;
        let mut out = Vec::new();
        if node.is_some_and(|n| n.metadata.is_dir()) {
            let depth = rest.bytes().filter(|&b| b == b'/').count() + 1;
            self.walk_matches(&base, Path::new(""), rest.as_bytes(), depth, &mut out)?;
        }
        Ok(out)
    }

    fn walk_matches(
        &self,
        base: &Path,
        rel: &Path,
        pattern: &[u8],
        depth_left: usize,
        out: &mut Vec<PathBuf>,
    ) -> Result<()> {
        for name in self.read_dir(&base.join(rel))? {
            let r = rel.join(&name);
            let full = base.join(&r);
            let Some(node) = self.lookup(&full)? else {
                continue;
            };
            if go_match(pattern, r.as_os_str().as_encoded_bytes()) {
                out.push(full);
                continue;
            }
            if node.metadata.is_dir() && depth_left > 1 {
                self.walk_matches(base, &r, pattern, depth_left - 1, out)?;
            }
        }
        Ok(())
    }
}

/// What a walk of one copied source reports.
trait Visitor {
    /// An included directory (`comp` relative to the copied source; `""` is the
    /// source itself).
    fn dir(&mut self, comp: &Path, node: &Node) -> Result<()>;
    /// An included non-directory.
    fn leaf(&mut self, comp: &Path, node: &Node) -> Result<()>;
}

/// Walks the resolved source `src` (a directory or not), applying
/// `.dockerignore` (to context paths) and `--exclude` (to `comp`). Directories
/// that are left out but hold included entries are reported when the first such
/// entry is found, as fsutil creates them lazily.
fn walk(
    source: &Source<'_>,
    exclude: Option<&Matcher>,
    src: &Path,
    node: Node,
    visitor: &mut dyn Visitor,
) -> Result<()> {
    struct W<'s, 'a> {
        source: &'s Source<'a>,
        exclude: Option<&'s Matcher>,
        pending: Vec<(PathBuf, Node)>,
    }
    impl W<'_, '_> {
        fn flush(&mut self, v: &mut dyn Visitor) -> Result<()> {
            for (comp, node) in self.pending.drain(..) {
                v.dir(&comp, &node)?;
            }
            Ok(())
        }
        fn go(&mut self, src: &Path, comp: &Path, node: Node, v: &mut dyn Visitor) -> Result<()> {
            let comp_s = rel_str(comp);
            let excluded = !comp_s.is_empty() && self.exclude.is_some_and(|m| m.matches(&comp_s));
            let ignored = !comp_s.is_empty() && self.source.ignored(src);
            let include = !excluded && !ignored;
            let is_dir = node.metadata.is_dir();
            if !is_dir {
                if include {
                    self.flush(v)?;
                    v.leaf(comp, &node)?;
                }
                return Ok(());
            }
            if !include {
                let may_exclude =
                    !excluded || self.exclude.is_some_and(|m| m.may_include_under(&comp_s));
                let may_ignore = !ignored
                    || self
                        .source
                        .ignore
                        .is_some_and(|ig| ig.may_include_under(&rel_str(src)));
                if !(may_exclude && may_ignore) {
                    return Ok(());
                }
            }
            let depth = self.pending.len();
            if include {
                self.flush(v)?;
                v.dir(comp, &node)?;
            } else {
                self.pending.push((comp.to_owned(), node));
            }
            for name in self.source.read_dir(src)? {
                let child = src.join(&name);
                if let Some(n) = tree_lstat(self.source.tree, &child)? {
                    self.go(&child, &comp.join(&name), n, v)?;
                }
            }
            self.pending.truncate(depth);
            Ok(())
        }
    }
    let mut w = W {
        source,
        exclude,
        pending: Vec::new(),
    };
    w.go(src, Path::new(""), node, visitor)
}

fn exclude_matcher(op: &CopyOp<'_>) -> Result<Option<Matcher>> {
    if op.exclude.is_empty() {
        return Ok(None);
    }
    Matcher::new(op.exclude)
        .map(Some)
        .map_err(CopyError::Exclude)
}

// ---------------------------------------------------------------------------
// Source digest

/// Digest of everything the instruction reads, for the step cache key: per
/// source in order its pattern, then per match its path and, for every entry
/// copied (after `.dockerignore` and `--exclude`), relative path, type, mode
/// bits, owner (`--from` trees only), link target or device number, and content
/// SHA-256. Not mtimes. A URL contributes its `--checksum` if given, else its
/// body (downloaded into `download_dir`, where [`execute`] finds it) and
/// `Last-Modified`. Parameters of the instruction itself (destination, flags)
/// are not included: the caller keys on them.
pub fn source_digest(op: &CopyOp<'_>, download_dir: &Path) -> Result<Digest> {
    if op.sources.is_empty() {
        return Err(CopyError::NoSources);
    }
    let source = Source::new(&op.from);
    let exclude = exclude_matcher(op)?;
    let mut d = Digester::new(Algorithm::Sha256);
    let put = |d: &mut Digester, parts: &[&[u8]]| {
        for p in parts {
            d.update(&(p.len() as u64).to_le_bytes());
            d.update(p);
        }
    };
    put(
        &mut d,
        &[
            b"hoist-copy-v1",
            if source.keep_owner {
                b"tree"
            } else {
                b"context"
            },
        ],
    );
    for src in op.sources {
        if is_url(src) {
            if op.add.is_none() {
                return Err(CopyError::UrlInCopy { url: src.clone() });
            }
            put(&mut d, &[b"url", src.as_bytes()]);
            match op.add.as_ref().and_then(|a| a.checksum.as_ref()) {
                Some(sum) => put(&mut d, &[b"checksum", sum.to_string().as_bytes()]),
                None => {
                    let dl = download(src, download_dir)?;
                    let body = hash_file(&dl.path, Algorithm::Sha256)?;
                    let lm = dl.last_modified.unwrap_or_default();
                    put(
                        &mut d,
                        &[b"body", body.to_string().as_bytes(), lm.as_bytes()],
                    );
                }
            }
            continue;
        }
        put(&mut d, &[b"src", src.as_bytes()]);
        for m in source.matches(src)? {
            let (resolved, node) = source.resolve(&m, true)?;
            let Some(node) = node else { continue };
            put(&mut d, &[b"match", m.as_os_str().as_encoded_bytes()]);
            let mut v = DigestVisitor {
                d: &mut d,
                keep_owner: source.keep_owner,
            };
            walk(&source, exclude.as_ref(), &resolved, node, &mut v)?;
        }
    }
    Ok(d.finish())
}

struct DigestVisitor<'d> {
    d: &'d mut Digester,
    keep_owner: bool,
}

impl DigestVisitor<'_> {
    fn header(&mut self, comp: &Path, kind: &[u8], node: &Node) {
        let m = &node.metadata;
        let mut parts: Vec<Vec<u8>> = vec![
            comp.as_os_str().as_encoded_bytes().to_vec(),
            kind.to_vec(),
            (m.mode() & 0o7777).to_le_bytes().to_vec(),
        ];
        if self.keep_owner {
            parts.push(m.uid().to_le_bytes().to_vec());
            parts.push(m.gid().to_le_bytes().to_vec());
        }
        for p in parts {
            self.d.update(&(p.len() as u64).to_le_bytes());
            self.d.update(&p);
        }
    }
    fn put(&mut self, b: &[u8]) {
        self.d.update(&(b.len() as u64).to_le_bytes());
        self.d.update(b);
    }
}

impl Visitor for DigestVisitor<'_> {
    fn dir(&mut self, comp: &Path, node: &Node) -> Result<()> {
        self.header(comp, b"d", node);
        Ok(())
    }
    fn leaf(&mut self, comp: &Path, node: &Node) -> Result<()> {
        let ft = node.metadata.file_type();
        use std::os::unix::fs::FileTypeExt;
        if ft.is_file() {
            self.header(comp, b"f", node);
            let sum = hash_file(&node.host_path, Algorithm::Sha256)?;
            self.put(sum.hex().as_bytes());
        } else if ft.is_symlink() {
            self.header(comp, b"l", node);
            let t = fs::read_link(&node.host_path).map_err(io_err("readlink", comp))?;
            self.put(t.as_os_str().as_encoded_bytes());
        } else {
            let kind: &[u8] = if ft.is_char_device() {
                b"c"
            } else if ft.is_block_device() {
                b"b"
            } else if ft.is_fifo() {
                b"p"
            } else {
                b"s"
            };
            self.header(comp, kind, node);
            self.put(&node.metadata.rdev().to_le_bytes());
        }
        Ok(())
    }
}

fn hash_file(path: &Path, alg: Algorithm) -> Result<Digest> {
    let mut f = File::open(path).map_err(io_err("open", path))?;
    let mut d = Digester::new(alg);
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = f.read(&mut buf).map_err(io_err("read", path))?;
        if n == 0 {
            break;
        }
        d.update(&buf[..n]);
    }
    Ok(d.finish())
}

// ---------------------------------------------------------------------------
// Downloads

struct Download {
    path: PathBuf,
    last_modified: Option<String>,
}

/// Fetches `url` into `dir` (once: a later call finds the file).
fn download(url: &str, dir: &Path) -> Result<Download> {
    let key = Digest::sha256_of(url.as_bytes());
    let path = dir.join(format!("url-{}", key.hex()));
    let meta_path = dir.join(format!("url-{}.meta", key.hex()));
    if path.is_file() {
        if let Ok(meta) = fs::read_to_string(&meta_path) {
            let lm = meta.trim();
            return Ok(Download {
                path,
                last_modified: (!lm.is_empty()).then(|| lm.to_owned()),
            });
        }
    }
    fs::create_dir_all(dir).map_err(io_err("create directory", dir))?;
    let http_err = |e: ureq::Error| CopyError::Http {
        url: url.to_owned(),
        message: e.to_string(),
    };
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_connect(Some(Duration::from_secs(30)))
        .build()
        .into();
    let resp = agent.get(url).call().map_err(http_err)?;
    let status = resp.status().as_u16();
    if !(200..400).contains(&status) {
        return Err(CopyError::HttpStatus {
            url: url.to_owned(),
            status,
        });
    }
    let last_modified = resp
        .headers()
        .get("last-modified")
        .and_then(|v| v.to_str().ok())
        .map(|s| s.trim().to_owned());
    let tmp = dir.join(format!("url-{}.part", key.hex()));
    {
        let mut out = File::create(&tmp).map_err(io_err("create", &tmp))?;
        let mut body = resp.into_body().into_reader();
        io::copy(&mut body, &mut out).map_err(|e| CopyError::Http {
            url: url.to_owned(),
            message: format!("reading body: {e}"),
        })?;
        out.flush().map_err(io_err("write", &tmp))?;
    }
    fs::write(&meta_path, last_modified.as_deref().unwrap_or(""))
        .map_err(io_err("write", &meta_path))?;
    fs::rename(&tmp, &path).map_err(io_err("rename", &tmp))?;
    Ok(Download {
        path,
        last_modified,
    })
}

// ---------------------------------------------------------------------------
// Execution

/// Metadata applied to a staged object.
#[derive(Debug, Clone, Copy)]
struct Meta {
    mode: u32,
    uid: u32,
    gid: u32,
    atime: Timespec,
    mtime: Timespec,
}

impl Meta {
    fn of(node: &Node) -> Meta {
        let m = &node.metadata;
        Meta {
            mode: m.mode() & 0o7777,
            uid: m.uid(),
            gid: m.gid(),
            atime: Timespec {
                tv_sec: m.atime(),
                tv_nsec: m.atime_nsec() as _,
            },
            mtime: Timespec {
                tv_sec: m.mtime(),
                tv_nsec: m.mtime_nsec() as _,
            },
        }
    }
}

fn now() -> Timespec {
    let d = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    Timespec {
        tv_sec: d.as_secs() as i64,
        tv_nsec: d.subsec_nanos() as _,
    }
}

struct Stager<'a> {
    staging: &'a Path,
    upper: PlainDir,
    view: Option<&'a dyn Tree>,
    chown: Option<(u32, u32)>,
    chmod: Option<u32>,
    /// Directories to finish (metadata set deepest first at the end).
    dirs: BTreeMap<PathBuf, Meta>,
    /// (dev, ino) of multiply-linked source files → first staged path.
    links: HashMap<(u64, u64), PathBuf>,
    stats: CopyStats,
}

impl<'a> Stager<'a> {
    fn host(&self, rel: &Path) -> PathBuf {
        self.staging.join(rel)
    }

    /// Staging over the stage's tree.
    fn lookup(&self, rel: &Path) -> Result<Option<Node>> {
        if let Some(n) = tree_lstat(&self.upper, rel)? {
            return Ok(Some(n));
        }
        match self.view {
            Some(v) => tree_lstat(v, rel),
            None => Ok(None),
        }
    }

    fn resolve(&self, rel: &Path) -> Result<(PathBuf, Option<Node>)> {
        resolve(&|p| self.lookup(p), rel, true)
    }

    fn staged(&self, rel: &Path) -> Result<Option<fs::Metadata>> {
        match fs::symlink_metadata(self.host(rel)) {
            Ok(m) => Ok(Some(m)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_err("stat", rel)(e)),
        }
    }

    fn view_lstat(&self, rel: &Path) -> Result<Option<Node>> {
        match self.view {
            Some(v) => tree_lstat(v, rel),
            None => Ok(None),
        }
    }

    /// Makes `rel` (already resolved) and its parents directories in staging,
    /// with the metadata they have in the stage's tree, or 0755 and `--chown`'s
    /// owner where new.
    fn ensure_dir(&mut self, rel: &Path) -> Result<()> {
        let mut cur = PathBuf::new();
        for comp in rel.components() {
            cur.push(comp);
            if let Some(m) = self.staged(&cur)? {
                if m.is_dir() {
                    continue;
                }
                return Err(CopyError::NotADirectory { path: cur });
            }
            let meta = match self.view_lstat(&cur)? {
                Some(n) if n.metadata.is_dir() => Meta::of(&n),
                Some(_) => return Err(CopyError::NotADirectory { path: cur }),
                None => {
                    let (uid, gid) = self.chown.unwrap_or((0, 0));
                    let t = now();
                    Meta {
                        mode: 0o755,
                        uid,
                        gid,
                        atime: t,
                        mtime: t,
                    }
                }
            };
            let host = self.host(&cur);
            fs::create_dir(&host).map_err(io_err("create directory", &cur))?;
            self.dirs.insert(cur.clone(), meta);
        }
        Ok(())
    }

    fn owner(&self, node: &Node, keep_owner: bool) -> (u32, u32) {
        match self.chown {
            Some(o) => o,
            None if keep_owner => (node.metadata.uid(), node.metadata.gid()),
            None => (0, 0),
        }
    }

    fn mode(&self, node: &Node) -> u32 {
        match self.chmod {
            Some(m) => m,
            None => node.metadata.mode() & 0o7777,
        }
    }

    /// Makes room for a non-directory at `target`.
    fn clear_for_file(&mut self, target: &Path) -> Result<()> {
        if let Some(m) = self.staged(target)? {
            if m.is_dir() {
                return Err(CopyError::DirectoryInTheWay {
                    path: target.to_owned(),
                });
            }
            fs::remove_file(self.host(target)).map_err(io_err("remove", target))?;
        } else if let Some(n) = self.view_lstat(target)? {
            if n.metadata.is_dir() {
                return Err(CopyError::DirectoryInTheWay {
                    path: target.to_owned(),
                });
            }
        }
        Ok(())
    }

    /// Writes the non-directory `node` at `target` with `meta`.
    fn put_leaf(&mut self, target: &Path, node: &Node, meta: Meta) -> Result<()> {
        use std::os::unix::fs::FileTypeExt;
        self.clear_for_file(target)?;
        let host = self.host(target);
        let ft = node.metadata.file_type();
        self.stats.files += 1;
        if ft.is_file() {
            let key = (node.metadata.dev(), node.metadata.ino());
            if node.metadata.nlink() > 1 {
                if let Some(first) = self.links.get(&key) {
                    if fs::symlink_metadata(self.host(first)).is_ok() {
                        fs::hard_link(self.host(first), &host)
                            .map_err(io_err("hard link", target))?;
                        return Ok(());
                    }
                }
                self.links.insert(key, target.to_owned());
            }
            let n = fs::copy(&node.host_path, &host).map_err(io_err("copy", target))?;
            self.stats.bytes += n;
        } else if ft.is_symlink() {
            let t = fs::read_link(&node.host_path).map_err(io_err("readlink", target))?;
            std::os::unix::fs::symlink(&t, &host).map_err(io_err("symlink", target))?;
        } else {
            let ftype = if ft.is_char_device() {
                FileType::CharacterDevice
            } else if ft.is_block_device() {
                FileType::BlockDevice
            } else if ft.is_fifo() {
                FileType::Fifo
            } else {
                FileType::Socket
            };
            rustix::fs::mknodat(
                CWD,
                &host,
                ftype,
                Mode::from_raw_mode(0o600),
                node.metadata.rdev(),
            )
            .map_err(|e| io_err("create special file", target)(e.into()))?;
        }
        set_meta(&host, target, &meta, !ft.is_symlink())
    }

    fn finish(self) -> Result<CopyStats> {
        for (rel, meta) in self.dirs.iter().rev() {
            set_meta(&self.staging.join(rel), rel, meta, true)?;
        }
        Ok(self.stats)
    }
}

fn set_meta(host: &Path, rel: &Path, meta: &Meta, chmod: bool) -> Result<()> {
    std::os::unix::fs::lchown(host, Some(meta.uid), Some(meta.gid))
        .map_err(io_err("chown", rel))?;
    if chmod {
        fs::set_permissions(host, fs::Permissions::from_mode(meta.mode))
            .map_err(io_err("chmod", rel))?;
    }
    rustix::fs::utimensat(
        CWD,
        host,
        &Timestamps {
            last_access: meta.atime,
            last_modification: meta.mtime,
        },
        AtFlags::SYMLINK_NOFOLLOW,
    )
    .map_err(|e| io_err("set times", rel)(e.into()))
}

struct CopyVisitor<'s, 'a> {
    stager: &'s mut Stager<'a>,
    target: PathBuf,
    keep_owner: bool,
}

impl CopyVisitor<'_, '_> {
    fn target(&self, comp: &Path) -> PathBuf {
        if comp.as_os_str().is_empty() {
            self.target.clone()
        } else {
            self.target.join(comp)
        }
    }
}

impl Visitor for CopyVisitor<'_, '_> {
    fn dir(&mut self, comp: &Path, node: &Node) -> Result<()> {
        let target = self.target(comp);
        if comp.as_os_str().is_empty() {
            // The destination directory: ensured already; gets the source's mtime.
            if let Some(m) = self.stager.dirs.get_mut(&target) {
                let src = Meta::of(node);
                m.atime = src.atime;
                m.mtime = src.mtime;
            }
            return Ok(());
        }
        match self.stager.staged(&target)? {
            Some(m) if m.is_dir() => {}
            Some(_) => return Err(CopyError::NotADirectory { path: target }),
            None => {
                if let Some(n) = self.stager.view_lstat(&target)? {
                    if !n.metadata.is_dir() {
                        return Err(CopyError::NotADirectory { path: target });
                    }
                }
                let host = self.stager.host(&target);
                fs::create_dir(&host).map_err(io_err("create directory", &target))?;
            }
        }
        let (uid, gid) = self.stager.owner(node, self.keep_owner);
        let mut meta = Meta::of(node);
        meta.uid = uid;
        meta.gid = gid;
        meta.mode = self.stager.mode(node);
        self.stager.dirs.insert(target, meta);
        Ok(())
    }

    fn leaf(&mut self, comp: &Path, node: &Node) -> Result<()> {
        let target = self.target(comp);
        let (uid, gid) = self.stager.owner(node, self.keep_owner);
        let mut meta = Meta::of(node);
        meta.uid = uid;
        meta.gid = gid;
        meta.mode = self.stager.mode(node);
        self.stager.put_leaf(&target, node, meta)
    }
}

/// `WORKDIR`'s `mkdir -p`: make `dir` (absolute) and its missing parents in
/// `staging`. Symlinks on the way are followed in `dest_view`; directories it
/// already has keep their metadata, new ones are 0755 and owned by `owner`.
pub fn make_dir(
    dir: &str,
    owner: (u32, u32),
    dest_view: &dyn Tree,
    staging: &Path,
) -> Result<CopyStats> {
    let mut st = Stager {
        staging,
        upper: PlainDir::new(staging.to_owned()),
        view: Some(dest_view),
        chown: Some(owner),
        chmod: None,
        dirs: BTreeMap::new(),
        links: HashMap::new(),
        stats: CopyStats::default(),
    };
    let (resolved, _) = st.resolve(&clean_rel(dir))?;
    st.ensure_dir(&resolved)?;
    st.finish()
}

/// Performs the copy into `staging` (an empty directory that becomes the layer),
/// creating parent directories as described in the module docs.
pub fn execute(op: &CopyOp<'_>, staging: &Path, download_dir: &Path) -> Result<CopyStats> {
    if op.sources.is_empty() {
        return Err(CopyError::NoSources);
    }
    let source = Source::new(&op.from);
    let exclude = exclude_matcher(op)?;
    let dest_abs = if op.dest.starts_with('/') {
        op.dest.to_owned()
    } else {
        format!("{}/{}", op.workdir, op.dest)
    };
    let dest_is_dir =
        op.dest.is_empty() || op.dest == "." || op.dest.ends_with('/') || op.dest.ends_with("/.");
    let dest_rel = clean_rel(&dest_abs);
    let mut st = Stager {
        staging,
        upper: PlainDir::new(staging.to_owned()),
        view: (!op.link).then_some(op.dest_view),
        chown: op.chown,
        chmod: op.chmod,
        dirs: BTreeMap::new(),
        links: HashMap::new(),
        stats: CopyStats::default(),
    };
    for src in op.sources {
        if is_url(src) {
            let Some(add) = &op.add else {
                return Err(CopyError::UrlInCopy { url: src.clone() });
            };
            add_url(op, &mut st, src, add, &dest_rel, dest_is_dir, download_dir)?;
            continue;
        }
        for m in source.matches(src)? {
            let (resolved, node) = source.resolve(&m, true)?;
            let Some(node) = node else { continue };
            if let Some(add) = &op.add {
                if add.unpack && node.metadata.is_file() {
                    if let Some(kind) = archive_kind(&node.host_path)? {
                        let (dest, dnode) = st.resolve(&dest_rel)?;
                        if dnode.is_some_and(|n| !n.metadata.is_dir()) {
                            return Err(CopyError::NotADirectory { path: dest });
                        }
                        st.ensure_dir(&dest)?;
                        extract(&mut st, &node.host_path, &m, kind, &dest, download_dir)?;
                        continue;
                    }
                }
            }
            copy_one(
                &mut st,
                &source,
                exclude.as_ref(),
                &m,
                &resolved,
                node,
                &dest_rel,
                dest_is_dir,
            )?;
        }
    }
    st.finish()
}

#[allow(clippy::too_many_arguments)]
fn copy_one(
    st: &mut Stager<'_>,
    source: &Source<'_>,
    exclude: Option<&Matcher>,
    matched: &Path,
    resolved: &Path,
    node: Node,
    dest_rel: &Path,
    dest_is_dir: bool,
) -> Result<()> {
    if dest_is_dir {
        let (d, n) = st.resolve(dest_rel)?;
        if n.is_some_and(|n| !n.metadata.is_dir()) {
            return Err(CopyError::NotADirectory { path: d });
        }
        st.ensure_dir(&d)?;
    } else if let Some(parent) = dest_rel.parent() {
        let (d, n) = st.resolve(parent)?;
        if n.is_some_and(|n| !n.metadata.is_dir()) {
            return Err(CopyError::NotADirectory { path: d });
        }
        st.ensure_dir(&d)?;
    }
    let (dest, dnode) = st.resolve(dest_rel)?;
    let dest_dir_exists = dnode.as_ref().is_some_and(|n| n.metadata.is_dir());
    let keep_owner = source.keep_owner;
    if node.metadata.is_dir() {
        if dnode.is_some() && !dest_dir_exists {
            return Err(CopyError::NotADirectory { path: dest });
        }
        st.ensure_dir(&dest)?;
        let mut v = CopyVisitor {
            stager: st,
            target: dest,
            keep_owner,
        };
        walk(source, exclude, resolved, node, &mut v)
    } else {
        let target = if dest_dir_exists {
            dest.join(matched.file_name().unwrap_or_default())
        } else {
            dest
        };
        if let Some(parent) = target.parent() {
            st.ensure_dir(parent)?;
        }
        let mut v = CopyVisitor {
            stager: st,
            target,
            keep_owner,
        };
        walk(source, exclude, resolved, node, &mut v)
    }
}

fn add_url(
    op: &CopyOp<'_>,
    st: &mut Stager<'_>,
    url: &str,
    add: &AddOptions,
    dest_rel: &Path,
    dest_is_dir: bool,
    download_dir: &Path,
) -> Result<()> {
    let dl = download(url, download_dir)?;
    if let Some(expected) = &add.checksum {
        let actual = hash_file(&dl.path, expected.algorithm())?;
        if &actual != expected {
            let _ = fs::remove_file(&dl.path);
            return Err(CopyError::ChecksumMismatch {
                url: url.to_owned(),
                expected: expected.clone(),
                actual,
            });
        }
    }
    let name = url_file_name(url);
    if dest_is_dir {
        let (d, _) = st.resolve(dest_rel)?;
        st.ensure_dir(&d)?;
    } else if let Some(parent) = dest_rel.parent() {
        let (d, _) = st.resolve(parent)?;
        st.ensure_dir(&d)?;
    }
    let (dest, dnode) = st.resolve(dest_rel)?;
    let target = if dnode.is_some_and(|n| n.metadata.is_dir()) {
        dest.join(&name)
    } else {
        dest
    };
    if let Some(parent) = target.parent() {
        st.ensure_dir(parent)?;
    }
    let mtime = dl
        .last_modified
        .as_deref()
        .and_then(|s| httpdate::parse_http_date(s).ok())
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map(|d| d.as_secs() as i64)
        .unwrap_or_else(|| op.source_date_epoch.unwrap_or(0));
    let node = Node {
        metadata: fs::metadata(&dl.path).map_err(io_err("stat", &dl.path))?,
        host_path: dl.path.clone(),
    };
    let (uid, gid) = op.chown.unwrap_or((0, 0));
    let t = Timespec {
        tv_sec: mtime,
        tv_nsec: 0,
    };
    let meta = Meta {
        mode: op.chmod.unwrap_or(0o600),
        uid,
        gid,
        atime: t,
        mtime: t,
    };
    // A downloaded file is never linked to another.
    st.links.clear();
    st.put_leaf(&target, &node, meta)
}

/// Compression of a local archive candidate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ArchiveKind {
    /// Plain, gzip or zstd: `apply_layer` reads these itself.
    Native,
    Bzip2,
    Xz,
}

const XZ_MAGIC: &[u8] = &[0xfd, b'7', b'z', b'X', b'Z', 0];

/// Whether the file is a tar archive (possibly compressed), like BuildKit's
/// `isArchivePath`: the first tar header must parse after decompression.
fn archive_kind(path: &Path) -> Result<Option<ArchiveKind>> {
    let mut f = File::open(path).map_err(io_err("open", path))?;
    let mut magic = [0u8; 6];
    let mut got = 0;
    while got < magic.len() {
        match f.read(&mut magic[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(io_err("read", path)(e)),
        }
    }
    let magic = &magic[..got];
    let f = File::open(path).map_err(io_err("open", path))?;
    let (kind, reader): (ArchiveKind, Box<dyn Read>) = if magic.starts_with(b"BZh") {
        (
            ArchiveKind::Bzip2,
            Box::new(bzip2::read::MultiBzDecoder::new(BufReader::new(f))),
        )
    } else if magic.starts_with(XZ_MAGIC) {
        // lzma-rs has no streaming reader: check the first block's output.
        let mut out = Vec::new();
        let mut limited = LimitWriter {
            inner: &mut out,
            left: 1024,
        };
        let _ = lzma_rs::xz_decompress(&mut BufReader::new(f), &mut limited);
        (ArchiveKind::Xz, Box::new(io::Cursor::new(out)))
    } else {
        match Decompressor::new(f) {
            Ok(d) => (ArchiveKind::Native, Box::new(d)),
            Err(_) => return Ok(None),
        }
    };
    let mut ar = tar::Archive::new(reader);
    let first = match ar.entries() {
        Ok(mut e) => e.next(),
        Err(_) => return Ok(None),
    };
    Ok(match first {
        Some(Ok(_)) => Some(kind),
        _ => None,
    })
}

/// Keeps at most `left` bytes, then reports a write error to stop the decoder.
struct LimitWriter<'a> {
    inner: &'a mut Vec<u8>,
    left: usize,
}

impl Write for LimitWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.left == 0 {
            return Err(io::Error::other("enough"));
        }
        let n = buf.len().min(self.left);
        self.inner.extend_from_slice(&buf[..n]);
        self.left -= n;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Extracts a local archive into the staged directory `dest`.
fn extract(
    st: &mut Stager<'_>,
    archive: &Path,
    matched: &Path,
    kind: ArchiveKind,
    dest: &Path,
    download_dir: &Path,
) -> Result<()> {
    let target = st.host(dest);
    let opts = ApplyOptions {
        same_owner: true,
        xattrs: true,
        ..Default::default()
    };
    let archive_err = |source| CopyError::Archive {
        path: matched.to_owned(),
        source,
    };
    let f = File::open(archive).map_err(io_err("open", archive))?;
    let report = match kind {
        ArchiveKind::Native => apply_layer(f, &target, &opts).map_err(archive_err)?,
        ArchiveKind::Bzip2 => apply_layer(
            bzip2::read::MultiBzDecoder::new(BufReader::new(f)),
            &target,
            &opts,
        )
        .map_err(archive_err)?,
        ArchiveKind::Xz => {
            fs::create_dir_all(download_dir).map_err(io_err("create directory", download_dir))?;
            let tmp = download_dir.join(format!(
                "xz-{}.tar",
                Digest::sha256_of(archive.as_os_str().as_encoded_bytes()).hex()
            ));
            {
                let mut out = File::create(&tmp).map_err(io_err("create", &tmp))?;
                lzma_rs::xz_decompress(&mut BufReader::new(f), &mut out).map_err(|e| {
                    CopyError::Io {
                        what: "decompress xz",
                        path: matched.to_owned(),
                        source: io::Error::other(e.to_string()),
                    }
                })?;
            }
            let plain = File::open(&tmp).map_err(io_err("open", &tmp))?;
            let r = apply_layer(plain, &target, &opts).map_err(archive_err);
            let _ = fs::remove_file(&tmp);
            r?
        }
    };
    st.stats.bytes += report.uncompressed_size;
    for p in &report.applied {
        let host = target.join(p);
        let m = fs::symlink_metadata(&host).map_err(io_err("stat", &dest.join(p)))?;
        if !m.is_dir() {
            st.stats.files += 1;
        }
        if let Some((uid, gid)) = st.chown {
            std::os::unix::fs::lchown(&host, Some(uid), Some(gid))
                .map_err(io_err("chown", &dest.join(p)))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_match_follows_filepath_match() {
        assert!(go_match(b"*.go", b"foo.go"));
        assert!(!go_match(b"*.go", b"sub/foo.go"));
        assert!(go_match(b"*/dir2/foo", b"dir1/dir2/foo"));
        assert!(go_match(b"index.?s", b"index.js"));
        assert!(!go_match(b"index.?s", b"index.s"));
        assert!(go_match(b"arr[[]0].txt", b"arr[0].txt"));
        assert!(go_match(b"[a-c]x", b"bx"));
        assert!(!go_match(b"[^a-c]x", b"bx"));
        assert!(go_match(b"[^a-c]x", b"dx"));
        assert!(go_match(b"a\\*b", b"a*b"));
        assert!(!go_match(b"a\\*b", b"axb"));
        assert!(!go_match(b"[", b"["));
        assert!(go_match(b"**", b"abc"));
        assert!(!go_match(b"**", b"a/b"));
    }

    #[test]
    fn wildcards_detected_unless_escaped() {
        assert!(contains_wildcards("a/*.txt"));
        assert!(!contains_wildcards("a\\*.txt"));
        assert!(contains_wildcards("f[o]"));
        assert!(!contains_wildcards("plain/path"));
    }

    #[test]
    fn clean_rel_clamps_at_root() {
        assert_eq!(clean_rel("../x"), PathBuf::from("x"));
        assert_eq!(clean_rel("/a/../../b/./c/"), PathBuf::from("b/c"));
        assert_eq!(clean_rel("."), PathBuf::new());
    }

    #[test]
    fn url_names() {
        assert_eq!(url_file_name("https://h/a/b.tar.gz?x=1"), "b.tar.gz");
        assert_eq!(url_file_name("http://h/"), "__unnamed__");
        assert_eq!(url_file_name("http://h"), "__unnamed__");
        assert_eq!(url_file_name("http://h/dir/"), "dir");
    }

    #[test]
    fn chmod_parsing() {
        assert_eq!(parse_chmod("755").ok(), Some(0o755));
        assert_eq!(parse_chmod("04755").ok(), Some(0o4755));
        assert!(matches!(
            parse_chmod("10000"),
            Err(CopyError::InvalidChmod(_))
        ));
        assert!(matches!(
            parse_chmod("789"),
            Err(CopyError::InvalidChmod(_))
        ));
        assert!(matches!(
            parse_chmod("u+x"),
            Err(CopyError::SymbolicChmod(_))
        ));
    }
}
