//! `hoist image import`: a root file system (directory or tarball) becomes a one-layer
//! image, as `docker import` does.

use std::fs;
use std::path::Path;

use anyhow::{bail, Context, Result};
use hoist_layer::{apply_layer, write_dir, ApplyOptions, WriteOptions};
use hoist_oci::config::{ContainerConfig, History, ImageConfig, RootFs};
use hoist_oci::media_type::Compression;
use hoist_oci::reference::Reference;
use hoist_oci::store::{now_rfc3339, unix_to_rfc3339, Store};
use hoist_oci::{Descriptor, Platform};

use crate::cli::{CompressionArg, ImportArgs};
use crate::settings::Settings;

/// Run `hoist image import`.
pub fn run(settings: &Settings, store: &Store, args: ImportArgs) -> Result<()> {
    let name: Reference = args
        .name
        .parse()
        .with_context(|| format!("image name {:?}", args.name))?;
    if name.digest().is_some() {
        bail!("image name {:?}: give NAME[:TAG], not a digest", args.name);
    }
    let mut container = ContainerConfig::default();
    hoist_builder::metadata::apply_changes(&args.change, &mut container)?;
    let meta = fs::metadata(&args.source).with_context(|| {
        format!(
            "{}: cannot read the root file system",
            args.source.display()
        )
    })?;
    let opts = WriteOptions {
        compression: match args.compression {
            CompressionArg::None => Compression::None,
            CompressionArg::Gzip => Compression::Gzip,
            CompressionArg::Zstd => Compression::Zstd,
        },
        level: None,
        source_date_epoch: args
            .source_date_epoch
            .map(|e| e.min(i64::MAX as u64) as i64),
        ..WriteOptions::default()
    };

    let session = store.write_session()?;
    let layer = if meta.is_dir() {
        write_layer(store, &args.source, &opts)?
    } else {
        // A tarball: extract it safely, then write it back as a normalized layer, so the
        // image gets the same sorted, clamped, PAX-correct tar a directory would.
        let scratch = tempfile::Builder::new()
            .prefix("import-")
            .tempdir_in(store.blobs().tmp_dir())
            .context("creating a scratch directory")?;
        let file = fs::File::open(&args.source)
            .with_context(|| format!("{}: cannot open", args.source.display()))?;
        apply_layer(
            std::io::BufReader::with_capacity(1 << 20, file),
            scratch.path(),
            &ApplyOptions::default(),
        )
        .with_context(|| {
            format!(
                "{}: not a usable root file system tarball",
                args.source.display()
            )
        })?;
        write_layer(store, scratch.path(), &opts)?
    };

    let created = match args.source_date_epoch {
        Some(epoch) => unix_to_rfc3339(epoch),
        None => now_rfc3339(),
    };
    let platform = Platform::host();
    let config = ImageConfig {
        created: Some(created.clone()),
        author: None,
        architecture: platform.architecture,
        variant: platform.variant,
        os: platform.os,
        config: Some(container),
        rootfs: RootFs {
            kind: "layers".to_owned(),
            diff_ids: vec![layer.1.clone()],
        },
        history: vec![History {
            created: Some(created),
            created_by: Some("hoist image import".to_owned()),
            comment: args.message.clone(),
            ..Default::default()
        }],
        extra: Default::default(),
    };
    let manifest = store.put_image(&config, vec![layer.0])?;
    let record = store.add_image(&manifest, &[name])?;
    drop(session);
    super::image::report_loaded(settings, &[record]);
    Ok(())
}

/// Write `root` as a layer blob; returns its descriptor and diff_id.
fn write_layer(
    store: &Store,
    root: &Path,
    opts: &WriteOptions,
) -> Result<(Descriptor, hoist_oci::Digest)> {
    let mut blob = store.blobs().writer()?;
    let info = write_dir(root, &mut blob, opts)
        .with_context(|| format!("{}: cannot archive the root file system", root.display()))?;
    let (digest, size) = blob.commit(Some(&info.digest))?;
    Ok((Descriptor::new(info.media_type, digest, size), info.diff_id))
}
