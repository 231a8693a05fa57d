//! Where a container's cgroup goes: nested under the caller's own cgroup (its memory
//! cgroup on v1, its unified path on v2), so a sandboxed caller's limits also bound
//! its containers; and removing what `libcontainer` or runc leave behind.

use std::path::{Path, PathBuf};

const CGROUP_ROOT: &str = "/sys/fs/cgroup";

/// Whether the host runs the unified (v2-only) hierarchy.
fn unified() -> bool {
    Path::new(CGROUP_ROOT).join("cgroup.controllers").exists()
}

/// The caller's cgroup path from `/proc/self/cgroup` text: the memory controller's
/// on v1, the `0::` line's on v2.
fn own_path(proc_self_cgroup: &str, unified: bool) -> Option<String> {
    proc_self_cgroup.lines().find_map(|line| {
        let mut parts = line.splitn(3, ':');
        let (_, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
        let wanted = if unified {
            controllers.is_empty()
        } else {
            controllers.split(',').any(|c| c == "memory")
        };
        wanted.then(|| path.to_owned())
    })
}

/// The `linux.cgroupsPath` for container `id`.
pub(crate) fn container_path(id: &str) -> Result<PathBuf, String> {
    let text = std::fs::read_to_string("/proc/self/cgroup")
        .map_err(|e| format!("/proc/self/cgroup: {e}"))?;
    let own = own_path(&text, unified()).unwrap_or_else(|| "/".to_owned());
    Ok(Path::new(&own).join(id))
}

/// Remove the container's cgroup directory in every hierarchy (ignoring ones that
/// are already gone or never existed).
pub(crate) fn remove(path: &Path) {
    let rel = path.strip_prefix("/").unwrap_or(path);
    if unified() {
        let _ = std::fs::remove_dir(Path::new(CGROUP_ROOT).join(rel));
        return;
    }
    let Ok(entries) = std::fs::read_dir(CGROUP_ROOT) else {
        return;
    };
    for entry in entries.flatten() {
        let _ = std::fs::remove_dir(entry.path().join(rel));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_memory_on_v1_and_unified_on_v2() {
        let text = "12:pids:/a\n9:memory:/process_api/xyz\n0::/u\n";
        assert_eq!(own_path(text, false).as_deref(), Some("/process_api/xyz"));
        assert_eq!(own_path(text, true).as_deref(), Some("/u"));
        assert_eq!(own_path("0::/only\n", false), None);
    }
}
