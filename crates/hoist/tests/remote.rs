//! `hoist push` / `hoist pull` against a real registry (Debian's `docker-registry`,
//! i.e. CNCF Distribution) on loopback, checked with skopeo.
#![allow(clippy::unwrap_used)]

mod util;

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use util::{assert_success, skopeo, Distribution, Env};

/// A Docker config directory, empty or with `auths` for `host`.
fn docker_config(env: &Env, name: &str, auth: Option<(&str, &str, &str)>) -> PathBuf {
    let dir = env.path(name);
    fs::create_dir_all(&dir).unwrap();
    if let Some((host, user, password)) = auth {
        let mut b64 = Command::new("base64")
            .args(["-w0"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        b64.stdin
            .take()
            .unwrap()
            .write_all(format!("{user}:{password}").as_bytes())
            .unwrap();
        let out = b64.wait_with_output().unwrap();
        let enc = String::from_utf8(out.stdout).unwrap();
        fs::write(
            dir.join("config.json"),
            format!(r#"{{"auths":{{"{host}":{{"auth":"{enc}"}}}}}}"#),
        )
        .unwrap();
    }
    dir
}

fn hoist(env: &Env, config: &Path, args: &[&str]) -> Output {
    env.hoist()
        .env("DOCKER_CONFIG", config)
        .args(args)
        .output()
        .unwrap()
}

fn ok_json(env: &Env, config: &Path, args: &[&str]) -> serde_json::Value {
    let out = hoist(env, config, args);
    assert_success(&out, &format!("hoist {}", args.join(" ")));
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "hoist {}: stdout is not JSON ({e}):\n{}",
            args.join(" "),
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

fn failing(env: &Env, config: &Path, args: &[&str]) -> String {
    let out = hoist(env, config, args);
    assert!(
        !out.status.success(),
        "hoist {} should fail; stdout:\n{}",
        args.join(" "),
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn push_then_pull_keeps_the_digest_and_second_push_skips_every_blob() {
    let reg = Distribution::start(None);
    let env = Env::new();
    let cfg = docker_config(&env, "docker", None);
    let img = env.import_busybox("busybox:1");
    let digest = img["Digest"].as_str().unwrap().to_owned();
    let dest = format!("{}/team/bb:v1", reg.host());

    // Text mode: one line per blob, then the summary.
    let out = hoist(&env, &cfg, &["push", "busybox:1", &dest]);
    assert_success(&out, "hoist push");
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(text.matches(": pushed (").count(), 2, "{text}");
    assert!(text.contains(&digest), "{text}");

    // The registry serves the very same manifest.
    let remote: serde_json::Value = serde_json::from_str(&skopeo(&[
        "inspect",
        "--tls-verify=false",
        &format!("docker://{dest}"),
    ]))
    .unwrap();
    assert_eq!(remote["Digest"], digest.as_str());

    // Again: every blob is already there.
    let again = ok_json(&env, &cfg, &["--json", "push", "busybox:1", &dest]);
    assert_eq!(again["BlobsPushed"], 0, "{again}");
    assert_eq!(again["BlobsSkipped"], 2, "{again}");
    assert_eq!(again["Digest"], digest.as_str());
    assert_eq!(again["Target"], dest.as_str());

    // Pull into a fresh store.
    let other = Env::new();
    let pulled = ok_json(&other, &cfg, &["--json", "pull", &dest]);
    assert_eq!(pulled["Digest"], digest.as_str(), "{pulled}");
    assert_eq!(pulled["BlobsPulled"], 2, "{pulled}");
    let back = other.inspect(&dest);
    assert_eq!(back["Digest"], digest.as_str());
    assert_eq!(back["RootFS"], img["RootFS"]);
    assert_eq!(back["Id"], img["Id"]);
    // Pulling again downloads nothing.
    let twice = ok_json(&other, &cfg, &["--json", "pull", &dest]);
    assert_eq!(twice["BlobsPulled"], 0, "{twice}");
    assert_eq!(twice["BlobsSkipped"], 2, "{twice}");
}

#[test]
fn pulling_a_missing_tag_names_the_ref_and_the_registry_error() {
    let reg = Distribution::start(None);
    let env = Env::new();
    let cfg = docker_config(&env, "docker", None);
    let src = format!("{}/nobody/here:nope", reg.host());
    let err = failing(&env, &cfg, &["pull", &src]);
    assert!(err.contains(&src), "{err}");
    assert!(
        err.contains("NAME_UNKNOWN") || err.contains("MANIFEST_UNKNOWN"),
        "{err}"
    );
    assert!(err.contains("404"), "{err}");
    // Nothing was recorded.
    let ls = env.ok(&["image", "ls"]);
    assert!(!ls.contains("nobody/here"), "{ls}");
}

#[test]
fn htpasswd_registry_needs_the_docker_config_credentials() {
    let reg = Distribution::start(Some(("alice", "s3cret")));
    let env = Env::new();
    env.import_busybox("busybox:1");
    let dest = format!("{}/private/bb:1", reg.host());

    let none = docker_config(&env, "none", None);
    let err = failing(&env, &none, &["push", "busybox:1", &dest]);
    assert!(err.contains("401"), "{err}");
    assert!(err.contains("no credentials for"), "{err}");

    let wrong = docker_config(&env, "wrong", Some((&reg.host(), "alice", "nope")));
    let err = failing(&env, &wrong, &["push", "busybox:1", &dest]);
    assert!(err.contains("401") && err.contains("refused"), "{err}");

    let good = docker_config(
        &env,
        "good",
        Some((&format!("http://{}/v2/", reg.host()), "alice", "s3cret")),
    );
    let pushed = ok_json(&env, &good, &["--json", "push", "busybox:1", &dest]);
    assert_eq!(pushed["BlobsPushed"], 2, "{pushed}");

    let other = Env::new();
    let pulled = ok_json(&other, &good, &["--json", "pull", &dest]);
    assert_eq!(pulled["Digest"], pushed["Digest"]);
    let err = failing(&other, &none, &["pull", &dest]);
    assert!(err.contains("401"), "{err}");
}
