//! The inventory [`Visitor`]: reads the OS package databases (and, once wired, the
//! language analysers' files) during one walk and assembles the [`Inventory`].
//!
//! Results are kept per path, so a re-delivery of a path replaces what it gave and
//! a withdrawal drops it. dpkg packages are attributed to the layer of their own
//! `var/lib/dpkg/info/<name>.list` file, which dpkg rewrites exactly when it
//! (re)installs that package, and to the status file's layer when there is none;
//! apk and rpm packages to their database's layer.

use std::collections::{BTreeMap, HashMap};
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use hoist_oci::{ImageRecord, Store};

use crate::error::{InventoryError, ParseError, Problem};
use crate::os::{self, OsFile};
use crate::walk::{self, FileRef, Visitor};
use crate::{Inventory, OsRelease, Package};

/// Largest database file read into memory.
pub const MAX_FILE_SIZE: u64 = 512 << 20;

enum Found {
    Packages(Vec<Package>),
    OsRelease(OsRelease),
    DpkgList(String),
    Problem(String),
}

struct Entry {
    layer: Option<String>,
    found: Found,
}

/// Collects an [`Inventory`] from one walk.
#[derive(Default)]
pub struct Collector {
    found: BTreeMap<PathBuf, Entry>,
}

fn parse_message(path: &Path, e: &ParseError) -> String {
    match e.line {
        Some(l) => format!("{}:{l}: {}", path.display(), e.reason),
        None => format!("{}: {}", path.display(), e.reason),
    }
}

impl Visitor for Collector {
    fn wants(&mut self, path: &Path, size: u64, mode: u32) -> bool {
        os::classify(path).is_some() || crate::lang::wants(path, size, mode)
    }

    fn visit(&mut self, file: &FileRef<'_>, content: &mut dyn Read) -> io::Result<()> {
        let path = file.path;
        let kind = os::classify(path);
        let found = if let Some(OsFile::DpkgList(name)) = kind {
            Found::DpkgList(name)
        } else if let Some(OsFile::RpmUnsupported(format)) = kind {
            Found::Problem(format!(
                "{}: rpm {format} databases are not supported; rpm packages are not listed",
                path.display()
            ))
        } else if file.size > MAX_FILE_SIZE {
            Found::Problem(format!(
                "{}: {} bytes, more than the {MAX_FILE_SIZE} read; skipped",
                path.display(),
                file.size
            ))
        } else {
            let mut data = Vec::with_capacity(file.size as usize);
            content.read_to_end(&mut data)?;
            let parsed = match kind {
                Some(OsFile::OsRelease(_)) => os::os_release::parse(&data).map(Found::OsRelease),
                Some(OsFile::DpkgStatus) => os::dpkg::parse(&data).map(Found::Packages),
                Some(OsFile::DpkgStatusD) => os::dpkg::parse_status_d(&data).map(Found::Packages),
                Some(OsFile::Apk) => os::apk::parse(&data).map(Found::Packages),
                Some(OsFile::RpmSqlite) => os::rpm::parse(&data).map(Found::Packages),
                Some(OsFile::DpkgList(_) | OsFile::RpmUnsupported(_)) => {
                    Ok(Found::Packages(Vec::new()))
                }
                None => {
                    // Language files name their own path (and line) in errors.
                    Ok(crate::lang::parse(path, &data)
                        .map_or_else(|e| Found::Problem(e.to_string()), Found::Packages))
                }
            };
            parsed.unwrap_or_else(|e| Found::Problem(parse_message(path, &e)))
        };
        self.found.insert(
            path.to_owned(),
            Entry {
                layer: file.layer.map(str::to_owned),
                found,
            },
        );
        Ok(())
    }

    fn withdraw(&mut self, path: &Path) {
        self.found.remove(path);
    }
}

impl Collector {
    /// A collector with nothing found yet.
    pub fn new() -> Collector {
        Collector::default()
    }

    /// The inventory, with `problems` from the walk added to the parse problems.
    pub fn finish(self, walk_problems: Vec<Problem>) -> Inventory {
        let mut inv = Inventory::default();
        let mut fallback_os = None;
        let mut lists: HashMap<String, Option<String>> = HashMap::new();
        let mut packages = Vec::new();
        let mut problems = walk_problems;
        for (path, entry) in self.found {
            match entry.found {
                Found::OsRelease(r) => {
                    if path == Path::new(os::OS_RELEASE) {
                        inv.os = Some(r);
                    } else {
                        fallback_os = Some(r);
                    }
                }
                Found::DpkgList(name) => {
                    lists.insert(name, entry.layer);
                }
                Found::Packages(ps) => packages.extend(ps.into_iter().map(|mut p| {
                    p.path = path.clone();
                    p.layer = entry.layer.clone();
                    p
                })),
                Found::Problem(message) => problems.push(Problem {
                    path: Some(path),
                    layer: entry.layer,
                    message,
                }),
            }
        }
        if inv.os.is_none() {
            inv.os = fallback_os;
        }
        for p in &mut packages {
            if p.kind == crate::PackageKind::Deb && p.path == Path::new(os::DPKG_STATUS) {
                if let Some(layer) = lists.get(&p.name) {
                    p.layer = layer.clone();
                }
            }
        }
        packages.sort_by(|a, b| {
            (a.kind, &a.name, &a.version, &a.path).cmp(&(b.kind, &b.name, &b.version, &b.path))
        });
        inv.packages = packages;
        inv.problems = problems;
        inv
    }
}

/// The inventory of an image in the local store.
pub fn inventory_image(store: &Store, image: &ImageRecord) -> Result<Inventory, InventoryError> {
    let mut c = Collector::new();
    let problems = walk::walk_image(store, image, &mut c)?;
    Ok(c.finish(problems))
}

/// The inventory of the one image in an OCI image layout directory or a
/// `docker save` archive.
pub fn inventory_archive(path: &Path) -> Result<Inventory, InventoryError> {
    walk::with_archive(path, inventory_image)
}

/// The inventory of a directory (a root file system or a source tree).
pub fn inventory_dir(path: &Path) -> Result<Inventory, InventoryError> {
    let mut c = Collector::new();
    let problems = walk::walk_dir(path, &mut c)?;
    Ok(c.finish(problems))
}
