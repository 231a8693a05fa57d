//! Issue 4's concurrency acceptance: 20 clients push overlapping and distinct blobs
//! to one `hoist registry serve` at once while `hoist registry gc` (another process,
//! zero grace, so it sweeps everything it may) runs again and again; every image
//! then pulls back intact, and a last GC still deletes nothing referenced.
#![allow(clippy::unwrap_used)]

mod util;

use std::sync::atomic::{AtomicBool, Ordering};

use util::{Env, RegistryServer};

const CLIENTS: usize = 20;
/// Distinct layers; client `i` pushes layer `i % DISTINCT`, so pairs overlap.
const DISTINCT: usize = 7;
/// GC passes at most; pushes that keep losing their blobs to it get through after.
const GC_RUNS: usize = 30;

#[test]
fn twenty_clients_push_while_gc_runs_and_everything_pulls_back() {
    let env = Env::new();
    let config = env.path("gc.toml");
    std::fs::write(&config, "[gc]\ngrace = \"0s\"\nupload_ttl = \"0s\"\n").unwrap();

    // Images: a small random file per distinct layer, each imported under the names
    // of the clients that push it (same epoch, so the same digests).
    let mut digests = Vec::new();
    for i in 0..CLIENTS {
        let src = env.path(&format!("rootfs{}", i % DISTINCT));
        if !src.exists() {
            std::fs::create_dir_all(&src).unwrap();
            // xorshift: incompressible, different per layer.
            let mut x: u64 = 0x9e37_79b9_7f4a_7c15 ^ (i as u64 + 1);
            let bytes: Vec<u8> = (0..(256 * 1024 + i * 4099))
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    x as u8
                })
                .collect();
            std::fs::write(src.join("data.bin"), bytes).unwrap();
        }
        let info = env.import_at_epoch(&src, &format!("app{i}:v1"), 1_700_000_000);
        digests.push(info["Digest"].as_str().unwrap().to_owned());
    }
    let server = RegistryServer::start(&env);

    // GC from another process, over and over, while the pushes run, at most
    // GC_RUNS times so that the pushes it keeps failing get through in the end.
    let pushing = AtomicBool::new(true);
    let gc_done = AtomicBool::new(false);
    let gc_runs = std::thread::scope(|s| {
        let gc = s.spawn(|| {
            let mut runs = 0;
            while runs == 0 || (runs < GC_RUNS && pushing.load(Ordering::SeqCst)) {
                let out = env
                    .hoist()
                    .args(["registry", "gc", "--root"])
                    .arg(env.path("registry"))
                    .arg("--config")
                    .arg(&config)
                    .output()
                    .unwrap();
                runs += 1;
                if !out.status.success() {
                    gc_done.store(true, Ordering::SeqCst);
                    util::assert_success(&out, "hoist registry gc");
                }
            }
            gc_done.store(true, Ordering::SeqCst);
            runs
        });
        let clients: Vec<_> = (0..CLIENTS)
            .map(|i| {
                let (env, addr, gc_done) = (&env, &server.addr, &gc_done);
                s.spawn(move || {
                    // A blob swept between its upload and the manifest (zero grace)
                    // makes the manifest PUT fail; the client then pushes again. Once
                    // the GC has stopped, the next push must succeed.
                    let dest = format!("{addr}/conc/app{}:v1-{i}", i % 4);
                    loop {
                        let gc_over = gc_done.load(Ordering::SeqCst);
                        let out = env
                            .hoist()
                            .args(["push", &format!("app{i}:v1"), &dest])
                            .output()
                            .unwrap();
                        if out.status.success() {
                            return dest;
                        }
                        assert!(
                            !gc_over,
                            "push {dest} failed with no GC running: {}",
                            String::from_utf8_lossy(&out.stderr)
                        );
                    }
                })
            })
            .collect();
        let dests: Vec<_> = clients.into_iter().map(|c| c.join()).collect();
        pushing.store(false, Ordering::SeqCst);
        let runs = gc.join().unwrap();
        let dests: Vec<String> = dests.into_iter().map(|d| d.unwrap()).collect();
        (runs, dests)
    });
    let (runs, dests) = gc_runs;
    assert!(runs >= 1);

    // A last GC with everything pushed must keep every referenced blob.
    let out = env
        .hoist()
        .args(["registry", "gc", "--json", "--root"])
        .arg(env.path("registry"))
        .arg("--config")
        .arg(&config)
        .output()
        .unwrap();
    util::assert_success(&out, "final gc");

    for (i, dest) in dests.iter().enumerate() {
        let other = Env::new();
        other.ok(&["pull", dest]);
        assert_eq!(
            other.inspect(dest)["Digest"].as_str().unwrap(),
            digests[i],
            "{dest}"
        );
    }
}
