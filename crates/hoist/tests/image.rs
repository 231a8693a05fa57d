//! `hoist image ...` end to end, against the real binary and real skopeo.
#![allow(clippy::unwrap_used)]

mod util;

use std::fs;

use util::{busybox_rootfs, skopeo, Env};

fn digest(v: &serde_json::Value) -> String {
    v["Digest"].as_str().expect("Digest").to_owned()
}

#[test]
fn import_gives_a_named_runnable_image() {
    let env = Env::new();
    let img = env.import_busybox("busybox");
    assert_eq!(img["RepoTags"][0], "busybox:latest");
    assert_eq!(img["Os"], "linux");
    assert_eq!(img["RootFS"]["Layers"].as_array().map(Vec::len), Some(1));
    let ls = env.ok(&["image", "ls"]);
    assert!(
        ls.lines()
            .any(|l| l.starts_with("busybox") && l.contains("latest")),
        "{ls}"
    );
    // Resolve by ID prefix and by full name.
    let id = img["Id"].as_str().unwrap().trim_start_matches("sha256:")[..12].to_owned();
    assert_eq!(digest(&env.inspect(&id)), digest(&img));
    assert_eq!(
        digest(&env.inspect("docker.io/library/busybox:latest")),
        digest(&img)
    );
}

#[test]
fn round_trip_through_skopeo_oci_keeps_the_manifest_digest() {
    let env = Env::new();
    let img = env.import_busybox("busybox:1");
    let a = env.path("A");
    let b = env.path("B");
    env.ok(&[
        "image",
        "export",
        "busybox:1",
        "--format",
        "oci",
        a.to_str().unwrap(),
    ]);
    skopeo(&[
        "copy",
        &format!("oci:{}", a.display()),
        &format!("oci:{}", b.display()),
    ]);
    let other = Env::new();
    let out = other.ok(&["image", "load", b.to_str().unwrap()]);
    assert!(out.contains(&digest(&img)), "load printed {out}");
    assert_eq!(digest(&other.inspect(&digest(&img))), digest(&img));
}

#[test]
fn docker_archive_round_trips_through_skopeo() {
    let env = Env::new();
    let img = env.import_busybox("example.com/team/bb:v1");
    let tar = env.path("bb.tar");
    env.ok(&[
        "image",
        "export",
        "example.com/team/bb:v1",
        "--format",
        "docker-archive",
        tar.to_str().unwrap(),
    ]);
    // skopeo reads our docker-archive and sees the same config (image ID).
    let raw = skopeo(&[
        "inspect",
        "--config",
        "--raw",
        &format!("docker-archive:{}", tar.display()),
    ]);
    let config_digest = hoist_oci::Digest::sha256_of(raw.as_bytes()).to_string();
    assert_eq!(config_digest, img["Id"].as_str().unwrap());
    // And a docker-archive written by skopeo loads back with the same image ID.
    let oci = env.path("oci");
    env.ok(&[
        "image",
        "export",
        "example.com/team/bb:v1",
        oci.to_str().unwrap(),
    ]);
    let tar2 = env.path("skopeo.tar");
    skopeo(&[
        "copy",
        &format!("oci:{}", oci.display()),
        &format!("docker-archive:{}:other/name:tag", tar2.display()),
    ]);
    let other = Env::new();
    other.ok(&["image", "load", tar2.to_str().unwrap()]);
    let loaded = other.inspect("other/name:tag");
    assert_eq!(loaded["Id"], img["Id"]);
    assert_eq!(loaded["RootFS"], img["RootFS"]);
}

#[test]
fn same_source_date_epoch_gives_the_same_digest_despite_new_mtimes() {
    let env = Env::new();
    let rootfs = env.path("rootfs");
    let out = std::process::Command::new("cp")
        .args([
            "-a",
            busybox_rootfs().to_str().unwrap(),
            rootfs.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    util::assert_success(&out, "cp -a");
    let first = env.import_at_epoch(&rootfs, "repro:1", 1_700_000_000);
    // Touch every file to a new time, after the epoch.
    let out = std::process::Command::new("find")
        .args([
            rootfs.to_str().unwrap(),
            "-exec",
            "touch",
            "-h",
            "-d",
            "2030-01-01",
            "{}",
            "+",
        ])
        .output()
        .unwrap();
    util::assert_success(&out, "touch");
    let second = env.import_at_epoch(&rootfs, "repro:2", 1_700_000_000);
    assert_eq!(digest(&first), digest(&second));
    let a = env.path("a");
    let b = env.path("b");
    env.ok(&["image", "export", "repro:1", a.to_str().unwrap()]);
    env.ok(&["image", "export", "repro:2", b.to_str().unwrap()]);
    let index = |p: &std::path::Path| -> serde_json::Value {
        serde_json::from_slice(&fs::read(p.join("index.json")).unwrap()).unwrap()
    };
    assert_eq!(
        index(&a)["manifests"][0]["digest"],
        index(&b)["manifests"][0]["digest"]
    );
    // Without the epoch the new mtimes show: a different layer.
    let third = {
        env.ok(&["image", "import", rootfs.to_str().unwrap(), "repro:3"]);
        env.inspect("repro:3")
    };
    assert_ne!(third["RootFS"], first["RootFS"]);
}

#[test]
fn rm_untags_then_deletes_and_frees_blobs() {
    let env = Env::new();
    let img = env.import_busybox("busybox:a");
    env.ok(&["image", "tag", "busybox:a", "busybox:b"]);
    let blobs = || {
        fs::read_dir(env.home().join("blobs/sha256"))
            .unwrap()
            .count()
    };
    assert_eq!(blobs(), 3, "manifest, config, one layer");
    // By ID with two names: refused without --force.
    let id = img["Id"].as_str().unwrap().to_owned();
    let err = env.fails(&["image", "rm", &id]);
    assert!(err.contains("several names"), "{err}");
    env.ok(&["image", "rm", "busybox:a"]);
    assert_eq!(blobs(), 3, "the image still has a name");
    env.ok(&["image", "rm", "busybox:b"]);
    assert_eq!(blobs(), 0);
    let err = env.fails(&["image", "inspect", "busybox:b"]);
    assert!(err.contains("no such image"), "{err}");
}

#[test]
fn bad_input_fails_clearly_and_leaves_nothing() {
    let env = Env::new();
    let err = env.fails(&["image", "import", "/nonexistent/rootfs", "x"]);
    assert!(err.contains("/nonexistent/rootfs"), "{err}");
    let err = env.fails(&[
        "image",
        "import",
        busybox_rootfs().to_str().unwrap(),
        "Bad/UPPER",
    ]);
    assert!(err.to_lowercase().contains("lowercase"), "{err}");
    let junk = env.path("junk.tar");
    fs::write(&junk, b"this is not a tar file at all").unwrap();
    env.fails(&["image", "load", junk.to_str().unwrap()]);
    let not_layout = env.path("dir");
    fs::create_dir(&not_layout).unwrap();
    let err = env.fails(&["image", "load", not_layout.to_str().unwrap()]);
    assert!(err.contains("OCI image layout"), "{err}");
    // Nothing was recorded, no temp files remain.
    assert!(env.ok(&["image", "ls", "--json"]).trim() == "[]");
    let tmp = env.home().join("tmp");
    assert_eq!(fs::read_dir(&tmp).map(|d| d.count()).unwrap_or(0), 0);
    // Export to an existing non-layout path is refused and leaves it alone.
    env.import_busybox("busybox");
    let err = env.fails(&["image", "export", "busybox", not_layout.to_str().unwrap()]);
    assert!(err.contains("not an OCI image layout"), "{err}");
    assert_eq!(fs::read_dir(&not_layout).unwrap().count(), 0);
}

#[test]
fn import_killed_mid_write_leaves_the_store_consistent() {
    let env = Env::new();
    // 48 MiB of incompressible data: long enough to be killed while writing.
    let rootfs = env.path("big");
    fs::create_dir_all(&rootfs).unwrap();
    let mut state = 0x9e3779b97f4a7c15u64;
    let mut data = vec![0u8; 48 << 20];
    for chunk in data.chunks_mut(8) {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        chunk.copy_from_slice(&state.to_le_bytes()[..chunk.len()]);
    }
    fs::write(rootfs.join("blob.bin"), &data).unwrap();
    let tmp = env.home().join("tmp");
    let mut child = env
        .hoist()
        .args(["image", "import", rootfs.to_str().unwrap(), "big:1"])
        .spawn()
        .unwrap();
    // Kill as soon as a blob is being written.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let writing = fs::read_dir(&tmp)
            .map(|d| {
                d.flatten()
                    .any(|e| e.metadata().map(|m| m.len() > 0).unwrap_or(false))
            })
            .unwrap_or(false);
        if writing || std::time::Instant::now() > deadline {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    child.kill().unwrap();
    let status = child.wait().unwrap();
    assert!(
        !status.success(),
        "import finished before it could be killed"
    );
    // Nothing is recorded and every blob present is whole.
    assert_eq!(env.ok(&["image", "ls", "--json"]).trim(), "[]");
    let verify_blobs = || {
        for e in fs::read_dir(env.home().join("blobs/sha256")).unwrap() {
            let e = e.unwrap();
            let bytes = fs::read(e.path()).unwrap();
            let name = e.file_name().into_string().unwrap();
            assert_eq!(
                hoist_oci::Digest::sha256_of(&bytes).hex(),
                name,
                "corrupt blob"
            );
        }
    };
    verify_blobs();
    // The next import succeeds, and prune clears what the killed one left.
    env.ok(&["image", "import", rootfs.to_str().unwrap(), "big:1"]);
    let report: serde_json::Value =
        serde_json::from_str(&env.ok(&["--json", "image", "prune"])).unwrap();
    assert!(
        report["TempFilesRemoved"].as_u64().unwrap() >= 1,
        "the killed import's temp file was not cleared: {report}"
    );
    assert_eq!(fs::read_dir(&tmp).unwrap().count(), 0);
    verify_blobs();
    let img = env.inspect("big:1");
    assert_eq!(img["RootFS"]["Layers"].as_array().map(Vec::len), Some(1));
    assert_eq!(
        fs::read_dir(env.home().join("blobs/sha256"))
            .unwrap()
            .count(),
        3
    );
}

#[test]
fn a_rootfs_tarball_imports_to_the_same_layer_as_its_directory() {
    let env = Env::new();
    let tarball = env.path("rootfs.tar.gz");
    let out = std::process::Command::new("tar")
        .args([
            "-C",
            busybox_rootfs().to_str().unwrap(),
            "-czf",
            tarball.to_str().unwrap(),
            ".",
        ])
        .output()
        .unwrap();
    util::assert_success(&out, "tar");
    let from_dir = env.import_at_epoch(&busybox_rootfs(), "dir:1", 1_600_000_000);
    let from_tar = env.import_at_epoch(&tarball, "tar:1", 1_600_000_000);
    assert_eq!(from_dir["RootFS"], from_tar["RootFS"]);
    assert_eq!(digest(&from_dir), digest(&from_tar));
}

#[test]
fn import_change_sets_the_config() {
    let env = Env::new();
    let rootfs = busybox_rootfs();
    env.ok(&[
        "image",
        "import",
        rootfs.to_str().unwrap(),
        "bb:cfg",
        "--change",
        "CMD [\"sh\"]",
        "--change",
        "ENV PATH=/bin",
        "--change",
        "EXPOSE 8080",
    ]);
    let img = env.inspect("bb:cfg");
    assert_eq!(img["Config"]["Cmd"], serde_json::json!(["sh"]));
    assert_eq!(img["Config"]["Env"], serde_json::json!(["PATH=/bin"]));
    assert!(img["Config"]["ExposedPorts"]["8080/tcp"].is_object());
    let err = env.fails(&[
        "image",
        "import",
        rootfs.to_str().unwrap(),
        "bb:bad",
        "--change",
        "RUN rm -rf /",
    ]);
    assert!(err.contains("RUN cannot be applied"), "{err}");
    env.fails(&["image", "inspect", "bb:bad"]);
}

#[test]
fn an_oci_archive_from_skopeo_loads_with_its_digest() {
    let env = Env::new();
    let img = env.import_busybox("busybox:arch");
    let dir = env.path("layout");
    env.ok(&["image", "export", "busybox:arch", dir.to_str().unwrap()]);
    let tar = env.path("bb-oci.tar");
    skopeo(&[
        "copy",
        &format!("oci:{}", dir.display()),
        &format!("oci-archive:{}:busybox:arch", tar.display()),
    ]);
    let other = Env::new();
    other.ok(&[
        "image",
        "load",
        tar.to_str().unwrap(),
        "--tag",
        "mirror/bb:1",
    ]);
    assert_eq!(digest(&other.inspect("mirror/bb:1")), digest(&img));
}
