//! Services whose file gives no `health_check`: the image's `HEALTHCHECK` runs
//! inside each task (by the task's helper, not the daemon), the proxy reads the
//! verdict, and the controller's circuit breaker acts on it as on HTTP checks.
//! Real `hoist proxy` and `hoist daemon`, images built by `hoist build`. Root.
#![allow(clippy::unwrap_used)]

mod util;

use std::path::PathBuf;

use util::world::{assert_ok, body, eventually, World};

/// Builds `name`: busybox httpd serving `body`, with this `HEALTHCHECK` line
/// (none when empty).
fn image(w: &World, name: &str, body: &str, healthcheck: &str) {
    w.build(
        name,
        &format!(
            "FROM busybox\nRUN mkdir -p /www && echo '{body}' > /www/index.html\nEXPOSE 8080\n{healthcheck}\nCMD [\"httpd\", \"-f\", \"-p\", \"8080\", \"-h\", \"/www\"]\n"
        ),
    );
}

/// A service file with no `health_check`.
fn service_file(w: &World, name: &str, extra: &str) -> PathBuf {
    let path = w.env.path(&format!("{name}.yml"));
    std::fs::write(
        &path,
        format!(
            "name: {name}\nimage: {name}:1\ncount: 2\nstop_timeout: 2s\nlistener: {{addr: 127.0.0.1:{}}}\n{extra}",
            w.port
        ),
    )
    .unwrap();
    path
}

fn proxy_config(w: &World) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(w.proxy_config()).unwrap()).unwrap()
}

/// `(state, reason)` of every target the proxy reports.
fn targets(w: &World) -> Vec<serde_json::Value> {
    let addr = std::fs::read_to_string(w.env.home().join("proxy/admin.addr")).unwrap();
    let (status, text) = util::world::get(addr.trim().parse().unwrap(), "/targets").unwrap();
    assert_eq!(status, 200);
    serde_json::from_str(&text).unwrap()
}

#[test]
fn an_image_healthcheck_that_passes_deploys_and_keeps_probing_while_the_daemon_is_down() {
    let mut w = World::running(&[]);
    image(
        &w,
        "hc:1",
        "hc 1",
        "HEALTHCHECK --interval=1s --timeout=3s --retries=2 CMD [\"wget\", \"-q\", \"-O\", \"/dev/null\", \"http://127.0.0.1:8080/\"]",
    );
    let file = service_file(&w, "hc", "");
    assert_ok(&w.deploy(&file, "hc:1"), "deploy", &w);
    assert_eq!(body(w.addr()).as_deref(), Some("hc 1"));
    let events = w.env.ok(&["service", "events", "hc"]);
    assert!(events.contains("task-healthy"), "{events}");

    // The proxy reads each task's verdict instead of probing it over HTTP.
    let config = proxy_config(&w);
    let group = &config["target_groups"][0];
    assert_eq!(group["health_check"]["mode"], "reported", "{config}");
    let files: Vec<PathBuf> = group["targets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| PathBuf::from(t["netns"]["health_file"].as_str().unwrap()))
        .collect();
    assert_eq!(files.len(), 2);

    // With the daemon down, the helpers go on probing and the proxy on serving.
    let last_end = |f: &PathBuf| -> String {
        let v: serde_json::Value = serde_json::from_slice(&std::fs::read(f).unwrap()).unwrap();
        assert_eq!(v["Status"], "healthy", "{v}");
        v["Log"].as_array().unwrap().last().unwrap()["End"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    w.daemon.as_mut().unwrap().kill9();
    let before: Vec<String> = files.iter().map(last_end).collect();
    eventually("every task is probed again with the daemon down", || {
        files.iter().zip(&before).all(|(f, b)| last_end(f) != *b)
    });
    assert!(targets(&w).iter().all(|t| t["state"] == "healthy"));
    assert_eq!(body(w.addr()).as_deref(), Some("hc 1"));
    w.start_daemon();
}

#[test]
fn an_image_healthcheck_that_fails_trips_the_circuit_breaker_and_rolls_back() {
    let w = World::running(&[]);
    // Version 1 has no HEALTHCHECK: its tasks are healthy once they run.
    image(&w, "hcbad:1", "plain 1", "");
    image(
        &w,
        "hcbad:2",
        "broken 2",
        "HEALTHCHECK --interval=1s --timeout=3s --retries=2 CMD test -f /www/ready",
    );
    let file = service_file(&w, "hcbad", "deployment: {circuit_breaker: 2}\n");
    assert_ok(&w.deploy(&file, "hcbad:1"), "first deploy", &w);
    // Healthy once running, which is before httpd listens: wait for it.
    eventually("version 1 serves", || {
        body(w.addr()).as_deref() == Some("plain 1")
    });
    let config = proxy_config(&w);
    assert!(
        config["target_groups"][0]["health_check"].is_null(),
        "{config}"
    );

    let out = w.deploy(&file, "hcbad:2");
    assert!(
        !out.status.success(),
        "a version failing its HEALTHCHECK must fail the deploy"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("circuit breaker"), "{stderr}");
    let events = w.env.ok(&["service", "events", "hcbad"]);
    assert!(
        events.contains("unhealthy") && events.contains("health check failed (exit code 1"),
        "{events}"
    );
    // Version 1 kept serving and still does.
    assert_eq!(body(w.addr()).as_deref(), Some("plain 1"));
    eventually("only version 1 tasks remain", || {
        let tasks = w.tasks("hcbad");
        tasks.len() == 2 && tasks.iter().all(|t| t["phase"] == "running")
    });
}
