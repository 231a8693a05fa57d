//! Package inventory (the SBOM's contents) of an image or a directory.
//!
//! It owns finding what is installed: OS packages (dpkg, apk, rpm) with the
//! distribution from os-release, and language packages (Python, npm, Cargo, Go,
//! Java, RubyGems) from package databases, lockfiles and binaries. For an image it
//! is layer-aware: what a later layer deletes is not reported, and each package
//! says which layer brought it. It must not match vulnerabilities or write
//! reports: it returns [`Package`]s.
//!
//! # Entry points
//!
//! * [`inventory_image`] (an image in the local `hoist_oci::Store`),
//!   [`inventory_archive`] (an OCI layout directory or `docker save` tarball,
//!   imported into a temporary store) and [`inventory_dir`] (a plain directory)
//!   return an [`Inventory`]: the [`OsRelease`], the [`Package`]s sorted, and the
//!   [`Problem`]s met on the way.
//! * Underneath, [`walk_image`], [`walk_archive`] and [`walk_dir`] make **one pass**
//!   over the files and hand those a [`Visitor`] wants (by path, size, mode) to it
//!   with their content and layer. The inventory's [`Collector`] is one visitor; a
//!   secret scanner can be another, or share the pass by wrapping both.
//!
//! # How an image is read
//!
//! Never unpacked: `hoist_layer::walk_visible` reads the layers top-down, each
//! blob streamed once, and hands over only files the final file system shows
//! (whiteouts, opaque directories and replaced paths honoured). A package's
//! `layer` is the diff_id of the layer that brought its database file; dpkg
//! packages are attributed more finely, to the layer of their own
//! `var/lib/dpkg/info/<name>.list` (see [`collect`]).
//!
//! # OS package databases ([`os`])
//!
//! * dpkg: `var/lib/dpkg/status` (entries whose Status says `installed`) and
//!   distroless' `var/lib/dpkg/status.d/*`; version as dpkg writes it, with epoch.
//! * apk: `lib/apk/db/installed` (`P`, `V`, `o` origin, `L` license).
//! * rpm: `var/lib/rpm/rpmdb.sqlite` only, headers decoded by hand; version
//!   `[epoch:]version-release`. Berkeley DB (`Packages`) and NDB (`Packages.db`)
//!   databases are **not** read: the inventory carries a [`Problem`] saying so.
//!
//! Every parser is a pure `fn parse(&[u8]) -> Result<_, ParseError>` that never
//! panics; a malformed database becomes a [`Problem`] naming the file and line
//! (`var/lib/dpkg/status:123: entry without Package`) and the rest of the
//! inventory is still returned.
//!
//! # Language packages ([`lang`])
//!
//! Python (`*.dist-info/METADATA`, `*.egg-info/PKG-INFO`, pinned
//! `requirements.txt`, `poetry.lock`, `Pipfile.lock`), npm (`package-lock.json`
//! v1-v3, `yarn.lock` classic and berry, `node_modules/**/package.json`), Rust
//! (`Cargo.lock`, cargo-auditable `.dep-v0` in ELF binaries), Go (build info in ELF
//! binaries, `go.mod`, `go.sum`), Java (`pom.properties` and MANIFEST in jars, wars
//! and ears, nested up to three levels) and Ruby (installed gemspecs,
//! `Gemfile.lock`): pure parsers, `wants(path, size, mode)` then `parse(path, bytes)`.
//!
//! # What this crate does not do
//!
//! No network, no vulnerability matching, no report formats; it does not follow
//! hardlinks to files of lower layers, read rpm's Berkeley DB/NDB, or attribute apk
//! and rpm packages to layers finer than their database file.

pub mod collect;
pub mod error;
pub mod lang;
pub mod os;
pub mod package;
pub mod walk;

pub use collect::{inventory_archive, inventory_dir, inventory_image, Collector};
pub use error::{InventoryError, ParseError, Problem};
pub use package::{Inventory, OsRelease, Package, PackageKind};
pub use walk::{walk_archive, walk_dir, walk_image, walk_manifest, FileRef, Visitor};
