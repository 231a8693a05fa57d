//! The deployment commands in their command-line form: `hoist deploy IMAGE
//! --service ...` without a service file, `hoist scale`, `hoist stop`, `hoist ps`,
//! `hoist events` and `hoist services ls`, against the real daemon and proxy; and
//! the images services use surviving `hoist image rm` and `hoist prune`.
#![allow(clippy::unwrap_used)]

mod util;

use util::world::{assert_ok, body, eventually, get, World};

fn task_ids(w: &World, service: &str) -> Vec<String> {
    let out = w.env.ok(&["--json", "ps", service]);
    let tasks: Vec<serde_json::Value> = serde_json::from_str(&out).unwrap();
    tasks
        .iter()
        .map(|t| t["id"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn an_image_deployed_by_flags_scales_stops_and_starts_without_a_new_version() {
    let w = World::running(&[("web:1", "version 1", true), ("web:2", "version 2", true)]);
    let listen = w.addr().to_string();

    // A new service needs a listener.
    let err = w.env.fails(&["deploy", "web:1", "--service", "web"]);
    assert!(err.contains("--listen"), "{err}");
    let err = w.env.fails(&[
        "deploy",
        "web:1",
        "--listen",
        &listen,
        "--strategy",
        "canary:10%",
    ]);
    assert!(err.contains("--strategy"), "{err}");
    assert!(err.contains("wrong number of parts"), "{err}");

    // The service name defaults to the image's repository name.
    let out = w
        .env
        .hoist()
        .args(["deploy", "web:1", "--replicas", "2", "--listen", &listen])
        .args(["--strategy", "rolling:100%:200%", "-e", "MODE=test"])
        .output()
        .unwrap();
    assert_ok(&out, "deploy by flags", &w);
    assert_eq!(body(w.addr()).as_deref(), Some("version 1"));
    let first = task_ids(&w, "web");
    assert_eq!(first.len(), 2);

    // Scaling up keeps the running tasks: same version, one more task.
    let out = w.env.hoist().args(["scale", "web", "3"]).output().unwrap();
    assert_ok(&out, "scale to 3", &w);
    let three = task_ids(&w, "web");
    assert_eq!(three.len(), 3);
    assert!(
        first.iter().all(|t| three.contains(t)),
        "{first:?} {three:?}"
    );

    // A new image for the existing service keeps its count and listener.
    let out = w
        .env
        .hoist()
        .args(["deploy", "web:2", "--service", "web"])
        .output()
        .unwrap();
    assert_ok(&out, "deploy web:2", &w);
    eventually("three version 2 tasks", || {
        let ids = task_ids(&w, "web");
        ids.len() == 3 && ids.iter().all(|t| !three.contains(t))
    });
    assert_eq!(body(w.addr()).as_deref(), Some("version 2"));

    // Down to one, then stopped: nothing answers, the service stays.
    let out = w.env.hoist().args(["scale", "web", "1"]).output().unwrap();
    assert_ok(&out, "scale to 1", &w);
    assert_eq!(task_ids(&w, "web").len(), 1);
    let out = w.env.hoist().args(["stop", "web"]).output().unwrap();
    assert_ok(&out, "stop", &w);
    assert!(task_ids(&w, "web").is_empty());
    let status = get(w.addr(), "/").map(|(s, _)| s);
    assert_eq!(status, Some(503), "a stopped service has no target");
    let ls: serde_json::Value =
        serde_json::from_str(&w.env.ok(&["--json", "services", "ls"])).unwrap();
    assert_eq!(ls[0]["name"], "web");
    assert_eq!(ls[0]["desired"], 0);
    assert_eq!(ls[0]["running"], 0);

    // And started again, on the same version.
    let out = w.env.hoist().args(["scale", "web", "2"]).output().unwrap();
    assert_ok(&out, "scale to 2", &w);
    assert_eq!(body(w.addr()).as_deref(), Some("version 2"));
    let all: Vec<serde_json::Value> = serde_json::from_str(&w.env.ok(&["--json", "ps"])).unwrap();
    assert_eq!(all.len(), 2);
    assert!(all.iter().all(|t| t["service"] == "web"));

    let events = w.env.ok(&["events", "web"]);
    for want in [
        "desired count 2 -> 3",
        "desired count 3 -> 1",
        "desired count 1 -> 0 (hoist stop)",
    ] {
        assert!(events.contains(want), "no {want:?} in:\n{events}");
    }
    // The service's image cannot be removed from under it; an older one can, and
    // a prune after that leaves what the service needs to start tasks.
    let err = w.env.fails(&["image", "rm", "-f", "web:2"]);
    assert!(err.contains("is used by service web"), "{err}");
    w.env.ok(&["image", "rm", "web:1"]);
    w.env.ok(&["prune"]);
    let out = w.env.hoist().args(["scale", "web", "3"]).output().unwrap();
    assert_ok(&out, "scale to 3 after a prune", &w);
    assert_eq!(task_ids(&w, "web").len(), 3);

    let err = w.env.fails(&["scale", "nope", "2"]);
    assert!(err.contains("no service named \"nope\""), "{err}");
}
