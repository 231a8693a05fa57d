//! Crash safety of `hoist registry serve`: the server is SIGKILLed while a large blob
//! streams in and right after a blob's `201`, then restarted on the same root. The
//! store must never hold a blob whose bytes do not hash to its name, a partial upload
//! must never be visible as a blob, and pushing and pulling again must work.
//!
//! SIGKILL stops the process, not the machine: these tests check the order of writes
//! and renames (nothing is renamed into the store before it is whole and verified),
//! not that fsync reached the disk.

mod util;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use sha2::{Digest as _, Sha256};
use util::{skopeo, Env, RegistryServer};

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|x| format!("{x:02x}"))
        .collect()
}

/// `n` pseudo-random bytes (xorshift64*), different for each `seed`.
fn random_bytes(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let mut out = Vec::with_capacity(n + 8);
    while out.len() < n {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        out.extend_from_slice(&x.wrapping_mul(0x2545_f491_4f6c_dd1d).to_le_bytes());
    }
    out.truncate(n);
    out
}

/// An OCI layout holding image `img`: one uncompressed layer of `layer` bytes and its
/// config. Returns the layer's digest (`sha256:…`).
fn write_layout(dir: &Path, layer: &[u8]) -> String {
    let blobs = dir.join("blobs/sha256");
    std::fs::create_dir_all(&blobs).expect("mkdir blobs");
    let put = |bytes: &[u8]| {
        let hex = sha256_hex(bytes);
        std::fs::write(blobs.join(&hex), bytes).expect("write blob");
        (format!("sha256:{hex}"), bytes.len())
    };
    let (ld, ls) = put(layer);
    let config = serde_json::json!({
        "architecture": "amd64", "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": [ld]},
    })
    .to_string();
    let (cd, cs) = put(config.as_bytes());
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": cs},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": ld, "size": ls}],
    })
    .to_string();
    let (md, ms) = put(manifest.as_bytes());
    let index = serde_json::json!({
        "schemaVersion": 2,
        "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": md, "size": ms,
            "annotations": {"org.opencontainers.image.ref.name": "img"},
        }],
    });
    std::fs::write(dir.join("index.json"), index.to_string()).expect("index.json");
    std::fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#)
        .expect("oci-layout");
    ld
}

/// Every file under the store's `blobs/` hashes to its name; returns their names.
fn assert_store_is_sound(root: &Path) -> Vec<String> {
    let mut names = Vec::new();
    for alg in ["sha256", "sha512"] {
        let dir = root.join("blobs").join(alg);
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries {
            let path = entry.expect("dir entry").path();
            let name = path.file_name().and_then(|n| n.to_str()).expect("name");
            let bytes = std::fs::read(&path).expect("read blob");
            let actual = match alg {
                "sha256" => sha256_hex(&bytes),
                _ => sha2::Sha512::digest(&bytes)
                    .iter()
                    .map(|x| format!("{x:02x}"))
                    .collect(),
            };
            assert_eq!(
                actual,
                name,
                "{} holds {} bytes that do not hash to its name",
                path.display(),
                bytes.len()
            );
            names.push(format!("{alg}:{name}"));
        }
    }
    names
}

/// Pull `reference` into a new OCI layout with skopeo and check that every blob in it
/// hashes to its name; returns the layout.
fn pull_and_verify(env: &Env, reference: &str, dir: &str) -> PathBuf {
    let out = env.path(dir);
    skopeo(&[
        "copy",
        "--preserve-digests",
        "--src-tls-verify=false",
        &format!("docker://{reference}"),
        &format!("oci:{}:img", out.display()),
    ]);
    let blobs = out.join("blobs/sha256");
    let mut n = 0;
    for entry in std::fs::read_dir(&blobs).expect("pulled blobs") {
        let path = entry.expect("entry").path();
        let bytes = std::fs::read(&path).expect("read pulled blob");
        let name = path.file_name().and_then(|n| n.to_str()).expect("name");
        assert_eq!(sha256_hex(&bytes), name, "pulled blob is corrupt");
        n += 1;
    }
    assert_eq!(n, 3, "manifest, config and layer");
    out
}

fn push(layout: &Path, reference: &str) {
    skopeo(&[
        "copy",
        "--preserve-digests",
        "--dest-tls-verify=false",
        &format!("oci:{}:img", layout.display()),
        &format!("docker://{reference}"),
    ]);
}

/// The upload sessions' data files and their sizes.
fn session_files(root: &Path) -> Vec<(PathBuf, u64)> {
    let Ok(entries) = std::fs::read_dir(root.join("_uploads")) else {
        return Vec::new();
    };
    entries
        .filter_map(|e| {
            let data = e.ok()?.path().join("data");
            let len = std::fs::metadata(&data).ok()?.len();
            Some((data, len))
        })
        .collect()
}

#[test]
fn a_server_killed_mid_upload_shows_no_partial_blob_and_takes_the_push_again() {
    const SIZE: usize = 96 << 20;
    const KILL_AFTER: u64 = 16 << 20;
    let env = Env::new();
    let root = env.path("registry");
    let layer = random_bytes(SIZE, 1);
    let layout = env.path("layout");
    let layer_digest = write_layout(&layout, &layer);
    let layer_hex = &layer_digest["sha256:".len()..];

    let server = RegistryServer::start_with(&env, &root, None, "http");
    let reference = format!("{}/crash/big:1", server.addr);
    let mut pusher = std::process::Command::new("skopeo")
        .args([
            "--insecure-policy",
            "copy",
            "--preserve-digests",
            "--dest-tls-verify=false",
        ])
        .arg(format!("oci:{}:img", layout.display()))
        .arg(format!("docker://{reference}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn skopeo");
    // Kill the server once the layer's session file has grown past KILL_AFTER bytes.
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        if session_files(&root).iter().any(|(_, n)| *n >= KILL_AFTER) {
            break;
        }
        if let Some(status) = pusher.try_wait().expect("poll skopeo") {
            panic!("skopeo finished ({status}) before the upload reached {KILL_AFTER} bytes");
        }
        assert!(Instant::now() < deadline, "the upload never started");
        std::thread::sleep(Duration::from_millis(2));
    }
    server.kill();
    let status = pusher.wait().expect("wait for skopeo");
    assert!(
        !status.success(),
        "skopeo cannot finish a push to a dead server"
    );

    // The upload was cut: its session holds part of the layer, which is not a blob.
    let sessions = session_files(&root);
    assert!(
        sessions
            .iter()
            .any(|(_, n)| *n >= KILL_AFTER && *n < SIZE as u64),
        "no partial session left by the kill: {sessions:?}"
    );
    assert!(!root.join("blobs/sha256").join(layer_hex).exists());
    let stored = assert_store_is_sound(&root);
    assert!(!stored.contains(&layer_digest));

    // Restarted on the same root: the layer is unknown, a new push takes it whole and
    // a pull gives back every digest.
    let server = RegistryServer::start_with(&env, &root, None, "http");
    let reference = format!("{}/crash/big:1", server.addr);
    push(&layout, &reference);
    assert!(assert_store_is_sound(&root).contains(&layer_digest));
    let pulled = pull_and_verify(&env, &reference, "pulled");
    let back = std::fs::read(pulled.join("blobs/sha256").join(layer_hex)).expect("layer");
    assert!(
        back == layer,
        "the pulled layer differs from the pushed one"
    );
}

#[test]
fn a_blob_acknowledged_before_a_kill_is_whole_after_restart() {
    let env = Env::new();
    let root = env.path("registry");
    let layer = random_bytes(64 << 20, 2);
    let layout = env.path("layout");
    let layer_digest = write_layout(&layout, &layer);

    let server = RegistryServer::start_with(&env, &root, None, "http");
    push(&layout, &format!("{}/acked/big:1", server.addr));
    // Every blob and the manifest got their 201; kill at once.
    server.kill();

    let stored = assert_store_is_sound(&root);
    assert!(stored.contains(&layer_digest), "{stored:?}");
    assert!(
        session_files(&root).is_empty(),
        "a finished upload left its session"
    );
    let server = RegistryServer::start_with(&env, &root, None, "http");
    let pulled = pull_and_verify(&env, &format!("{}/acked/big:1", server.addr), "pulled");
    let back = std::fs::read(
        pulled
            .join("blobs/sha256")
            .join(&layer_digest["sha256:".len()..]),
    )
    .expect("layer");
    assert!(
        back == layer,
        "the pulled layer differs from the pushed one"
    );
}

/// One HTTP/1.1 request on a fresh connection: status, headers (lower-case names).
fn http(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (u16, String) {
    let mut s = TcpStream::connect(addr).expect("connect");
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).expect("write request");
    s.write_all(body).expect("write body");
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).expect("read response");
    let text = String::from_utf8_lossy(&raw).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .expect("status line");
    (status, text.to_ascii_lowercase())
}

fn header<'a>(response: &'a str, name: &str) -> &'a str {
    response
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{name}: ")))
        .unwrap_or_else(|| panic!("no {name} in {response}"))
        .trim()
}

#[test]
fn an_upload_continues_after_a_restart_and_is_verified_by_hashing_the_file() {
    let env = Env::new();
    let root = env.path("registry");
    let blob = random_bytes(3 << 20, 3);
    let (first, second) = blob.split_at(1 << 20);
    let digest = format!("sha256:{}", sha256_hex(&blob));

    let server = RegistryServer::start_with(&env, &root, None, "http");
    let (status, resp) = http(&server.addr, "POST", "/v2/resume/blobs/uploads/", &[], b"");
    assert_eq!(status, 202, "{resp}");
    let location = header(&resp, "location").to_owned();
    let (status, resp) = http(&server.addr, "PATCH", &location, &[], first);
    assert_eq!(status, 202, "{resp}");
    server.kill();

    // The new process has no running hash of the session: it hashes the file at PUT.
    let server = RegistryServer::start_with(&env, &root, None, "http");
    let (status, resp) = http(&server.addr, "GET", &location, &[], b"");
    assert_eq!(status, 204, "{resp}");
    assert_eq!(header(&resp, "range"), format!("0-{}", first.len() - 1));
    let range = format!("{}-{}", first.len(), blob.len() - 1);
    let (status, resp) = http(
        &server.addr,
        "PATCH",
        &location,
        &[("Content-Range", &range)],
        second,
    );
    assert_eq!(status, 202, "{resp}");
    // A wrong digest is refused and keeps the session; the right one stores the blob.
    let wrong = format!("sha256:{}", sha256_hex(b"not it"));
    let (status, resp) = http(
        &server.addr,
        "PUT",
        &format!("{location}?digest={wrong}"),
        &[],
        b"",
    );
    assert_eq!(status, 400, "{resp}");
    assert!(resp.contains("digest_invalid"), "{resp}");
    let (status, resp) = http(
        &server.addr,
        "PUT",
        &format!("{location}?digest={digest}"),
        &[],
        b"",
    );
    assert_eq!(status, 201, "{resp}");
    assert!(assert_store_is_sound(&root).contains(&digest));
    let stored = std::fs::read(root.join("blobs/sha256").join(&digest["sha256:".len()..]))
        .expect("stored blob");
    assert!(
        stored == blob,
        "the stored blob differs from the uploaded bytes"
    );
    assert!(session_files(&root).is_empty());
}
