//! OS package inventory of real and hand-made images and directories.
//!
//! `debootstrap_image_matches_dpkg_query` needs `debootstrap` (apt-get install -y
//! debootstrap) and network access to the Debian mirror the first time; the rootfs
//! is cached under `/var/cache/hoist-test/debootstrap` (or `$HOIST_TEST_CACHE`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use hoist_inventory::os::rpm::{encode_header, HeaderValue};
use hoist_inventory::{inventory_dir, inventory_image, Inventory, PackageKind};
use hoist_layer::{write_dir, Compression, WriteOptions};
use hoist_oci::config::{ImageConfig, RootFs};
use hoist_oci::media_type as mt;
use hoist_oci::{Descriptor, Digest, ImageRecord, Reference, Store};

// ---------------------------------------------------------------------------
// Image helpers

/// Record an image made of `layers` (descriptor, diff_id) in `store`.
fn record_image(store: &Store, layers: Vec<(Descriptor, Digest)>, name: &str) -> ImageRecord {
    let config = ImageConfig {
        architecture: "amd64".to_owned(),
        os: "linux".to_owned(),
        rootfs: RootFs {
            kind: "layers".to_owned(),
            diff_ids: layers.iter().map(|l| l.1.clone()).collect(),
        },
        ..Default::default()
    };
    let desc = store
        .put_image(&config, layers.into_iter().map(|l| l.0).collect())
        .unwrap();
    let name: Reference = name.parse().unwrap();
    store.add_image(&desc, &[name]).unwrap()
}

/// Write a directory as one gzip layer into the store.
fn dir_layer(store: &Store, root: &Path) -> (Descriptor, Digest) {
    let mut blob = store.blobs().writer().unwrap();
    let opts = WriteOptions {
        compression: Compression::Gzip,
        level: Some(1),
        ..WriteOptions::default()
    };
    let info = write_dir(root, &mut blob, &opts).unwrap();
    let (digest, size) = blob.commit(Some(&info.digest)).unwrap();
    (Descriptor::new(info.media_type, digest, size), info.diff_id)
}

/// An entry of a hand-made layer: a file with content, or a whiteout path.
enum E<'a> {
    File(&'a str, &'a [u8]),
    Whiteout(&'a str),
}

/// Write a hand-made uncompressed layer into the store.
fn tar_layer(store: &Store, entries: &[E<'_>]) -> (Descriptor, Digest) {
    let mut b = tar::Builder::new(Vec::new());
    for e in entries {
        let (path, data): (&str, &[u8]) = match e {
            E::File(p, d) => (p, d),
            E::Whiteout(p) => (p, b""),
        };
        let mut h = tar::Header::new_ustar();
        h.set_entry_type(tar::EntryType::Regular);
        h.set_mode(0o644);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        h.set_size(data.len() as u64);
        b.append_data(&mut h, path, data).unwrap();
    }
    let bytes = b.into_inner().unwrap();
    let (digest, size) = store.blobs().put(&bytes).unwrap();
    (Descriptor::new(mt::OCI_LAYER, digest.clone(), size), digest)
}

fn names(inv: &Inventory, kind: PackageKind) -> BTreeSet<(String, String)> {
    inv.packages
        .iter()
        .filter(|p| p.kind == kind)
        .map(|p| (p.name.clone(), p.version.clone()))
        .collect()
}

// ---------------------------------------------------------------------------
// Debian via debootstrap

fn cache_dir() -> PathBuf {
    std::env::var_os("HOIST_TEST_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/cache/hoist-test"))
        .join("debootstrap")
}

/// The Debian mirror this machine's apt uses (deb822 or one-line sources), else
/// deb.debian.org.
fn debian_mirror() -> String {
    let mut files = vec![PathBuf::from("/etc/apt/sources.list")];
    if let Ok(rd) = fs::read_dir("/etc/apt/sources.list.d") {
        files.extend(rd.flatten().map(|e| e.path()));
    }
    for f in files {
        let Ok(text) = fs::read_to_string(&f) else {
            continue;
        };
        for line in text.lines() {
            let line = line.trim();
            let url = if let Some(rest) = line.strip_prefix("URIs:") {
                rest.split_whitespace().next()
            } else if let Some(rest) = line.strip_prefix("deb ") {
                rest.split_whitespace().find(|w| w.starts_with("http"))
            } else {
                None
            };
            if let Some(u) = url {
                if u.trim_end_matches('/').ends_with("/debian") {
                    return u.to_owned();
                }
            }
        }
    }
    "http://deb.debian.org/debian".to_owned()
}

/// A `debootstrap --variant=minbase bookworm` root, built once and cached; built
/// into a temporary directory and renamed into place so a half-built root is never
/// used.
fn debian_rootfs() -> PathBuf {
    let cache = cache_dir();
    let root = cache.join("bookworm-minbase");
    if root.join("var/lib/dpkg/status").is_file() {
        return root;
    }
    match Command::new("debootstrap").arg("--version").output() {
        Ok(_) => {}
        Err(e) => panic!(
            "debootstrap is needed for this test and cannot be run ({e}): \
             apt-get install -y debootstrap"
        ),
    }
    fs::create_dir_all(&cache).unwrap();
    let tmp = tempfile::Builder::new()
        .prefix(".tmp-bookworm-minbase.")
        .tempdir_in(&cache)
        .unwrap()
        .keep();
    let mirror = debian_mirror();
    let out = Command::new("debootstrap")
        .args(["--variant=minbase", "bookworm"])
        .arg(&tmp)
        .arg(&mirror)
        .output()
        .unwrap();
    if !out.status.success() {
        let _ = fs::remove_dir_all(&tmp);
        panic!(
            "debootstrap --variant=minbase bookworm {} {mirror} failed: {}\n{}",
            tmp.display(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    if fs::rename(&tmp, &root).is_err() {
        // Another test process won the race: use its root.
        let _ = fs::remove_dir_all(&tmp);
        assert!(root.join("var/lib/dpkg/status").is_file());
    }
    root
}

/// `dpkg-query -W` on the root: (name, version), the `:arch` qualifier dpkg adds to
/// Multi-Arch: same packages dropped (the Package model has no architecture).
fn dpkg_query(root: &Path) -> BTreeSet<(String, String)> {
    let out = Command::new("dpkg-query")
        .arg(format!(
            "--admindir={}",
            root.join("var/lib/dpkg").display()
        ))
        .arg("-W")
        .output()
        .expect("dpkg-query");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            let (name, version) = l.split_once('\t').unwrap();
            let name = name.split_once(':').map_or(name, |(n, _)| n);
            (name.to_owned(), version.to_owned())
        })
        .collect()
}

#[test]
fn debootstrap_image_matches_dpkg_query() {
    let root = debian_rootfs();
    let expected = dpkg_query(&root);
    assert!(expected.len() > 50, "{expected:?}");
    assert!(expected.iter().any(|(n, _)| n == "libc6"));

    let home = tempfile::tempdir().unwrap();
    let store = Store::open(home.path()).unwrap();
    let layer = dir_layer(&store, &root);
    let diff_id = layer.1.to_string();
    let image = record_image(&store, vec![layer], "test/debian:bookworm");

    let inv = inventory_image(&store, &image).unwrap();
    assert!(inv.problems.is_empty(), "{:?}", inv.problems);
    assert_eq!(names(&inv, PackageKind::Deb), expected);
    assert_eq!(
        inv.packages.len(),
        expected.len(),
        "no other kinds, no duplicates"
    );
    let os = inv.os.as_ref().unwrap();
    assert_eq!(os.id, "debian");
    assert_eq!(os.version_id.as_deref(), Some("12"));
    assert_eq!(os.codename.as_deref(), Some("bookworm"));
    let libc = inv.packages.iter().find(|p| p.name == "libc6").unwrap();
    assert_eq!(libc.source_name.as_deref(), Some("glibc"));
    assert_eq!(libc.path, Path::new("var/lib/dpkg/status"));
    assert!(inv
        .packages
        .iter()
        .all(|p| p.layer.as_deref() == Some(diff_id.as_str())));

    // The same tree as a directory gives the same packages, without layers.
    let dir = inventory_dir(&root).unwrap();
    assert_eq!(names(&dir, PackageKind::Deb), expected);
    assert!(dir.packages.iter().all(|p| p.layer.is_none()));
}

#[test]
fn busybox_image_has_no_os_packages() {
    let rootfs = tempfile::tempdir().unwrap();
    fs::create_dir_all(rootfs.path().join("bin")).unwrap();
    fs::copy("/bin/busybox", rootfs.path().join("bin/busybox"))
        .expect("busybox-static is needed: apt-get install -y busybox-static");
    let home = tempfile::tempdir().unwrap();
    let store = Store::open(home.path()).unwrap();
    let layer = dir_layer(&store, rootfs.path());
    let image = record_image(&store, vec![layer], "test/busybox:1");
    let inv = inventory_image(&store, &image).unwrap();
    assert_eq!(inv, Inventory::default());
}

// ---------------------------------------------------------------------------
// Layers: attribution and deletion

const DPKG_V1: &[u8] = b"Package: a\nStatus: install ok installed\nVersion: 1.0\n\n\
Package: b\nStatus: install ok installed\nMulti-Arch: same\nVersion: 1.0\n";
const DPKG_V2: &[u8] = b"Package: a\nStatus: install ok installed\nVersion: 1.0\n\n\
Package: b\nStatus: install ok installed\nMulti-Arch: same\nVersion: 2.0\n\n\
Package: c\nStatus: install ok installed\nVersion: 3:0.1\nSource: csrc (0.0.9)\n";

#[test]
fn dpkg_packages_are_attributed_to_the_layer_of_their_list_file() {
    let home = tempfile::tempdir().unwrap();
    let store = Store::open(home.path()).unwrap();
    let l0 = tar_layer(
        &store,
        &[
            E::File("etc/os-release", b"ID=debian\nVERSION_ID=\"12\"\n"),
            E::File("var/lib/dpkg/status", DPKG_V1),
            E::File("var/lib/dpkg/info/a.list", b"/usr/bin/a\n"),
            E::File("var/lib/dpkg/info/b:amd64.list", b"/usr/lib/b\n"),
        ],
    );
    let l1 = tar_layer(
        &store,
        &[
            E::File("var/lib/dpkg/status", DPKG_V2),
            E::File("var/lib/dpkg/info/b:amd64.list", b"/usr/lib/b\n"),
            E::File("var/lib/dpkg/info/c.list", b"/usr/bin/c\n"),
        ],
    );
    let (d0, d1) = (l0.1.to_string(), l1.1.to_string());
    let image = record_image(&store, vec![l0, l1], "test/layers:1");
    let inv = inventory_image(&store, &image).unwrap();
    assert!(inv.problems.is_empty(), "{:?}", inv.problems);
    let got: Vec<_> = inv
        .packages
        .iter()
        .map(|p| {
            (
                p.name.as_str(),
                p.version.as_str(),
                p.layer.clone().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            ("a", "1.0", d0.clone()),
            ("b", "2.0", d1.clone()),
            ("c", "3:0.1", d1)
        ]
    );
    let c = &inv.packages[2];
    assert_eq!(c.source_name.as_deref(), Some("csrc"));
    assert_eq!(c.source_version.as_deref(), Some("0.0.9"));
    assert_eq!(inv.os.unwrap().id, "debian");
}

const APK_DB: &[u8] = b"C:Q1xyz=\nP:musl\nV:1.2.4_git20230717-r4\nA:x86_64\nS:383152\nI:622592\n\
T:the musl c library (libc) implementation\nU:https://musl.libc.org/\nL:MIT\no:musl\nm:Natanael Copa\n\
t:1705485181\nc:ec62bb6b\nF:lib\nR:ld-musl-x86_64.so.1\n\n\
P:libssl3\nV:3.1.4-r5\nA:x86_64\nL:Apache-2.0\no:openssl\nF:usr/lib\n\n\
P:busybox\nV:1.36.1-r15\nL:GPL-2.0-only\n\n";

#[test]
fn apk_database_and_a_later_layer_deleting_it() {
    let home = tempfile::tempdir().unwrap();
    let store = Store::open(home.path()).unwrap();
    let l0 = tar_layer(
        &store,
        &[
            E::File(
                "etc/os-release",
                b"NAME=\"Alpine Linux\"\nID=alpine\nVERSION_ID=3.19.1\n",
            ),
            E::File("lib/apk/db/installed", APK_DB),
        ],
    );
    let image = record_image(&store, vec![l0.clone()], "test/alpine:1");
    let inv = inventory_image(&store, &image).unwrap();
    assert!(inv.problems.is_empty(), "{:?}", inv.problems);
    assert_eq!(
        inv.os.as_ref().unwrap().version_id.as_deref(),
        Some("3.19.1")
    );
    let got: Vec<_> = inv
        .packages
        .iter()
        .map(|p| {
            (
                p.name.as_str(),
                p.version.as_str(),
                p.source_name.as_deref().unwrap(),
                p.licenses.join(","),
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            (
                "busybox",
                "1.36.1-r15",
                "busybox",
                "GPL-2.0-only".to_owned()
            ),
            ("libssl3", "3.1.4-r5", "openssl", "Apache-2.0".to_owned()),
            ("musl", "1.2.4_git20230717-r4", "musl", "MIT".to_owned()),
        ]
    );
    assert!(inv.packages.iter().all(|p| p.kind == PackageKind::Apk
        && p.path == Path::new("lib/apk/db/installed")
        && p.layer.as_deref() == Some(l0.1.to_string().as_str())));

    // A later layer deletes the database: nothing is reported.
    let l1 = tar_layer(&store, &[E::Whiteout("lib/apk/db/.wh.installed")]);
    let image = record_image(&store, vec![l0, l1], "test/alpine:deleted");
    let inv = inventory_image(&store, &image).unwrap();
    assert!(inv.packages.is_empty(), "{:?}", inv.packages);
    assert_eq!(inv.os.unwrap().id, "alpine");
}

// ---------------------------------------------------------------------------
// rpm: a hand-made rpmdb.sqlite with headers encoded in the test

fn rpm_header(
    name: &str,
    epoch: Option<u32>,
    version: &str,
    release: &str,
    license: &str,
    srpm: &str,
) -> Vec<u8> {
    let mut e = vec![
        (1000, HeaderValue::Str(name)),
        (1001, HeaderValue::Str(version)),
        (1002, HeaderValue::Str(release)),
        (1014, HeaderValue::Str(license)),
        (1044, HeaderValue::Str(srpm)),
    ];
    if let Some(n) = epoch {
        e.push((1003, HeaderValue::Int(n)));
    }
    encode_header(&e)
}

fn write_rpmdb(path: &Path, headers: &[Vec<u8>], wal: bool) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    let conn = rusqlite::Connection::open(path).unwrap();
    if wal {
        let mode: String = conn
            .query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
    }
    conn.execute_batch(
        "CREATE TABLE Packages (hnum INTEGER PRIMARY KEY AUTOINCREMENT, blob BLOB NOT NULL);
         CREATE TABLE Name (key TEXT NOT NULL, hnum INTEGER NOT NULL, idx INTEGER NOT NULL);",
    )
    .unwrap();
    for h in headers {
        conn.execute("INSERT INTO Packages (blob) VALUES (?1)", [h])
            .unwrap();
    }
    drop(conn);
}

#[test]
fn rpm_sqlite_database() {
    for wal in [false, true] {
        let root = tempfile::tempdir().unwrap();
        fs::create_dir_all(root.path().join("etc")).unwrap();
        fs::write(
            root.path().join("etc/os-release"),
            "NAME=\"Rocky Linux\"\nID=\"rocky\"\nVERSION_ID=\"9.3\"\n",
        )
        .unwrap();
        write_rpmdb(
            &root.path().join("var/lib/rpm/rpmdb.sqlite"),
            &[
                rpm_header(
                    "bash",
                    None,
                    "5.1.8",
                    "6.el9_1",
                    "GPLv3+",
                    "bash-5.1.8-6.el9_1.src.rpm",
                ),
                rpm_header(
                    "openssl-libs",
                    Some(1),
                    "3.0.7",
                    "24.el9",
                    "ASL 2.0",
                    "openssl-3.0.7-24.el9.src.rpm",
                ),
                rpm_header("gpg-pubkey", None, "350d275d", "6279464b", "pubkey", ""),
            ],
            wal,
        );
        if wal {
            let bytes = fs::read(root.path().join("var/lib/rpm/rpmdb.sqlite")).unwrap();
            assert_eq!(&bytes[18..20], &[2, 2], "the database is in WAL mode");
        }
        let inv = inventory_dir(root.path()).unwrap();
        assert!(inv.problems.is_empty(), "{:?}", inv.problems);
        assert_eq!(inv.os.as_ref().unwrap().id, "rocky");
        let got: Vec<_> = inv
            .packages
            .iter()
            .map(|p| {
                (
                    p.kind,
                    p.name.as_str(),
                    p.version.as_str(),
                    p.source_name.as_deref().unwrap(),
                    p.source_version.as_deref().unwrap(),
                    p.licenses.join(","),
                )
            })
            .collect();
        assert_eq!(
            got,
            vec![
                (
                    PackageKind::Rpm,
                    "bash",
                    "5.1.8-6.el9_1",
                    "bash",
                    "5.1.8-6.el9_1",
                    "GPLv3+".to_owned()
                ),
                (
                    PackageKind::Rpm,
                    "openssl-libs",
                    "1:3.0.7-24.el9",
                    "openssl",
                    "1:3.0.7-24.el9",
                    "ASL 2.0".to_owned()
                ),
            ],
            "wal: {wal}"
        );
    }
}

#[test]
fn unsupported_rpm_databases_and_malformed_files_are_problems() {
    let root = tempfile::tempdir().unwrap();
    let r = root.path();
    fs::create_dir_all(r.join("var/lib/rpm")).unwrap();
    fs::write(r.join("var/lib/rpm/Packages"), b"\0\0\0\0berkeley").unwrap();
    fs::create_dir_all(r.join("var/lib/dpkg/status.d")).unwrap();
    fs::write(
        r.join("var/lib/dpkg/status"),
        "Package: ok\nStatus: install ok installed\nVersion: 1\n\nVersion: 2\n",
    )
    .unwrap();
    fs::write(
        r.join("var/lib/dpkg/status.d/base"),
        "Package: base-files\nVersion: 12.4\n",
    )
    .unwrap();
    fs::write(r.join("var/lib/dpkg/status.d/base.md5sums"), "not parsed\n").unwrap();
    let inv = inventory_dir(r).unwrap();
    let messages: Vec<_> = inv.problems.iter().map(|p| p.message.as_str()).collect();
    assert_eq!(
        messages,
        vec![
            "var/lib/dpkg/status:5: entry without Package",
            "var/lib/rpm/Packages: rpm Berkeley DB databases are not supported; rpm packages are not listed",
        ]
    );
    // The distroless file still counts.
    assert_eq!(
        names(&inv, PackageKind::Deb),
        BTreeSet::from([("base-files".to_owned(), "12.4".to_owned())])
    );
}

#[test]
fn oci_layout_and_docker_archive_are_inventoried() {
    let home = tempfile::tempdir().unwrap();
    let store = Store::open(home.path()).unwrap();
    let l0 = tar_layer(&store, &[E::File("lib/apk/db/installed", APK_DB)]);
    let image = record_image(&store, vec![l0], "test/alpine:1");
    let expected = inventory_image(&store, &image).unwrap();
    assert_eq!(expected.packages.len(), 3);

    let out = tempfile::tempdir().unwrap();
    let layout = out.path().join("layout");
    hoist_oci::transfer::export_oci_layout(&store, &image, None, &layout).unwrap();
    assert_eq!(
        hoist_inventory::inventory_archive(&layout).unwrap(),
        expected
    );

    let archive = out.path().join("image.tar");
    let name: Reference = "test/alpine:1".parse().unwrap();
    hoist_oci::transfer::export_docker_archive(&store, &image, &[name], &archive).unwrap();
    assert_eq!(
        hoist_inventory::inventory_archive(&archive).unwrap(),
        expected
    );
}
