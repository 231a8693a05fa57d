//! Moving images in and out of the store: OCI image layout directories (what
//! `skopeo copy oci:DIR`, `podman save --format oci-dir` and `docker buildx --output
//! type=oci` use) and `docker save` tarballs (`docker-archive`), both the classic
//! layout (`manifest.json` + `<id>/layer.tar`) and Docker 25's OCI-layout-in-a-tar (which is also skopeo's and podman's
//! `oci-archive`).
//!
//! Every blob that comes in is verified against its digest as it streams into the
//! blob store; an image is only recorded once all of its blobs are in. Exports are
//! written to a temporary sibling and renamed into place, so a failed export leaves
//! nothing half-written.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File};
use std::io::{self, BufReader, Read, Write};
use std::path::{Component, Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::blob::{write_atomic, BlobError, MAX_DOCUMENT_SIZE};
use crate::manifest::{to_canonical_json, Descriptor, ImageIndex, Manifest, Platform};
use crate::media_type::{self as mt, Compression, Decompressor};
use crate::reference::Reference;
use crate::store::{ImageRecord, Store, StoreError};
use crate::{Digest, DigestReader};

/// Annotation naming a manifest's tag (or full reference) in an OCI layout index.
pub const ANNOTATION_REF_NAME: &str = "org.opencontainers.image.ref.name";
/// Annotation containerd, Docker and BuildKit use for the full image name.
pub const ANNOTATION_CONTAINERD_NAME: &str = "io.containerd.image.name";

/// What went wrong moving an image in or out.
#[derive(Debug, thiserror::Error)]
pub enum TransferError {
    /// A store error.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A blob store error.
    #[error(transparent)]
    Blob(#[from] BlobError),
    /// The input is not in a format hoist can read.
    #[error("{path}: {message}")]
    Format {
        /// The file or directory.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },
    /// An index with no manifest for this host's platform.
    #[error("image index {index} has no manifest for {platform} in the store")]
    NoPlatform {
        /// The index.
        index: Digest,
        /// `os/architecture`.
        platform: String,
    },
    /// An I/O error.
    #[error("{path}: {source}")]
    Io {
        /// The file involved.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
}

/// Shorthand.
pub type Result<T, E = TransferError> = std::result::Result<T, E>;

fn format_err(path: &Path, message: impl Into<String>) -> TransferError {
    TransferError::Format {
        path: path.to_owned(),
        message: message.into(),
    }
}

fn io_at(path: &Path) -> impl FnOnce(io::Error) -> TransferError + '_ {
    move |source| TransferError::Io {
        path: path.to_owned(),
        source,
    }
}

/// An image found in an archive or layout and recorded in the store.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// The store record.
    pub record: ImageRecord,
}

#[derive(Serialize, Deserialize)]
struct LayoutHeader {
    #[serde(rename = "imageLayoutVersion")]
    image_layout_version: String,
}

/// The names an index entry carries: a full reference from containerd's annotation,
/// or from `ref.name` when that is a full reference rather than a bare tag.
fn names_from_annotations(desc: &Descriptor) -> Vec<Reference> {
    let mut out = Vec::new();
    if let Some(n) = desc.annotations.get(ANNOTATION_CONTAINERD_NAME) {
        if let Ok(r) = n.parse::<Reference>() {
            out.push(r);
        }
    }
    if out.is_empty() {
        if let Some(n) = desc.annotations.get(ANNOTATION_REF_NAME) {
            if n.contains('/') || n.contains(':') {
                if let Ok(r) = n.parse::<Reference>() {
                    out.push(r);
                }
            }
        }
    }
    out.retain(|r| r.tag().is_some());
    out
}

/// Where a blob lives inside an OCI layout.
fn layout_blob_path(root: &Path, digest: &Digest) -> PathBuf {
    root.join("blobs")
        .join(digest.algorithm().as_str())
        .join(digest.hex())
}

/// Import every image of an OCI image layout directory. `name` overrides the names in
/// the layout (only when it holds exactly one image). Images without any name are
/// recorded untagged.
pub fn import_oci_layout(
    store: &Store,
    dir: &Path,
    name: Option<&Reference>,
) -> Result<Vec<Loaded>> {
    let header_path = dir.join("oci-layout");
    let header = fs::read(&header_path).map_err(io_at(&header_path))?;
    let index_path = dir.join("index.json");
    let index = parse_layout(
        &header_path,
        &header,
        &index_path,
        &read_limited(&index_path)?,
        name,
    )?;
    let _session = store.write_session()?;
    for desc in &index.manifests {
        copy_tree_from_dir(store, dir, desc, true)?;
    }
    record_layout(store, &index, name)
}

/// Check an OCI layout's header and parse its index (`where_*` name them in errors).
fn parse_layout(
    header_at: &Path,
    header: &[u8],
    index_at: &Path,
    index: &[u8],
    name: Option<&Reference>,
) -> Result<ImageIndex> {
    let header: LayoutHeader = serde_json::from_slice(header)
        .map_err(|e| format_err(header_at, format!("not an OCI layout header: {e}")))?;
    if !header.image_layout_version.starts_with("1.") {
        return Err(format_err(
            header_at,
            format!(
                "unsupported imageLayoutVersion {:?}",
                header.image_layout_version
            ),
        ));
    }
    let (index, _) = Manifest::parse(index, Some(mt::OCI_INDEX))
        .map_err(|e| format_err(index_at, e.to_string()))?;
    let Manifest::Index(index) = index else {
        return Err(format_err(index_at, "index.json is not an image index"));
    };
    if index.manifests.is_empty() {
        return Err(format_err(index_at, "the layout holds no images"));
    }
    if name.is_some() && index.manifests.len() > 1 {
        return Err(format_err(
            index_at,
            format!(
                "a name was given but the layout holds {} images",
                index.manifests.len()
            ),
        ));
    }
    Ok(index)
}

/// Record every image of a layout index whose blobs are now in the store.
fn record_layout(
    store: &Store,
    index: &ImageIndex,
    name: Option<&Reference>,
) -> Result<Vec<Loaded>> {
    let mut loaded = Vec::new();
    for desc in &index.manifests {
        let names = match name {
            Some(n) => vec![n.clone()],
            None => names_from_annotations(desc),
        };
        let manifest = Descriptor::new(desc.media_type.clone(), desc.digest.clone(), desc.size);
        let record = store.add_image(&manifest, &names)?;
        loaded.push(Loaded { record });
    }
    Ok(loaded)
}

fn read_limited(path: &Path) -> Result<Vec<u8>> {
    let f = File::open(path).map_err(io_at(path))?;
    let mut bytes = Vec::new();
    f.take(MAX_DOCUMENT_SIZE + 1)
        .read_to_end(&mut bytes)
        .map_err(io_at(path))?;
    if bytes.len() as u64 > MAX_DOCUMENT_SIZE {
        return Err(format_err(path, "document larger than 16 MiB"));
    }
    Ok(bytes)
}

/// Copy a descriptor's blob and everything it references from a layout into the store.
fn copy_tree_from_dir(store: &Store, dir: &Path, desc: &Descriptor, required: bool) -> Result<()> {
    let src = layout_blob_path(dir, &desc.digest);
    if !src.is_file() {
        if !required || (!desc.urls.is_empty()) {
            return Ok(());
        }
        return Err(format_err(
            dir,
            format!("blob {} is missing from the layout", desc.digest),
        ));
    }
    if store.blobs().size(&desc.digest)? != Some(desc.size) {
        let mut f = File::open(&src).map_err(io_at(&src))?;
        let (_, size) = store.blobs().put_reader(&mut f, Some(&desc.digest))?;
        if size != desc.size {
            return Err(format_err(
                &src,
                format!(
                    "blob {} is {size} bytes, the descriptor says {}",
                    desc.digest, desc.size
                ),
            ));
        }
    }
    if mt::is_manifest(&desc.media_type) {
        match store.manifest(desc)? {
            Manifest::Image(m) => {
                for child in std::iter::once(&m.config).chain(&m.layers) {
                    copy_tree_from_dir(store, dir, child, true)?;
                }
            }
            Manifest::Index(i) => {
                for child in &i.manifests {
                    copy_tree_from_dir(store, dir, child, false)?;
                }
            }
        }
    }
    Ok(())
}

/// Export an image as an OCI image layout directory at `dest`. When `dest` already is
/// an OCI layout, the image is added to it (an entry with the same tag is replaced);
/// otherwise `dest` must not exist, and is created whole or not at all.
pub fn export_oci_layout(
    store: &Store,
    record: &ImageRecord,
    name: Option<&Reference>,
    dest: &Path,
) -> Result<()> {
    let desc = record.descriptor();
    let blobs = store.reachable(&desc)?;
    let mut entry = desc.clone();
    if let Some(name) = name {
        if let Some(tag) = name.tag() {
            entry
                .annotations
                .insert(ANNOTATION_REF_NAME.to_owned(), tag.to_owned());
        }
        entry.annotations.insert(
            ANNOTATION_CONTAINERD_NAME.to_owned(),
            name.without_digest().to_string(),
        );
    }
    if dest.join("oci-layout").is_file() {
        // Add to an existing layout: blobs first (each atomic), then the index.
        for d in &blobs {
            copy_blob_out(store, d, &layout_blob_path(dest, d))?;
        }
        let index_path = dest.join("index.json");
        let mut index: ImageIndex = serde_json::from_slice(&read_limited(&index_path)?)
            .map_err(|e| format_err(&index_path, e.to_string()))?;
        let tag = entry.annotations.get(ANNOTATION_REF_NAME).cloned();
        index.manifests.retain(|m| {
            m.digest != entry.digest
                && (tag.is_none() || m.annotations.get(ANNOTATION_REF_NAME) != tag.as_ref())
        });
        index.manifests.push(entry);
        write_file_atomic(&index_path, &to_canonical_json(&index))?;
        return Ok(());
    }
    if dest.exists() {
        return Err(format_err(
            dest,
            "already exists and is not an OCI image layout",
        ));
    }
    let parent = parent_dir(dest);
    let tmp = tempfile::Builder::new()
        .prefix(".hoist-export-")
        .tempdir_in(parent)
        .map_err(io_at(parent))?;
    let root = tmp.path();
    write_file_atomic(
        &root.join("oci-layout"),
        &serde_json::to_vec(&LayoutHeader {
            image_layout_version: "1.0.0".to_owned(),
        })
        .unwrap_or_default(),
    )?;
    for d in &blobs {
        copy_blob_out(store, d, &layout_blob_path(root, d))?;
    }
    let mut index = ImageIndex::new();
    index.manifests.push(entry);
    write_file_atomic(&root.join("index.json"), &to_canonical_json(&index))?;
    let kept = tmp.keep();
    fs::rename(&kept, dest).map_err(io_at(dest))?;
    Ok(())
}

fn parent_dir(p: &Path) -> &Path {
    match p.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    }
}

fn copy_blob_out(store: &Store, digest: &Digest, dest: &Path) -> Result<()> {
    if dest.is_file() {
        return Ok(());
    }
    let dir = parent_dir(dest);
    fs::create_dir_all(dir).map_err(io_at(dir))?;
    let mut src = store.blobs().open_blob(digest, None)?;
    write_atomic(dest, |f| io::copy(&mut src, f).map(drop))?;
    Ok(())
}

fn write_file_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    write_atomic(path, |f| f.write_all(bytes))?;
    Ok(())
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ArchiveEntry {
    config: String,
    #[serde(default)]
    repo_tags: Option<Vec<String>>,
    layers: Vec<String>,
}

/// A file seen in a docker archive: kept in memory (small JSON) or streamed to the
/// blob store.
enum Seen {
    Bytes(Vec<u8>),
    Blob { digest: Digest, size: u64 },
    Link(String),
}

/// Import a `docker save` tarball (classic or Docker 25's OCI form). `name` overrides
/// the archive's names when it holds exactly one image.
pub fn import_docker_archive(
    store: &Store,
    path: &Path,
    name: Option<&Reference>,
) -> Result<Vec<Loaded>> {
    let file = File::open(path).map_err(io_at(path))?;
    let _session = store.write_session()?;
    let mut archive = tar::Archive::new(BufReader::with_capacity(1 << 20, file));
    let mut seen: BTreeMap<String, Seen> = BTreeMap::new();
    let entries = archive.entries().map_err(io_at(path))?;
    for entry in entries {
        let mut entry = entry.map_err(io_at(path))?;
        let entry_path = entry.path().map_err(io_at(path))?.into_owned();
        let Some(key) = clean_archive_path(&entry_path) else {
            return Err(format_err(
                path,
                format!("entry {} escapes the archive", entry_path.display()),
            ));
        };
        let kind = entry.header().entry_type();
        if kind.is_symlink() || kind.is_hard_link() {
            let target = entry
                .link_name()
                .map_err(io_at(path))?
                .map(|t| t.into_owned())
                .unwrap_or_default();
            let resolved = if kind.is_symlink() {
                parent_dir(Path::new(&key)).join(&target)
            } else {
                target
            };
            if let Some(t) = clean_archive_path(&resolved) {
                seen.insert(key, Seen::Link(t));
            }
            continue;
        }
        if !kind.is_file() {
            continue;
        }
        let size = entry.size();
        // Documents stay in memory; layers and OCI blobs stream into the store. The
        // legacy per-layer `<id>/json` and `<id>/VERSION` files are documents too, so
        // they do not become orphan blobs.
        let is_doc = key.ends_with(".json")
            || key.ends_with("/json")
            || key.ends_with("/VERSION")
            || key == "oci-layout"
            || key == "repositories";
        if is_doc && size <= MAX_DOCUMENT_SIZE {
            let mut bytes = Vec::with_capacity(size as usize);
            entry.read_to_end(&mut bytes).map_err(io_at(path))?;
            seen.insert(key, Seen::Bytes(bytes));
        } else {
            // OCI blobs are named by digest: verify them against it.
            let expected = key
                .strip_prefix("blobs/")
                .and_then(|rest| rest.split_once('/'))
                .and_then(|(alg, hex)| format!("{alg}:{hex}").parse::<Digest>().ok());
            let (digest, size) = store.blobs().put_reader(&mut entry, expected.as_ref())?;
            seen.insert(key, Seen::Blob { digest, size });
        }
    }
    let lookup = |key: &str| -> Option<&Seen> {
        let mut k = key.to_owned();
        for _ in 0..16 {
            match seen.get(&k)? {
                Seen::Link(t) => k = t.clone(),
                other => return Some(other),
            }
        }
        None
    };
    // An OCI layout in a tar (skopeo's oci-archive, Docker 25's `docker save`): its
    // manifests keep their original digests, so it wins over manifest.json.
    if let (Some(Seen::Bytes(header)), Some(Seen::Bytes(index))) =
        (lookup("oci-layout"), lookup("index.json"))
    {
        let at = |f: &str| path.join(f);
        let index = parse_layout(&at("oci-layout"), header, &at("index.json"), index, name)?;
        return record_layout(store, &index, name);
    }
    let Some(Seen::Bytes(manifest_json)) = lookup("manifest.json") else {
        return Err(format_err(
            path,
            "not a docker-archive or OCI archive: neither manifest.json nor index.json is in it",
        ));
    };
    let entries: Vec<ArchiveEntry> = serde_json::from_slice(manifest_json)
        .map_err(|e| format_err(path, format!("manifest.json: {e}")))?;
    if entries.is_empty() {
        return Err(format_err(path, "manifest.json lists no images"));
    }
    if name.is_some() && entries.len() > 1 {
        return Err(format_err(
            path,
            format!(
                "a name was given but the archive holds {} images",
                entries.len()
            ),
        ));
    }
    let mut loaded = Vec::new();
    for (i, e) in entries.iter().enumerate() {
        let config_bytes = match lookup(&e.config) {
            Some(Seen::Bytes(b)) => b.clone(),
            Some(Seen::Blob { digest, .. }) => store.blobs().read(digest)?,
            _ => {
                return Err(format_err(
                    path,
                    format!(
                        "manifest.json[{i}].Config: {} is not in the archive",
                        e.config
                    ),
                ))
            }
        };
        let config: crate::ImageConfig = serde_json::from_slice(&config_bytes).map_err(|err| {
            format_err(path, format!("{}: invalid image config: {err}", e.config))
        })?;
        if config.rootfs.diff_ids.len() != e.layers.len() {
            return Err(format_err(
                path,
                format!(
                    "manifest.json[{i}] lists {} layers but its config has {} diff_ids",
                    e.layers.len(),
                    config.rootfs.diff_ids.len()
                ),
            ));
        }
        let (config_digest, config_size) = store.blobs().put(&config_bytes)?;
        let mut layers = Vec::new();
        for (j, layer_path) in e.layers.iter().enumerate() {
            let Some(Seen::Blob { digest, size }) = lookup(layer_path) else {
                return Err(format_err(
                    path,
                    format!("manifest.json[{i}].Layers[{j}]: {layer_path} is not in the archive"),
                ));
            };
            let layer = open_layer(store, digest)?;
            let compression = layer.compression();
            let diff_id = if compression == Compression::None {
                digest.clone()
            } else {
                let mut r = DigestReader::new(layer, crate::Algorithm::Sha256);
                io::copy(&mut r, &mut io::sink()).map_err(io_at(&store.blobs().path(digest)))?;
                r.finish().0
            };
            if diff_id != config.rootfs.diff_ids[j] {
                return Err(format_err(
                    path,
                    format!("{layer_path}: layer content {diff_id} does not match the config's diff_id {}", config.rootfs.diff_ids[j]),
                ));
            }
            layers.push(Descriptor::new(
                mt::oci_layer(compression),
                digest.clone(),
                *size,
            ));
        }
        let config = Descriptor::new(mt::OCI_CONFIG, config_digest, config_size);
        let manifest = store.put_manifest(&crate::ImageManifest::new(config, layers))?;
        let mut names = Vec::new();
        match name {
            Some(n) => names.push(n.clone()),
            None => {
                for t in e.repo_tags.iter().flatten() {
                    let r: Reference = t.parse().map_err(|err| {
                        format_err(path, format!("manifest.json[{i}].RepoTags: {t:?}: {err}"))
                    })?;
                    names.push(r);
                }
            }
        }
        let record = store.add_image(&manifest, &names)?;
        loaded.push(Loaded { record });
    }
    Ok(loaded)
}

/// Normalize a path inside an archive; `None` when it leaves the archive root.
fn clean_archive_path(p: &Path) -> Option<String> {
    let mut parts: Vec<String> = Vec::new();
    for c in p.components() {
        match c {
            Component::Normal(s) => parts.push(s.to_str()?.to_owned()),
            Component::CurDir | Component::RootDir => {}
            Component::ParentDir => {
                parts.pop()?;
            }
            Component::Prefix(_) => return None,
        }
    }
    (!parts.is_empty()).then(|| parts.join("/"))
}

/// Open a layer blob as its uncompressed tar stream (compression found by magic bytes).
pub fn open_layer(store: &Store, digest: &Digest) -> Result<Decompressor<BufReader<File>>> {
    let file = BufReader::with_capacity(1 << 20, store.blobs().open_blob(digest, None)?);
    Decompressor::new(file).map_err(io_at(&store.blobs().path(digest)))
}

/// Pick the manifest to use from an image: the image itself, or from an index the
/// entry for this host's platform.
pub fn platform_manifest(store: &Store, record: &ImageRecord) -> Result<crate::ImageManifest> {
    match store.manifest(&record.descriptor())? {
        Manifest::Image(m) => Ok(m),
        Manifest::Index(i) => {
            let host = Platform::host();
            let pick = i.manifests.iter().find(|d| {
                d.platform
                    .as_ref()
                    .is_some_and(|p| p.os == host.os && p.architecture == host.architecture)
                    && store.blobs().contains(&d.digest)
            });
            let no_platform = || TransferError::NoPlatform {
                index: record.digest.clone(),
                platform: format!("{}/{}", host.os, host.architecture),
            };
            let d = pick.ok_or_else(no_platform)?;
            match store.manifest(d)? {
                Manifest::Image(m) => Ok(m),
                Manifest::Index(_) => Err(no_platform()),
            }
        }
    }
}

/// Write an image as a classic `docker save` tarball (`docker load`, `skopeo
/// docker-archive:` and `podman load` read it) to `dest`, created whole or not at all.
/// Layers are written uncompressed, as Docker does.
pub fn export_docker_archive(
    store: &Store,
    record: &ImageRecord,
    names: &[Reference],
    dest: &Path,
) -> Result<()> {
    let manifest = platform_manifest(store, record)?;
    let config_bytes = store.blobs().read(&manifest.config.digest)?;
    let config: crate::ImageConfig = serde_json::from_slice(&config_bytes).map_err(|e| {
        format_err(
            Path::new(&manifest.config.digest.to_string()),
            format!("invalid image config: {e}"),
        )
    })?;
    let dir = parent_dir(dest);
    let tmp = tempfile::Builder::new()
        .prefix(".hoist-export-")
        .tempfile_in(dir)
        .map_err(io_at(dir))?;
    let mut builder = tar::Builder::new(io::BufWriter::with_capacity(1 << 20, tmp));
    let config_name = format!("{}.json", manifest.config.digest.hex());
    append_bytes(&mut builder, &config_name, &config_bytes).map_err(io_at(dest))?;
    let mut layer_paths = Vec::new();
    let mut written = BTreeSet::new();
    for (i, layer) in manifest.layers.iter().enumerate() {
        let compression = mt::layer_compression(&layer.media_type).ok_or_else(|| {
            format_err(
                dest,
                format!(
                    "layer {} has media type {} which is not a layer",
                    layer.digest, layer.media_type
                ),
            )
        })?;
        let diff_id = config.rootfs.diff_ids.get(i).cloned().ok_or_else(|| {
            format_err(
                dest,
                format!(
                    "config {} has fewer diff_ids than the manifest has layers",
                    manifest.config.digest
                ),
            )
        })?;
        let layer_path = format!("{}/layer.tar", diff_id.hex());
        if written.insert(layer_path.clone()) {
            if compression == Compression::None {
                let mut f = store.blobs().open_blob(&layer.digest, Some(layer.size))?;
                append_reader(&mut builder, &layer_path, layer.size, &mut f)
                    .map_err(io_at(dest))?;
            } else {
                // The tar header needs the size first: decompress to a temp file.
                let mut spool =
                    tempfile::tempfile_in(store.blobs().tmp_dir()).map_err(io_at(dest))?;
                let mut r = open_layer(store, &layer.digest)?;
                let size = io::copy(&mut r, &mut spool).map_err(io_at(dest))?;
                io::Seek::seek(&mut spool, io::SeekFrom::Start(0)).map_err(io_at(dest))?;
                append_reader(&mut builder, &layer_path, size, &mut spool).map_err(io_at(dest))?;
            }
        }
        layer_paths.push(layer_path);
    }
    let repo_tags: Vec<String> = names
        .iter()
        .filter(|n| n.tag().is_some())
        .map(Reference::familiar)
        .collect();
    let entries = vec![ArchiveEntry {
        config: config_name,
        repo_tags: Some(repo_tags),
        layers: layer_paths,
    }];
    append_bytes(
        &mut builder,
        "manifest.json",
        &serde_json::to_vec(&entries).unwrap_or_default(),
    )
    .map_err(io_at(dest))?;
    let out = builder.into_inner().map_err(io_at(dest))?;
    let tmp = out.into_inner().map_err(|e| io_at(dest)(e.into_error()))?;
    tmp.as_file().sync_all().map_err(io_at(dest))?;
    tmp.persist(dest).map_err(|e| io_at(dest)(e.error))?;
    Ok(())
}

fn header(size: u64) -> tar::Header {
    let mut h = tar::Header::new_ustar();
    h.set_size(size);
    h.set_mode(0o644);
    h.set_mtime(0);
    h.set_uid(0);
    h.set_gid(0);
    h.set_entry_type(tar::EntryType::Regular);
    h
}

fn append_bytes<W: Write>(b: &mut tar::Builder<W>, path: &str, bytes: &[u8]) -> io::Result<()> {
    let mut h = header(bytes.len() as u64);
    b.append_data(&mut h, path, bytes)
}

fn append_reader<W: Write>(
    b: &mut tar::Builder<W>,
    path: &str,
    size: u64,
    r: &mut dyn Read,
) -> io::Result<()> {
    let mut h = header(size);
    b.append_data(&mut h, path, r)
}

/// What kind of file `path` is, for `hoist image load`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceKind {
    /// An OCI image layout directory.
    OciLayout,
    /// A docker-archive tarball.
    DockerArchive,
}

/// Recognize an OCI layout directory or a docker-archive tar.
pub fn detect(path: &Path) -> Result<SourceKind> {
    let meta = fs::metadata(path).map_err(io_at(path))?;
    if meta.is_dir() {
        if path.join("oci-layout").is_file() {
            return Ok(SourceKind::OciLayout);
        }
        return Err(format_err(
            path,
            "a directory but not an OCI image layout (no oci-layout file)",
        ));
    }
    Ok(SourceKind::DockerArchive)
}
