//! Whether overlayfs can be used here, probed once.

use std::sync::OnceLock;

/// Whether overlayfs can be mounted here: `/proc/filesystems` lists `overlay` and
/// the effective user is root. Probed once per process; mounts nothing (a module
/// that is not loaded yet counts as missing).
pub fn overlay_supported() -> bool {
    static SUPPORTED: OnceLock<bool> = OnceLock::new();
    *SUPPORTED.get_or_init(|| {
        let listed = std::fs::read_to_string("/proc/filesystems")
            .map(|text| filesystems_list_overlay(&text))
            .unwrap_or(false);
        listed && rustix::process::geteuid().is_root()
    })
}

/// Whether a `/proc/filesystems` text lists `overlay` (`nodev\toverlay`).
fn filesystems_list_overlay(text: &str) -> bool {
    text.lines()
        .any(|line| line.split_whitespace().last() == Some("overlay"))
}

#[cfg(test)]
mod tests {
    use super::filesystems_list_overlay;

    #[test]
    fn reads_proc_filesystems_lines() {
        assert!(filesystems_list_overlay(
            "nodev\tsysfs\n\text4\nnodev\toverlay\n"
        ));
        assert!(!filesystems_list_overlay(
            "nodev\tsysfs\n\text4\nnodev\toverlayfoo\n"
        ));
        assert!(!filesystems_list_overlay(""));
    }
}
