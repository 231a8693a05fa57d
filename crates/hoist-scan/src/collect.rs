//! One pass over an image or a directory that feeds both the package inventory
//! and the secret scanner, so each layer is decompressed once.

use std::collections::BTreeMap;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use hoist_inventory::{Collector, FileRef, Inventory, InventoryError, Visitor};
use hoist_oci::store::{ImageRecord, Store};
use hoist_oci::{BlobStore, Digest, ImageManifest};
use hoist_secretscan::Scanner;

use crate::model::Secret;

/// What one pass found.
#[derive(Debug, Default)]
pub struct Collected {
    /// Packages and distribution (with the walk's problems).
    pub inventory: Inventory,
    /// Secrets, when a secret scanner was given.
    pub secrets: Vec<Secret>,
}

/// Files smaller than this are read whole for the secret scanner; the first
/// [`SNIFF`] bytes decide whether a file is text at all.
const SNIFF: usize = 8192;

struct Both<'a> {
    inventory: Collector,
    secrets: Option<&'a Scanner>,
    found: BTreeMap<PathBuf, Vec<Secret>>,
}

impl Visitor for Both<'_> {
    fn wants(&mut self, path: &Path, size: u64, mode: u32) -> bool {
        let inv = self.inventory.wants(path, size, mode);
        inv || self
            .secrets
            .is_some_and(|s| s.wants(&path.to_string_lossy(), size))
    }

    fn visit(&mut self, file: &FileRef<'_>, content: &mut dyn Read) -> io::Result<()> {
        let inv = self.inventory.wants(file.path, file.size, file.mode);
        let secrets = self
            .secrets
            .filter(|s| s.wants(&file.path.to_string_lossy(), file.size));
        match (inv, secrets) {
            (true, None) => self.inventory.visit(file, content),
            (false, None) => Ok(()),
            (inv, Some(scanner)) => {
                // Read the head first: a binary file the inventory does not want
                // is skipped without reading the rest.
                let mut data = Vec::with_capacity(file.size.min(SNIFF as u64) as usize);
                content.take(SNIFF as u64).read_to_end(&mut data)?;
                let binary = data.contains(&0);
                if !binary || inv {
                    content.read_to_end(&mut data)?;
                }
                if !binary {
                    let path = file.path.to_string_lossy();
                    let found: Vec<Secret> = scanner
                        .scan(&path, &data)
                        .into_iter()
                        .map(|f| Secret::from_finding(f, file.layer.map(str::to_owned)))
                        .collect();
                    if found.is_empty() {
                        self.found.remove(file.path);
                    } else {
                        self.found.insert(file.path.to_owned(), found);
                    }
                }
                if inv {
                    self.inventory.visit(file, &mut data.as_slice())?;
                }
                Ok(())
            }
        }
    }

    fn withdraw(&mut self, path: &Path) {
        self.inventory.withdraw(path);
        self.found.remove(path);
    }
}

impl<'a> Both<'a> {
    fn new(secrets: Option<&'a Scanner>) -> Self {
        Both {
            inventory: Collector::new(),
            secrets,
            found: BTreeMap::new(),
        }
    }

    fn finish(self, problems: Vec<hoist_inventory::Problem>) -> Collected {
        Collected {
            inventory: self.inventory.finish(problems),
            secrets: self.found.into_values().flatten().collect(),
        }
    }
}

/// One pass over an image in the store.
pub fn collect_image(
    store: &Store,
    image: &ImageRecord,
    secrets: Option<&Scanner>,
) -> Result<Collected, InventoryError> {
    let mut v = Both::new(secrets);
    let problems = hoist_inventory::walk_image(store, image, &mut v)?;
    Ok(v.finish(problems))
}

/// One pass over the image `manifest` (of image `image`) whose blobs are in `blobs`
/// (a registry's, for scan on push).
pub fn collect_manifest(
    blobs: &BlobStore,
    manifest: &ImageManifest,
    image: &Digest,
    secrets: Option<&Scanner>,
) -> Result<Collected, InventoryError> {
    let mut v = Both::new(secrets);
    let problems = hoist_inventory::walk_manifest(blobs, manifest, image, &mut v)?;
    Ok(v.finish(problems))
}

/// One pass over the image in an OCI layout directory or `docker save` archive.
pub fn collect_archive(
    path: &Path,
    secrets: Option<&Scanner>,
) -> Result<Collected, InventoryError> {
    let mut v = Both::new(secrets);
    let problems = hoist_inventory::walk_archive(path, &mut v)?;
    Ok(v.finish(problems))
}

/// One pass over a directory.
pub fn collect_dir(path: &Path, secrets: Option<&Scanner>) -> Result<Collected, InventoryError> {
    let mut v = Both::new(secrets);
    let problems = hoist_inventory::walk_dir(path, &mut v)?;
    Ok(v.finish(problems))
}
