//! The files an image shows, read straight from its layers without unpacking them.
//!
//! [`walk_visible`] goes through the layers **top-down** (last layer first). Each
//! layer's tar is streamed once and every regular file that is still visible (no
//! upper layer put something at its path, deleted it with a `.wh.` whiteout, hid it
//! with an opaque directory or replaced one of its parent directories with a
//! non-directory) and that the [`VisibleVisitor`] wants (by path, size and mode) is
//! handed over with its content as a reader and its layer index. Nothing is
//! buffered: the walk keeps only the set of paths upper layers cover.
//!
//! # Rules
//!
//! * An upper layer's regular file, symlink, hardlink, device or fifo at `P` hides
//!   `P` and everything below it in lower layers; an upper directory at `P` hides a
//!   lower non-directory at `P` only (directories merge).
//! * `.wh.<name>` hides `<name>` and everything below it in *lower* layers;
//!   `.wh..wh..opq` in `D` hides everything lower layers put below `D`. Whiteouts
//!   never affect entries of their own layer.
//! * Within one layer the last entry for a path wins. Because the walk streams,
//!   it cannot know that an entry will be superseded later in the same tar (which
//!   happens only with appended tars; Docker, BuildKit and hoist never write
//!   duplicates): it delivers the earlier entry, then delivers the later one too
//!   (the later [`VisibleVisitor::visit`] call replaces the earlier one), or calls
//!   [`VisibleVisitor::withdraw`] when the last entry is not a wanted regular file.
//! * Hardlinks are resolved to the content of their target **within the same
//!   layer**: the entry the target path had at the point of the link (following
//!   chains of links). Since that content has already streamed past, a layer with
//!   wanted hardlinks is read a second time, and only then; the link is delivered
//!   under its own path with the target's size and the link's mode. A hardlink
//!   whose target is not in the same layer (a file of a lower layer, which some
//!   writers produce) is not delivered and is reported as
//!   [`ProblemKind::UnresolvedHardlink`].
//!
//! # Degrading
//!
//! A layer that cannot be opened, a stream that breaks off (or whose content read
//! fails inside the visitor), and an entry refused for its header are reported in
//! [`WalkReport::problems`] and the walk goes on: the entries read before a stream
//! broke still hide what they cover in lower layers. The report says which layer
//! could not be read fully.

use std::collections::HashMap;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use crate::error::ReadError;
use crate::reader::{EntryKind, LayerReader, Whiteout};

/// One visible file handed to a [`VisibleVisitor`].
#[derive(Debug, Clone, Copy)]
pub struct VisibleFile<'a> {
    /// Index of the layer that brought it (0 is the bottom layer).
    pub layer: usize,
    /// Path relative to the image root (normalised: no leading `/`).
    pub path: &'a Path,
    /// Size of the content.
    pub size: u64,
    /// Permission bits of the entry (with setuid, setgid and sticky).
    pub mode: u32,
    /// For a hardlink: the path in the same layer its content comes from.
    pub link_target: Option<&'a Path>,
}

/// What [`walk_visible`] calls back.
pub trait VisibleVisitor {
    /// Whether the file at `path` with this size and mode should be read. Called
    /// only for visible regular files (and hardlinks resolved to one).
    fn wants(&mut self, path: &Path, size: u64, mode: u32) -> bool;

    /// A visible file and its content. It may be called again for the same layer
    /// and path (an appended tar holds the path twice): the later call counts.
    /// An error means the content could not be read; the layer's stream is then
    /// considered broken and the walk goes on with the next layer.
    fn visit(&mut self, file: &VisibleFile<'_>, content: &mut dyn Read) -> io::Result<()>;

    /// A file delivered earlier from `layer` is superseded by a later entry of the
    /// same layer that is not delivered (a directory, a symlink, a file not wanted):
    /// forget it.
    fn withdraw(&mut self, layer: usize, path: &Path) {
        let _ = (layer, path);
    }
}

/// Why part of a layer was not read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProblemKind {
    /// The layer could not be opened.
    #[error("cannot open: {0}")]
    Open(#[source] io::Error),
    /// The stream broke off or an entry was refused ([`ReadError`] says which).
    #[error(transparent)]
    Read(#[from] ReadError),
    /// A wanted hardlink whose target is not an earlier regular file of the same
    /// layer.
    #[error("hardlink {path:?} -> {target:?}: target is not a file of this layer; not read")]
    UnresolvedHardlink {
        /// The link.
        path: PathBuf,
        /// Its target.
        target: PathBuf,
    },
}

/// A problem met in one layer.
#[derive(Debug, thiserror::Error)]
#[error("layer {layer}: {kind}")]
pub struct LayerProblem {
    /// Layer index (0 is the bottom layer).
    pub layer: usize,
    /// What went wrong.
    #[source]
    pub kind: ProblemKind,
}

/// What [`walk_visible`] met besides files.
#[derive(Debug, Default)]
pub struct WalkReport {
    /// Problems, in the order met (top layer first).
    pub problems: Vec<LayerProblem>,
    /// Files delivered (hardlinks and same-layer re-deliveries included).
    pub delivered: u64,
}

/// Cover bits: what upper layers hide at a path.
const SELF: u8 = 1;
const BELOW: u8 = 2;

/// Paths covered by the layers above the one being read.
#[derive(Default)]
struct Cover {
    map: HashMap<PathBuf, u8>,
}

impl Cover {
    fn visible(&self, path: &Path) -> bool {
        if self.map.is_empty() {
            return true;
        }
        if self.map.get(path).is_some_and(|c| c & SELF != 0) {
            return false;
        }
        // Proper ancestors, down to the root ("").
        !path
            .ancestors()
            .skip(1)
            .any(|a| self.map.get(a).is_some_and(|c| c & BELOW != 0))
    }

    fn add(&mut self, path: PathBuf, bits: u8) {
        *self.map.entry(path).or_insert(0) |= bits;
    }
}

/// The last state of a path within the layer being read.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Seen {
    Dir,
    /// A non-directory, not delivered.
    Other,
    /// A regular file delivered in the first pass.
    Delivered,
    /// A hardlink to be delivered in the second pass.
    PendingLink,
}

/// Where the content of a path of the layer being read is: the index of the
/// regular-file entry and its size.
#[derive(Clone, Copy)]
struct Content {
    index: u64,
    size: u64,
}

/// A wanted hardlink, delivered in the second pass from entry `index`.
struct Pending {
    target: PathBuf,
    mode: u32,
    size: u64,
    index: u64,
}

/// Walk the visible files of `layers` layers, top-down. `open(i)` returns layer
/// `i`'s blob (plain, gzip or zstd tar; 0 is the bottom layer); it is called once
/// per layer, twice for a layer with wanted hardlinks.
pub fn walk_visible<R, O>(
    layers: usize,
    mut open: O,
    visitor: &mut dyn VisibleVisitor,
) -> WalkReport
where
    R: Read,
    O: FnMut(usize) -> io::Result<R>,
{
    let mut report = WalkReport::default();
    let mut cover = Cover::default();
    for layer in (0..layers).rev() {
        walk_layer(layer, &mut open, visitor, &mut cover, &mut report);
    }
    report
}

fn walk_layer<R, O>(
    layer: usize,
    open: &mut O,
    visitor: &mut dyn VisibleVisitor,
    cover: &mut Cover,
    report: &mut WalkReport,
) where
    R: Read,
    O: FnMut(usize) -> io::Result<R>,
{
    let problem = |report: &mut WalkReport, kind: ProblemKind| {
        report.problems.push(LayerProblem { layer, kind });
    };
    let mut seen: HashMap<PathBuf, Seen> = HashMap::new();
    let mut whiteouts: Vec<(PathBuf, u8)> = Vec::new();
    let mut contents: HashMap<PathBuf, Content> = HashMap::new();
    let mut pending: HashMap<PathBuf, Pending> = HashMap::new();

    let first = open(layer)
        .map_err(ProblemKind::Open)
        .and_then(|r| LayerReader::new(r).map_err(ProblemKind::Read));
    match first {
        Err(kind) => problem(report, kind),
        Ok(mut reader) => match reader.entries() {
            Err(e) => problem(report, e.into()),
            Ok(entries) => {
                for (index, entry) in (0u64..).zip(entries) {
                    let mut entry = match entry {
                        Ok(e) => e,
                        Err(e @ ReadError::Stream(_)) => {
                            problem(report, e.into());
                            break;
                        }
                        Err(e) => {
                            problem(report, e.into());
                            continue;
                        }
                    };
                    let info = entry.info().clone();
                    match info.whiteout {
                        Some(Whiteout::Remove(p)) => {
                            whiteouts.push((p, SELF | BELOW));
                            continue;
                        }
                        Some(Whiteout::Opaque(p)) => {
                            whiteouts.push((p, BELOW));
                            continue;
                        }
                        Some(Whiteout::Meta) => continue,
                        None => {}
                    }
                    if info.path.as_os_str().is_empty() {
                        continue; // the root directory
                    }
                    let path = info.path;
                    let before = seen.get(&path).copied();
                    pending.remove(&path);
                    let visible = cover.visible(&path);
                    let now = match info.kind {
                        EntryKind::Dir => {
                            contents.remove(&path);
                            Seen::Dir
                        }
                        EntryKind::File => {
                            contents.insert(
                                path.clone(),
                                Content {
                                    index,
                                    size: info.size,
                                },
                            );
                            if visible && visitor.wants(&path, info.size, info.mode) {
                                let file = VisibleFile {
                                    layer,
                                    path: &path,
                                    size: info.size,
                                    mode: info.mode,
                                    link_target: None,
                                };
                                let mut content = Exact {
                                    inner: &mut entry,
                                    left: info.size,
                                };
                                if let Err(e) = visitor.visit(&file, &mut content) {
                                    problem(report, ReadError::Stream(e).into());
                                    seen.insert(path, Seen::Delivered);
                                    break;
                                }
                                report.delivered += 1;
                                Seen::Delivered
                            } else {
                                Seen::Other
                            }
                        }
                        EntryKind::Hardlink => {
                            let target = info.link_target.clone().unwrap_or_default();
                            let resolved = contents.get(&target).copied();
                            match resolved {
                                Some(c) => {
                                    contents.insert(path.clone(), c);
                                }
                                None => {
                                    contents.remove(&path);
                                }
                            }
                            if visible
                                && visitor.wants(&path, resolved.map_or(0, |c| c.size), info.mode)
                            {
                                match resolved {
                                    Some(c) => {
                                        pending.insert(
                                            path.clone(),
                                            Pending {
                                                target,
                                                mode: info.mode,
                                                size: c.size,
                                                index: c.index,
                                            },
                                        );
                                        Seen::PendingLink
                                    }
                                    None => {
                                        problem(
                                            report,
                                            ProblemKind::UnresolvedHardlink {
                                                path: path.clone(),
                                                target,
                                            },
                                        );
                                        Seen::Other
                                    }
                                }
                            } else {
                                Seen::Other
                            }
                        }
                        _ => {
                            contents.remove(&path);
                            Seen::Other
                        }
                    };
                    if before == Some(Seen::Delivered) && now != Seen::Delivered {
                        visitor.withdraw(layer, &path);
                    }
                    seen.insert(path, now);
                }
            }
        },
    }

    if !pending.is_empty() {
        deliver_links(layer, open, visitor, pending, report);
    }

    for (path, s) in seen {
        cover.add(path, if s == Seen::Dir { SELF } else { SELF | BELOW });
    }
    for (path, bits) in whiteouts {
        cover.add(path, bits);
    }
}

fn deliver_links<R, O>(
    layer: usize,
    open: &mut O,
    visitor: &mut dyn VisibleVisitor,
    pending: HashMap<PathBuf, Pending>,
    report: &mut WalkReport,
) where
    R: Read,
    O: FnMut(usize) -> io::Result<R>,
{
    let mut by_index: HashMap<u64, Vec<(PathBuf, Pending)>> = HashMap::new();
    for (link, p) in pending {
        by_index.entry(p.index).or_default().push((link, p));
    }
    let mut reader = match open(layer)
        .map_err(ProblemKind::Open)
        .and_then(|r| LayerReader::new(r).map_err(ProblemKind::Read))
    {
        Ok(r) => r,
        Err(kind) => {
            report.problems.push(LayerProblem { layer, kind });
            return;
        }
    };
    let entries = match reader.entries() {
        Ok(e) => e,
        Err(e) => {
            report.problems.push(LayerProblem {
                layer,
                kind: e.into(),
            });
            return;
        }
    };
    for (index, entry) in (0u64..).zip(entries) {
        if by_index.is_empty() {
            break;
        }
        let Some(mut links) = by_index.remove(&index) else {
            if let Err(ReadError::Stream(e)) = entry {
                report.problems.push(LayerProblem {
                    layer,
                    kind: ReadError::Stream(e).into(),
                });
                return;
            }
            continue;
        };
        let mut entry = match entry {
            Ok(e) => e,
            Err(e) => {
                report.problems.push(LayerProblem {
                    layer,
                    kind: e.into(),
                });
                return;
            }
        };
        links.sort_by(|a, b| a.0.cmp(&b.0));
        // One link streams; several share one read of the content.
        let buffered = if links.len() > 1 {
            let mut buf = Vec::new();
            let mut exact = Exact {
                inner: &mut entry,
                left: links[0].1.size,
            };
            if let Err(e) = exact.read_to_end(&mut buf) {
                report.problems.push(LayerProblem {
                    layer,
                    kind: ReadError::Stream(e).into(),
                });
                return;
            }
            Some(buf)
        } else {
            None
        };
        for (link, p) in &links {
            let file = VisibleFile {
                layer,
                path: link,
                size: p.size,
                mode: p.mode,
                link_target: Some(&p.target),
            };
            let res = match &buffered {
                Some(buf) => visitor.visit(&file, &mut &buf[..]),
                None => visitor.visit(
                    &file,
                    &mut Exact {
                        inner: &mut entry,
                        left: p.size,
                    },
                ),
            };
            if let Err(e) = res {
                report.problems.push(LayerProblem {
                    layer,
                    kind: ReadError::Stream(e).into(),
                });
                return;
            }
            report.delivered += 1;
        }
    }
}

/// The content of an entry: an error instead of a silent end when the stream ends
/// before the header's size (the tar crate's entry reader just stops).
struct Exact<'r, R: Read> {
    inner: &'r mut R,
    left: u64,
}

impl<R: Read> Read for Exact<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.left == 0 || buf.is_empty() {
            return Ok(0);
        }
        let want = buf
            .len()
            .min(usize::try_from(self.left).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..want])?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!(
                    "layer stream ended {} bytes before the end of the file",
                    self.left
                ),
            ));
        }
        self.left -= n as u64;
        Ok(n)
    }
}
