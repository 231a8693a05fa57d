//! Snapshots: image layers unpacked once into overlayfs-ready directories, merged
//! read-only views over them, and the diff of an overlay upper directory (or of a
//! walked tree where overlayfs is missing) back into an OCI change list.
//!
//! It must not run processes or mount anything: the runtime mounts, the builder decides.
//!
//! # Main types
//!
//! * [`Snapshots`] owns `<home>/snapshots`. [`Snapshots::layer_dir`] unpacks a
//!   layer blob from the `hoist_oci::BlobStore` *on its own*, into an empty
//!   directory, with `hoist_layer`'s [`WhiteoutMode::Overlay`](hoist_layer::WhiteoutMode):
//!   OCI whiteouts become what overlayfs reads (a character device 0/0 for
//!   `.wh.<name>`, `trusted.overlay.opaque=y` for `.wh..wh..opq`), so the directory
//!   is one `lowerdir` and an image is the list [`Snapshots::image_lowers`] returns,
//!   top-most first. Snapshots are keyed by diff_id, checked while unpacking, and
//!   appear only by rename of a complete, synced directory. A [`Scratch`] is a
//!   fresh `upper/` + `work/` pair on the same file system; after a step,
//!   [`Snapshots::adopt`] renames the upper directory in as the new layer's
//!   snapshot, so the next step's lowerdirs cost nothing. [`Snapshots::prune`]
//!   keeps the diff_ids it is given and removes the temp directories of dead
//!   writers (each live one holds an `flock` on its directory).
//! * [`diff_upper`] turns an overlay upper directory into `hoist_layer::Change`s:
//!   char 0/0 is `Deleted`, an opaque directory is `OpaqueDir`, anything else
//!   `Added`. It never looks at the lower layers: the upper directory already *is*
//!   the difference. `trusted.overlay.*` xattrs other than `opaque` are left for
//!   the layer writer to drop.
//! * [`Tree`] is what `COPY` reads: [`PlainDir`] (a directory, looked into with
//!   `openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS)`) and [`MergedView`] (lowerdirs
//!   merged the way a read-only overlay mount would show them, without the
//!   mount). [`Tree::resolve`] follows symlinks with the tree root as `/`.
//! * [`WalkSnapshot`] is the fallback where [`overlay_supported`] says no: record
//!   a tree, let the step change it, diff it (type, mode, owner, size, times to
//!   the nanosecond, inode, ctime, xattrs, link target).
//!
//! # Invariants
//!
//! * A path under `<root>/layers/` is a complete layer in overlay form whose
//!   content hashes (as a tar) to the diff_id it is named by: `layer_dir` checks
//!   the diff_id, `adopt` trusts its caller, who just computed it from the same
//!   directory.
//! * Nothing here mounts, runs a process or touches the network; the only kernel
//!   state read beyond the snapshot root is `/proc/filesystems` and the euid.
//!
//! # What this crate does not do
//!
//! * No mounting and no overlay options: `diff_upper` assumes overlayfs ran with
//!   `redirect_dir=off` and `metacopy=off` (the defaults here) and refuses
//!   objects written otherwise.
//! * No reference counting: `prune` removes what it is not told to keep, even a
//!   snapshot a running build has mounted. The caller decides when to prune.
//! * A layer that itself contains a character device 0/0 cannot be told apart
//!   from a whiteout once unpacked (overlayfs has the same limit).

mod diff;
mod error;
mod probe;
mod store;
mod tree;
mod walk;

pub use diff::diff_upper;
pub use error::SnapshotError;
pub use probe::overlay_supported;
pub use store::{PruneReport, Scratch, Snapshots};
pub use tree::{resolve_with, MergedView, Node, PlainDir, ResolveError, Resolved, Tree};
pub use walk::WalkSnapshot;
