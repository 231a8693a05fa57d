//! One pass over the files of an image, an archive or a directory, shared by every
//! analyser (package databases now, secret scanning later).
//!
//! A [`Visitor`] says which files it wants from their path, size and mode, and gets
//! the content of those as a reader with the [`FileRef`] saying where it is. For an
//! image the walk is [`hoist_layer::walk_visible`]: layers top-down, each streamed
//! once, only what the final file system shows. For a directory it is a walk that
//! follows no symlink.

use std::fs::File;
use std::io::{self, BufReader, Read};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use hoist_layer::{walk_visible, VisibleFile, VisibleVisitor};
use hoist_oci::transfer::{self, SourceKind};
use hoist_oci::{BlobStore, Digest, ImageManifest, ImageRecord, Store};

use crate::error::{InventoryError, Problem};

/// Where a visited file is.
#[derive(Debug, Clone, Copy)]
pub struct FileRef<'a> {
    /// Path relative to the root, without a leading `/`.
    pub path: &'a Path,
    /// Size in bytes.
    pub size: u64,
    /// Permission bits (with setuid, setgid and sticky).
    pub mode: u32,
    /// The layer's diff_id (`sha256:...`); `None` for a directory.
    pub layer: Option<&'a str>,
    /// The layer's index, 0 being the bottom layer; `None` for a directory.
    pub layer_index: Option<usize>,
}

/// What a walk calls back.
pub trait Visitor {
    /// Whether to read the regular file at `path` (relative to the root).
    fn wants(&mut self, path: &Path, size: u64, mode: u32) -> bool;

    /// A wanted file and its content. For an image, the same path may come twice
    /// from one layer when that layer's tar holds it twice: the later call counts.
    /// An error means the content could not be read (the layer is then abandoned
    /// and reported).
    fn visit(&mut self, file: &FileRef<'_>, content: &mut dyn Read) -> io::Result<()>;

    /// A file visited earlier is superseded, in the same layer, by something not
    /// visited (an appended tar replacing it with a directory or symlink): forget
    /// what it gave.
    fn withdraw(&mut self, path: &Path) {
        let _ = path;
    }
}

struct LayerAdapter<'v> {
    diff_ids: Vec<String>,
    inner: &'v mut dyn Visitor,
}

impl VisibleVisitor for LayerAdapter<'_> {
    fn wants(&mut self, path: &Path, size: u64, mode: u32) -> bool {
        self.inner.wants(path, size, mode)
    }

    fn visit(&mut self, file: &VisibleFile<'_>, content: &mut dyn Read) -> io::Result<()> {
        let f = FileRef {
            path: file.path,
            size: file.size,
            mode: file.mode,
            layer: self.diff_ids.get(file.layer).map(String::as_str),
            layer_index: Some(file.layer),
        };
        self.inner.visit(&f, content)
    }

    fn withdraw(&mut self, _layer: usize, path: &Path) {
        self.inner.withdraw(path);
    }
}

/// Walk the visible files of an image in `store` (an index resolves to this host's
/// platform, as `hoist run` does). Layers that cannot be read, fully or at all, are
/// returned as problems; the rest is walked.
pub fn walk_image(
    store: &Store,
    image: &ImageRecord,
    visitor: &mut dyn Visitor,
) -> Result<Vec<Problem>, InventoryError> {
    let manifest = transfer::platform_manifest(store, image)?;
    walk_manifest(store.blobs(), &manifest, &image.digest, visitor)
}

/// Walk the visible files of the image `manifest` (of image `image`, named in
/// errors) whose config and layers are in `blobs`: a store's or a registry's.
/// Layers that cannot be read, fully or at all, are returned as problems; the rest
/// is walked.
pub fn walk_manifest(
    blobs: &BlobStore,
    manifest: &ImageManifest,
    image: &Digest,
    visitor: &mut dyn Visitor,
) -> Result<Vec<Problem>, InventoryError> {
    let config = hoist_oci::store::read_config(blobs, &manifest.config.digest)?;
    let diff_ids = &config.rootfs.diff_ids;
    if diff_ids.len() != manifest.layers.len() {
        return Err(InventoryError::Image {
            image: image.clone(),
            reason: format!(
                "the manifest has {} layers but the config {} diff_ids",
                manifest.layers.len(),
                diff_ids.len()
            ),
        });
    }
    let mut adapter = LayerAdapter {
        diff_ids: diff_ids.iter().map(|d| d.to_string()).collect(),
        inner: visitor,
    };
    let layers = &manifest.layers;
    let report = walk_visible(
        layers.len(),
        |i| {
            let d = &layers[i];
            blobs
                .open_blob(&d.digest, Some(d.size))
                .map(|f| BufReader::with_capacity(1 << 20, f))
                .map_err(io::Error::other)
        },
        &mut adapter,
    );
    Ok(report
        .problems
        .into_iter()
        .map(|p| Problem {
            path: None,
            layer: adapter.diff_ids.get(p.layer).cloned(),
            message: p.kind.to_string(),
        })
        .collect())
}

/// Import an OCI image layout directory or a `docker save` archive into a
/// temporary store (blobs are verified as they come in) and walk its image. It must
/// hold exactly one image.
pub fn walk_archive(
    path: &Path,
    visitor: &mut dyn Visitor,
) -> Result<Vec<Problem>, InventoryError> {
    with_archive(path, |store, image| walk_image(store, image, visitor))
}

pub(crate) fn with_archive<T>(
    path: &Path,
    f: impl FnOnce(&Store, &ImageRecord) -> Result<T, InventoryError>,
) -> Result<T, InventoryError> {
    let tmp = tempfile::Builder::new()
        .prefix("hoist-inventory-")
        .tempdir()
        .map_err(|source| InventoryError::Io {
            path: std::env::temp_dir(),
            source,
        })?;
    let store = Store::open(tmp.path())?;
    let loaded = match transfer::detect(path)? {
        SourceKind::OciLayout => transfer::import_oci_layout(&store, path, None)?,
        SourceKind::DockerArchive => transfer::import_docker_archive(&store, path, None)?,
    };
    match loaded.as_slice() {
        [one] => f(&store, &one.record),
        _ => Err(InventoryError::Archive {
            path: path.to_owned(),
            reason: format!("holds {} images; inventory needs exactly one", loaded.len()),
        }),
    }
}

/// Walk the regular files under `root` (symlinks are not followed, other file
/// systems are entered). Unreadable entries are returned as problems.
pub fn walk_dir(root: &Path, visitor: &mut dyn Visitor) -> Result<Vec<Problem>, InventoryError> {
    let meta = std::fs::metadata(root).map_err(|source| InventoryError::Io {
        path: root.to_owned(),
        source,
    })?;
    if !meta.is_dir() {
        return Err(InventoryError::Io {
            path: root.to_owned(),
            source: io::Error::new(io::ErrorKind::NotADirectory, "not a directory"),
        });
    }
    let mut problems = Vec::new();
    let problem = |path: PathBuf, message: String| Problem {
        path: Some(path),
        layer: None,
        message,
    };
    for entry in walkdir::WalkDir::new(root)
        .follow_links(false)
        .sort_by_file_name()
    {
        let entry = match entry {
            Ok(e) => e,
            Err(e) => {
                let p = e
                    .path()
                    .and_then(|p| p.strip_prefix(root).ok())
                    .map(Path::to_owned);
                problems.push(problem(p.unwrap_or_default(), e.to_string()));
                continue;
            }
        };
        if !entry.file_type().is_file() {
            continue;
        }
        let Ok(rel) = entry.path().strip_prefix(root) else {
            continue;
        };
        let md = match entry.metadata() {
            Ok(m) => m,
            Err(e) => {
                problems.push(problem(rel.to_owned(), e.to_string()));
                continue;
            }
        };
        let mode = md.permissions().mode() & 0o7777;
        if !visitor.wants(rel, md.len(), mode) {
            continue;
        }
        let file = match File::open(entry.path()) {
            Ok(f) => f,
            Err(e) => {
                problems.push(problem(rel.to_owned(), format!("{}: {e}", rel.display())));
                continue;
            }
        };
        let f = FileRef {
            path: rel,
            size: md.len(),
            mode,
            layer: None,
            layer_index: None,
        };
        if let Err(e) = visitor.visit(&f, &mut BufReader::new(file)) {
            problems.push(problem(rel.to_owned(), format!("{}: {e}", rel.display())));
        }
    }
    Ok(problems)
}
