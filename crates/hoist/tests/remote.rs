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

/// `moto_server` (`pip install 'moto[server]'`) on a free loopback port until dropped.
struct Moto {
    child: std::process::Child,
    port: u16,
}

impl Moto {
    fn start() -> Moto {
        let port = util::free_port();
        let child = Command::new("moto_server")
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("moto is installed (pip install 'moto[server]')");
        let moto = Moto { child, port };
        for _ in 0..600 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return moto;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        panic!("moto_server did not start");
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn ecr_flags_need_an_ecr_destination_and_a_missing_ecr_repository_names_the_flag() {
    let env = Env::new();
    let err = env.fails(&["push", "app:v1", "127.0.0.1:5000/app:v1", "--ecr-scan"]);
    assert!(
        err.contains("--ecr-scan: 127.0.0.1:5000 is not an Amazon ECR registry"),
        "{err}"
    );
    let err = env.fails(&[
        "push",
        "app:v1",
        "127.0.0.1:5000/app:v1",
        "--create-repository",
    ]);
    assert!(
        err.contains("--create-repository: 127.0.0.1:5000 is not"),
        "{err}"
    );

    // AWS is moto, through the child's environment only.
    let moto = Moto::start();
    let out = env
        .hoist()
        .env(
            "AWS_ENDPOINT_URL_ECR",
            format!("http://127.0.0.1:{}", moto.port),
        )
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_CONFIG_FILE", "/nonexistent/aws-config")
        .env(
            "AWS_SHARED_CREDENTIALS_FILE",
            "/nonexistent/aws-credentials",
        )
        .env_remove("AWS_PROFILE")
        .args([
            "push",
            "app:v1",
            "123456789012.dkr.ecr.eu-west-2.amazonaws.com/team/missing:v1",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("ECR repository team/missing does not exist in 123456789012.dkr.ecr.eu-west-2.amazonaws.com: pass --create-repository"),
        "{err}"
    );
}
