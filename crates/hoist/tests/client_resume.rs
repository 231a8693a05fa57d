//! Transfers that survive broken connections, against real registries (hoist's own
//! and Debian's Distribution): chunked pushes that resume after a cut, pulls that
//! continue a cut blob with `Range` (within one pull and in a later one), and the
//! fallback when a server ignores `Range`. The cuts come from a loopback TCP relay in
//! this file that logs every request it forwards.
#![allow(clippy::unwrap_used)]

mod util;

use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::Output;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use util::{assert_success, Distribution, Env, RegistryServer};

/// A registry process (hoist's or Distribution), killed on drop.
enum Registry {
    /// The server and the temp dir it keeps its store in.
    Hoist {
        server: RegistryServer,
        _home: Env,
    },
    Distribution(Distribution),
}

impl Registry {
    fn hoist() -> Registry {
        let env = Env::new();
        Registry::Hoist {
            server: RegistryServer::start(&env),
            _home: env,
        }
    }

    fn distribution() -> Registry {
        Registry::Distribution(Distribution::start(None))
    }

    fn host(&self) -> String {
        match self {
            Registry::Hoist { server, .. } => server.addr.clone(),
            Registry::Distribution(d) => d.host(),
        }
    }

    fn port(&self) -> u16 {
        match self {
            Registry::Hoist { server, .. } => server
                .addr
                .rsplit_once(':')
                .and_then(|(_, p)| p.parse().ok())
                .expect("port"),
            Registry::Distribution(d) => d.port,
        }
    }
}

/// Where the relay cuts its one connection (once; later connections pass).
#[derive(Clone, Copy)]
enum Cut {
    Never,
    /// After this many request-body bytes (uploads).
    Upload(u64),
    /// After this many response bytes (downloads).
    Download(u64),
}

struct RelayState {
    log: Mutex<Vec<String>>,
    armed: AtomicBool,
    up: AtomicU64,
    down: AtomicU64,
    cut: Cut,
    strip_range: bool,
    upstream: u16,
}

/// A loopback HTTP/1.1 relay to a registry that logs each request
/// (`METHOD PATH range=.. content-range=..`), can cut a connection once, and can drop
/// `Range` headers (a server that ignores them).
struct Relay {
    port: u16,
    state: Arc<RelayState>,
}

impl Relay {
    fn start(upstream: u16, cut: Cut, strip_range: bool) -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let state = Arc::new(RelayState {
            log: Mutex::new(Vec::new()),
            armed: AtomicBool::new(!matches!(cut, Cut::Never)),
            up: AtomicU64::new(0),
            down: AtomicU64::new(0),
            cut,
            strip_range,
            upstream,
        });
        let s = state.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { return };
                let s = s.clone();
                std::thread::spawn(move || relay_connection(conn, s));
            }
        });
        Relay { port, state }
    }

    fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    fn log(&self) -> Vec<String> {
        self.state.log.lock().unwrap().clone()
    }

    fn cut_happened(&self) -> bool {
        self.log().iter().any(|l| l == "CUT")
    }
}

fn cut_now(state: &RelayState, a: &TcpStream, b: &TcpStream) -> bool {
    if state.armed.swap(false, Ordering::SeqCst) {
        state.log.lock().unwrap().push("CUT".to_owned());
        let _ = a.shutdown(Shutdown::Both);
        let _ = b.shutdown(Shutdown::Both);
        true
    } else {
        false
    }
}

fn relay_connection(client: TcpStream, state: Arc<RelayState>) {
    let Ok(server) = TcpStream::connect(("127.0.0.1", state.upstream)) else {
        return;
    };
    // Responses: copied as they come, counted for Cut::Download.
    {
        let state = state.clone();
        let mut from = server.try_clone().unwrap();
        let mut to = client.try_clone().unwrap();
        let (c, s) = (client.try_clone().unwrap(), server.try_clone().unwrap());
        std::thread::spawn(move || {
            let mut buf = vec![0u8; 16 << 10];
            loop {
                let n = match from.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => n,
                };
                if to.write_all(&buf[..n]).is_err() {
                    break;
                }
                let total = state.down.fetch_add(n as u64, Ordering::SeqCst) + n as u64;
                if let Cut::Download(limit) = state.cut {
                    if total > limit && cut_now(&state, &c, &s) {
                        return;
                    }
                }
            }
            let _ = to.shutdown(Shutdown::Write);
        });
    }
    // Requests: parsed so they can be logged, bodies copied by Content-Length.
    let mut reader = BufReader::new(client.try_clone().unwrap());
    let mut out = server.try_clone().unwrap();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            let _ = out.shutdown(Shutdown::Write);
            return;
        }
        let mut head = line.clone();
        let (mut range, mut content_range, mut length) = (None, None, 0u64);
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h).unwrap_or(0) == 0 {
                return;
            }
            if h.trim().is_empty() {
                head.push_str("\r\n");
                break;
            }
            let (name, value) = h.split_once(':').unwrap_or((&h, ""));
            let value = value.trim().to_owned();
            match name.trim().to_ascii_lowercase().as_str() {
                "range" => {
                    range = Some(value);
                    if state.strip_range {
                        continue;
                    }
                }
                "content-range" => content_range = Some(value),
                "content-length" => length = value.parse().unwrap(),
                "transfer-encoding" => panic!("relay: chunked request bodies are not supported"),
                _ => {}
            }
            head.push_str(&h);
        }
        let mut words = line.split_whitespace();
        let (method, path) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
        state.log.lock().unwrap().push(format!(
            "{method} {path} range={} content-range={}",
            range.as_deref().unwrap_or("-"),
            content_range.as_deref().unwrap_or("-")
        ));
        if out.write_all(head.as_bytes()).is_err() {
            return;
        }
        let mut left = length;
        let mut buf = vec![0u8; 16 << 10];
        while left > 0 {
            let want = buf.len().min(left as usize);
            let n = match reader.read(&mut buf[..want]) {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            if out.write_all(&buf[..n]).is_err() {
                return;
            }
            left -= n as u64;
            let total = state.up.fetch_add(n as u64, Ordering::SeqCst) + n as u64;
            if let Cut::Upload(limit) = state.cut {
                if total > limit && cut_now(&state, &client, &server) {
                    return;
                }
            }
        }
    }
}

/// An image with one uncompressed layer of `mib` MiB of incompressible bytes.
fn big_image(env: &Env, name: &str, mib: usize) -> serde_json::Value {
    let root = env.path("big-rootfs");
    fs::create_dir_all(&root).unwrap();
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut data = Vec::with_capacity(mib << 20);
    while data.len() < mib << 20 {
        // xorshift64*
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        data.extend_from_slice(&x.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes());
    }
    fs::write(root.join("payload.bin"), &data).unwrap();
    env.ok(&[
        "image",
        "import",
        "--compression",
        "none",
        root.to_str().unwrap(),
        name,
    ]);
    env.inspect(name)
}

fn layer(image: &serde_json::Value) -> (String, u64) {
    let l = &image["Manifest"]["layers"][0];
    (
        l["digest"].as_str().unwrap().to_owned(),
        l["size"].as_u64().unwrap(),
    )
}

fn run(env: &Env, args: &[&str]) -> Output {
    env.hoist()
        .env("DOCKER_CONFIG", env.path("no-docker-config"))
        .args(args)
        .output()
        .unwrap()
}

fn json_ok(env: &Env, args: &[&str]) -> serde_json::Value {
    let out = run(env, args);
    assert_success(&out, &format!("hoist {}", args.join(" ")));
    serde_json::from_slice(&out.stdout).unwrap()
}

fn partials(env: &Env) -> Vec<(PathBuf, u64)> {
    let mut out = Vec::new();
    if let Ok(entries) = fs::read_dir(env.home().join("tmp")) {
        for e in entries.flatten() {
            if e.file_name().to_string_lossy().starts_with("partial-") {
                out.push((e.path(), e.metadata().unwrap().len()));
            }
        }
    }
    out
}

/// Push `big:1` chunked through a relay that cuts the upload after 2.5 MiB, then
/// pull it back straight from the registry; returns the relay's log.
fn chunked_push_survives_a_cut(registry: &Registry) -> Vec<String> {
    let env = Env::new();
    let img = big_image(&env, "big:1", 6);
    let (layer_digest, layer_size) = layer(&img);
    let relay = Relay::start(registry.port(), Cut::Upload(5 << 19), false);
    let dest = format!("{}/team/big:v1", relay.host());
    let out = run(
        &env,
        &[
            "--json",
            "push",
            "--upload",
            "chunked",
            "--chunk-size",
            "1048576",
            "big:1",
            &dest,
        ],
    );
    assert_success(&out, "hoist push --upload chunked");
    let log = relay.log();
    assert!(relay.cut_happened(), "{log:#?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("retry 1"), "{stderr}");
    let pushed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(pushed["Digest"], img["Digest"]);
    assert_eq!(pushed["BlobsPushed"], 2, "{pushed}");

    // Chunks of 1 MiB with Content-Range, each starting where the last ended.
    let patches: Vec<&String> = log.iter().filter(|l| l.starts_with("PATCH ")).collect();
    assert!(patches.len() >= 7, "{log:#?}");
    assert!(
        log.iter()
            .any(|l| l.starts_with("PATCH ") && l.ends_with("content-range=0-1048575")),
        "{log:#?}"
    );
    let last_end = layer_size - 1;
    assert!(
        log.iter()
            .any(|l| l.starts_with("PATCH ") && l.ends_with(&format!("-{last_end}"))),
        "no chunk ends the {layer_size}-byte layer: {log:#?}"
    );
    // After the cut: the upload's status was asked for (GET on the upload URL).
    let cut = log.iter().position(|l| l == "CUT").unwrap();
    assert!(
        log[cut..]
            .iter()
            .any(|l| l.starts_with("GET ") && l.contains("/blobs/uploads/")),
        "{log:#?}"
    );
    assert!(
        log.iter()
            .any(|l| l.starts_with("PUT ") && l.contains(&format!("digest={layer_digest}"))),
        "{log:#?}"
    );

    // Pull back from the registry itself: every digest is checked on the way in.
    let other = Env::new();
    let src = format!("{}/team/big:v1", registry.host());
    let pulled = json_ok(&other, &["--json", "pull", &src]);
    assert_eq!(pulled["Digest"], img["Digest"], "{pulled}");
    assert_eq!(pulled["Id"], img["Id"], "{pulled}");
    assert!(pulled["BytesPulled"].as_u64().unwrap() > layer_size);
    log
}

#[test]
fn chunked_push_to_hoists_registry_resumes_after_a_cut_and_pulls_back() {
    let registry = Registry::hoist();
    let log = chunked_push_survives_a_cut(&registry);
    // hoist's registry keeps what arrived of the cut chunk and says so: the upload
    // continues mid-chunk rather than from the start.
    let cut = log.iter().position(|l| l == "CUT").unwrap();
    let resumed = log[cut..].iter().find(|l| l.starts_with("PATCH ")).unwrap();
    let start: u64 = resumed
        .rsplit("content-range=")
        .next()
        .unwrap()
        .split('-')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(start > 0, "{log:#?}");
    assert!(
        !log[cut..].iter().any(|l| l.starts_with("POST ")),
        "the upload was restarted instead of resumed: {log:#?}"
    );
}

#[test]
fn chunked_push_to_distribution_survives_a_cut_and_pulls_back() {
    let registry = Registry::distribution();
    chunked_push_survives_a_cut(&registry);
}

#[test]
fn a_cut_pull_is_resumed_with_range_by_the_next_pull_and_within_one_pull() {
    let registry = Registry::hoist();
    let env = Env::new();
    let img = big_image(&env, "big:1", 6);
    let (layer_digest, layer_size) = layer(&img);
    let direct = format!("{}/team/big:v1", registry.host());
    json_ok(&env, &["--json", "push", "big:1", &direct]);

    // 1. No retries: the pull fails, and the bytes that came stay in a partial file.
    let relay = Relay::start(registry.port(), Cut::Download(2 << 20), false);
    let src = format!("{}/team/big:v1", relay.host());
    let other = Env::new();
    let out = run(&other, &["--json", "pull", "--retries", "0", &src]);
    assert!(!out.status.success(), "the cut pull should fail");
    assert!(relay.cut_happened());
    let parts = partials(&other);
    assert_eq!(parts.len(), 1, "{parts:?}");
    let (part_path, have) = parts[0].clone();
    assert!(
        part_path
            .to_string_lossy()
            .ends_with(&layer_digest.replace(':', "-")),
        "{part_path:?}"
    );
    assert!(have > 0 && have < layer_size, "{have} of {layer_size}");
    assert!(other.ok(&["image", "ls"]).lines().count() <= 1);

    // 2. The next pull asks for the rest, gets it, and verifies the whole digest.
    let pulled = json_ok(&other, &["--json", "pull", &src]);
    assert_eq!(pulled["Digest"], img["Digest"], "{pulled}");
    assert_eq!(pulled["Id"], img["Id"], "{pulled}");
    assert_eq!(pulled["BytesResumed"], have, "{pulled}");
    let log = relay.log();
    let blob_gets: Vec<&String> = log
        .iter()
        .filter(|l| l.starts_with(&format!("GET /v2/team/big/blobs/{layer_digest}")))
        .collect();
    assert_eq!(blob_gets.len(), 2, "{log:#?}");
    assert!(blob_gets[0].contains("range=-"), "{log:#?}");
    assert!(
        blob_gets[1].contains(&format!("range=bytes={have}-")),
        "{log:#?}"
    );
    assert!(partials(&other).is_empty());

    // 3. With retries (the default), one pull resumes by itself.
    let relay = Relay::start(registry.port(), Cut::Download(3 << 20), false);
    let third = Env::new();
    let out = run(
        &third,
        &["--json", "pull", &format!("{}/team/big:v1", relay.host())],
    );
    assert_success(&out, "hoist pull through a cutting relay");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("retry 1") && stderr.contains("resuming at"),
        "{stderr}"
    );
    let pulled: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(pulled["Digest"], img["Digest"], "{pulled}");
    let log = relay.log();
    let ranged: Vec<&String> = log
        .iter()
        .filter(|l| l.contains(&format!("/blobs/{layer_digest}")) && l.contains("range=bytes="))
        .collect();
    assert_eq!(ranged.len(), 1, "{log:#?}");
    assert_eq!(
        third.inspect(&format!("{}/team/big:v1", relay.host()))["Id"],
        img["Id"]
    );
}

#[test]
fn a_server_that_ignores_range_gets_a_full_download() {
    let registry = Registry::hoist();
    let env = Env::new();
    let img = big_image(&env, "big:1", 4);
    let (_, layer_size) = layer(&img);
    json_ok(
        &env,
        &[
            "--json",
            "push",
            "big:1",
            &format!("{}/r/big:1", registry.host()),
        ],
    );
    let cutter = Relay::start(registry.port(), Cut::Download(1 << 20), false);
    let other = Env::new();
    let out = run(
        &other,
        &[
            "pull",
            "--retries",
            "0",
            &format!("{}/r/big:1", cutter.host()),
        ],
    );
    assert!(!out.status.success());
    assert_eq!(partials(&other).len(), 1);

    // This relay drops Range, so the registry answers 200 with the whole blob.
    let deaf = Relay::start(registry.port(), Cut::Never, true);
    let pulled = json_ok(
        &other,
        &["--json", "pull", &format!("{}/r/big:1", deaf.host())],
    );
    assert_eq!(pulled["Digest"], img["Digest"], "{pulled}");
    assert_eq!(pulled["BytesResumed"], 0, "{pulled}");
    let log = deaf.log();
    assert!(
        log.iter()
            .any(|l| l.contains("/blobs/") && l.contains("range=bytes=")),
        "the client should still have asked for a range: {log:#?}"
    );
    assert!(partials(&other).is_empty());
    assert!(pulled["BytesPulled"].as_u64().unwrap() >= layer_size);
}

#[test]
fn top_level_tag_is_image_tag() {
    let env = Env::new();
    let img = env.import_busybox("busybox:1");
    env.ok(&["tag", "busybox:1", "example.com/team/bb:v2"]);
    let tagged = env.inspect("example.com/team/bb:v2");
    assert_eq!(tagged["Id"], img["Id"]);
    assert_eq!(tagged["Digest"], img["Digest"]);
    // Same rules as `hoist image tag`.
    let err = env.fails(&[
        "tag",
        "busybox:1",
        &format!("bb@{}", img["Digest"].as_str().unwrap()),
    ]);
    assert!(err.contains("give a tag, not a digest"), "{err}");
    let err = env.fails(&["tag", "nope:1", "bb:2"]);
    assert!(err.contains("nope"), "{err}");
}
