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
        .args(["--health-path", "/healthz"])
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

#[test]
fn a_service_behind_an_https_listener_answers_over_tls_and_its_address_keeps_one_certificate() {
    let w = World::running(&[("secure:1", "secure 1", true), ("plain:1", "plain 1", true)]);
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    // Relative paths in a service file are taken from its directory.
    std::fs::write(w.env.path("cert.pem"), ck.cert.pem()).unwrap();
    std::fs::write(w.env.path("key.pem"), ck.signing_key.serialize_pem()).unwrap();
    let file = w.env.path("secure.yml");
    std::fs::write(
        &file,
        format!(
            "name: secure\nimage: secure:1\ncount: 1\nstop_timeout: 2s\nhealth_check: {{path: /healthz, interval: 1s, timeout: 500ms}}\nlistener: {{addr: 127.0.0.1:{}, tls: {{cert: cert.pem, key: key.pem}}}}\n",
            w.port
        ),
    )
    .unwrap();
    let out = w
        .env
        .hoist()
        .arg("deploy")
        .arg(&file)
        .current_dir("/")
        .output()
        .unwrap();
    assert_ok(&out, "deploy behind https", &w);

    let cert = ureq::tls::Certificate::from_pem(ck.cert.pem().as_bytes()).unwrap();
    let agent = ureq::Agent::config_builder()
        .tls_config(
            ureq::tls::TlsConfig::builder()
                .root_certs(ureq::tls::RootCerts::new_with_certs(&[cert]))
                .build(),
        )
        .build()
        .new_agent();
    let body = agent
        .get(format!("https://localhost:{}/", w.port))
        .call()
        .unwrap()
        .body_mut()
        .read_to_string()
        .unwrap();
    assert_eq!(body.trim(), "secure 1");
    assert_eq!(
        get(w.addr(), "/"),
        None,
        "no plain HTTP on an HTTPS listener"
    );

    // Another service may share the address only with the same certificate.
    let err = w
        .env
        .fails(&["deploy", "plain:1", "--listen", &w.addr().to_string()]);
    assert!(
        err.contains("service secure serves") && err.contains("share its certificate"),
        "{err}"
    );
    // A key that does not fit is refused before anything is recorded.
    let other = rcgen::generate_simple_self_signed(vec!["x".to_owned()]).unwrap();
    std::fs::write(w.env.path("key.pem"), other.signing_key.serialize_pem()).unwrap();
    let err = w.env.fails(&["deploy", file.to_str().unwrap()]);
    assert!(
        err.contains("listener.tls") && err.contains("key.pem"),
        "{err}"
    );
    // The proxy keeps the certificate it loaded, and a file gone bad blocks no
    // other change: the service can still be removed.
    let out = w
        .env
        .hoist()
        .args(["service", "rm", "secure"])
        .output()
        .unwrap();
    assert_ok(&out, "service rm", &w);
    eventually("the service is gone", || {
        w.env.ok(&["--json", "services", "ls"]).trim() == "[]"
    });
}
