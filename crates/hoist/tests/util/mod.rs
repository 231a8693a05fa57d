//! Test harness: a temporary HOIST_HOME and the real `hoist` binary.
#![allow(dead_code)] // shared by several test binaries, each using a part

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

/// A scratch directory with its own hoist store.
pub struct Env {
    pub dir: tempfile::TempDir,
}

impl Env {
    pub fn new() -> Env {
        Env {
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    pub fn path(&self, p: &str) -> PathBuf {
        self.dir.path().join(p)
    }

    pub fn home(&self) -> PathBuf {
        self.path("home")
    }

    /// A `hoist` command with this env's store.
    pub fn hoist(&self) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_hoist"));
        c.env("HOIST_HOME", self.home())
            .env_remove("SOURCE_DATE_EPOCH");
        c
    }

    /// Run hoist with `args`, asserting success; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.hoist().args(args).output().expect("run hoist");
        assert_success(&out, &format!("hoist {}", args.join(" ")));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Run hoist with `args`, asserting failure; returns stderr.
    pub fn fails(&self, args: &[&str]) -> String {
        let out = self.hoist().args(args).output().expect("run hoist");
        assert!(
            !out.status.success(),
            "hoist {} succeeded but should fail; stdout:\n{}",
            args.join(" "),
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8_lossy(&out.stderr).into_owned()
    }

    /// `hoist image inspect` as JSON.
    pub fn inspect(&self, reference: &str) -> serde_json::Value {
        serde_json::from_str(&self.ok(&["image", "inspect", reference])).expect("inspect JSON")
    }

    /// Import `src` as `name` with `SOURCE_DATE_EPOCH` set, returning its inspect JSON.
    pub fn import_at_epoch(&self, src: &Path, name: &str, epoch: u64) -> serde_json::Value {
        let out = self
            .hoist()
            .env("SOURCE_DATE_EPOCH", epoch.to_string())
            .args(["image", "import", src.to_str().expect("utf-8"), name])
            .output()
            .expect("run hoist");
        assert_success(
            &out,
            &format!("hoist image import {} {name}", src.display()),
        );
        self.inspect(name)
    }

    /// Import the busybox rootfs as `name`.
    pub fn import_busybox(&self, name: &str) -> serde_json::Value {
        let rootfs = busybox_rootfs();
        self.ok(&["image", "import", rootfs.to_str().expect("utf-8"), name]);
        self.inspect(name)
    }
}

pub fn assert_success(out: &Output, what: &str) {
    assert!(
        out.status.success(),
        "{what} failed ({}):\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The project root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A busybox root file system made once per test process from Debian's busybox-static.
pub fn busybox_rootfs() -> PathBuf {
    static ROOTFS: OnceLock<PathBuf> = OnceLock::new();
    ROOTFS
        .get_or_init(|| {
            let dir =
                std::env::temp_dir().join(format!("hoist-test-busybox-{}", std::process::id()));
            if !dir.join("bin/busybox").exists() {
                let out = Command::new("bash")
                    .arg(root().join("scripts/busybox-rootfs.sh"))
                    .arg(&dir)
                    .output()
                    .expect("run busybox-rootfs.sh");
                assert_success(&out, "scripts/busybox-rootfs.sh");
            }
            dir
        })
        .clone()
}

/// Run skopeo, asserting success.
pub fn skopeo(args: &[&str]) -> String {
    let out = Command::new("skopeo")
        .args(["--insecure-policy"])
        .args(args)
        .output()
        .expect("skopeo is installed (apt-get install skopeo)");
    assert_success(&out, &format!("skopeo {}", args.join(" ")));
    String::from_utf8_lossy(&out.stdout).into_owned()
}
