//! `hoist registry serve` with authentication and TLS, driven by skopeo (Docker's
//! token flow as containers/image speaks it), by hoist's own push and pull, and by a
//! tiny HTTP/1.1 client for the exact challenge and token shapes.

mod util;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;

use base64::Engine as _;
use util::{assert_success, skopeo, Env, RegistryServer};

/// `hoist registry serve`, with `config` (TOML text written next to the registry)
/// if given; over https when the config has `[tls]`.
fn start(env: &Env, config: Option<&str>) -> RegistryServer {
    let root = env.path("registry");
    match config {
        Some(text) => {
            let path = env.path("registry.toml");
            std::fs::write(&path, text).expect("write config");
            let scheme = if text.contains("[tls]") {
                "https"
            } else {
                "http"
            };
            RegistryServer::start_with(env, &root, Some(&path), scheme)
        }
        None => RegistryServer::start_with(env, &root, None, "http"),
    }
}

impl RegistryServer {
    /// `hoist registry token create` with `args`; returns (id, secret).
    fn token(&self, env: &Env, args: &[&str]) -> (String, String) {
        let out = env
            .hoist()
            .args(["registry", "token", "create", "--root"])
            .arg(&self.root)
            .args(args)
            .output()
            .expect("run hoist");
        assert_success(&out, "hoist registry token create");
        let secret = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        let stderr = String::from_utf8_lossy(&out.stderr);
        let id = stderr
            .split_whitespace()
            .nth(2)
            .expect("created token ID")
            .to_owned();
        assert!(secret.contains(&id), "{secret} / {stderr}");
        (id, secret)
    }
}

struct Resp {
    status: u16,
    head: String,
    body: String,
}

impl Resp {
    fn header(&self, name: &str) -> Option<String> {
        self.head.split("\r\n").find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_owned())
        })
    }

    fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }

    fn code(&self) -> String {
        self.json()["errors"][0]["code"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }
}

/// One plain-HTTP request (no body) on a fresh connection.
fn get(addr: &str, method: &str, path: &str, auth: Option<&str>) -> Resp {
    let mut s = TcpStream::connect(addr).expect("connect");
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: 0\r\n"
    );
    if let Some(a) = auth {
        req.push_str(&format!("Authorization: {a}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).expect("write");
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).expect("read");
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").expect("end of headers");
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .expect("status");
    // Bodies here are small JSON; drop chunked framing if any.
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        body.split("\r\n")
            .skip(1)
            .step_by(2)
            .collect::<Vec<_>>()
            .join("")
    } else {
        body.to_owned()
    };
    Resp {
        status,
        head: head.to_owned(),
        body,
    }
}

fn basic(user: &str, password: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
    )
}

/// A bearer token from the registry's token endpoint.
fn bearer(addr: &str, scope: &str, auth: Option<&str>) -> (String, serde_json::Value) {
    let r = get(
        addr,
        "GET",
        &format!("/token?service=hoist-registry&scope={scope}"),
        auth,
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let v = r.json();
    let t = v["token"].as_str().expect("token").to_owned();
    assert_eq!(v["access_token"], v["token"]);
    (format!("Bearer {t}"), claims(&t))
}

fn claims(token: &str) -> serde_json::Value {
    let payload = token.split('.').nth(1).expect("JWT payload");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .expect("base64url");
    serde_json::from_slice(&bytes).expect("claims JSON")
}

/// The busybox image as an OCI layout, for skopeo to copy from.
fn busybox_layout(env: &Env) -> String {
    env.import_busybox("busybox");
    let layout = env.path("layout");
    env.ok(&[
        "image",
        "export",
        "busybox",
        "--format",
        "oci",
        layout.to_str().expect("utf-8"),
    ]);
    format!("oci:{}", layout.display())
}

/// Run skopeo expecting failure; returns stderr.
fn skopeo_fails(args: &[&str]) -> String {
    let out = Command::new("skopeo")
        .arg("--insecure-policy")
        .args(args)
        .output()
        .expect("run skopeo");
    assert!(
        !out.status.success(),
        "skopeo {} succeeded but should fail",
        args.join(" ")
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn creds(secret: &str) -> String {
    format!("x:{secret}")
}

#[test]
fn without_anonymous_pull_every_request_needs_a_token() {
    let env = Env::new();
    let server = start(&env, Some("[auth]\nanonymous_pull = false\n"));
    let addr = &server.addr;
    let src = busybox_layout(&env);
    let (_, push) = server.token(&env, &["--repo", "team/**", "--push", "--name", "ci"]);
    let (_, pull) = server.token(&env, &["--repo", "team/*"]);
    let dest = format!("docker://{addr}/team/app:1");
    skopeo(&[
        "copy",
        "--dest-tls-verify=false",
        "--dest-creds",
        &creds(&push),
        &src,
        &dest,
    ]);

    // Without credentials: 401 with the challenge Docker clients follow.
    let err = skopeo_fails(&["inspect", "--tls-verify=false", &dest]);
    assert!(
        err.contains("401") || err.to_lowercase().contains("unauthorized"),
        "{err}"
    );
    let base = get(addr, "GET", "/v2/", None);
    assert_eq!(base.status, 401);
    assert_eq!(base.code(), "UNAUTHORIZED");
    assert_eq!(
        base.header("WWW-Authenticate").as_deref(),
        Some(format!("Bearer realm=\"http://{addr}/token\",service=\"hoist-registry\"").as_str())
    );
    let m = get(addr, "GET", "/v2/team/app/manifests/1", None);
    assert_eq!(m.status, 401);
    assert_eq!(
        m.header("WWW-Authenticate").as_deref(),
        Some(
            format!(
                "Bearer realm=\"http://{addr}/token\",service=\"hoist-registry\",scope=\"repository:team/app:pull\""
            )
            .as_str()
        )
    );
    // An anonymous token is a token, granting nothing.
    let (anon, c) = bearer(addr, "repository:team/app:pull", None);
    assert_eq!(c["access"], serde_json::json!([]));
    assert_eq!(c["sub"], "");
    assert_eq!(
        get(addr, "GET", "/v2/team/app/manifests/1", Some(&anon)).status,
        401
    );

    // With the pull token: skopeo follows the flow.
    let inspect: serde_json::Value = serde_json::from_str(&skopeo(&[
        "inspect",
        "--tls-verify=false",
        "--creds",
        &creds(&pull),
        &dest,
    ]))
    .expect("inspect JSON");
    assert_eq!(inspect["Os"], "linux");
    // The token grants the intersection of what was asked and what is allowed.
    let (tok, c) = bearer(
        addr,
        "repository:team/app:pull,push&scope=repository:other:pull",
        Some(&basic("x", &pull)),
    );
    assert_eq!(
        c["access"],
        serde_json::json!([{"type": "repository", "name": "team/app", "actions": ["pull"]}])
    );
    let r = get(addr, "GET", "/v2/team/app/manifests/1", Some(&tok));
    assert_eq!(r.status, 200, "{}", r.body);
    // Wrong password: the token endpoint says 401.
    let r = get(
        addr,
        "GET",
        "/token?service=hoist-registry&scope=repository:team/app:pull",
        Some(&basic("x", &format!("{pull}x"))),
    );
    assert_eq!(r.status, 401);
    // Basic straight to /v2/ works too; the catalog shows what the caller may pull.
    let r = get(addr, "GET", "/v2/_catalog", Some(&basic("x", &pull)));
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["repositories"], serde_json::json!(["team/app"]));
    skopeo(&[
        "copy",
        "--dest-tls-verify=false",
        "--dest-creds",
        &creds(&push),
        &src,
        &format!("docker://{addr}/team/deep/app:1"),
    ]);
    let r = get(addr, "GET", "/v2/_catalog", Some(&basic("x", &pull)));
    assert_eq!(
        r.json()["repositories"],
        serde_json::json!(["team/app"]),
        "team/* does not reach team/deep/app"
    );
    let r = get(addr, "GET", "/v2/_catalog", Some(&basic("x", &push)));
    assert_eq!(
        r.json()["repositories"],
        serde_json::json!(["team/app", "team/deep/app"])
    );
    assert_eq!(get(addr, "GET", "/v2/_catalog", None).status, 401);

    // The token file keeps no secret; the signing key is private.
    let file = std::fs::read_to_string(server.root.join("auth/tokens.json")).expect("tokens");
    for secret in [&push, &pull] {
        let random = secret.rsplit('_').next().expect("secret part");
        assert!(!file.contains(random), "a secret is in the token file");
    }
    assert!(file.contains("\"sha256\""), "{file}");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(server.root.join("auth/signing.key"))
        .expect("signing key")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
}

#[test]
fn a_pull_token_cannot_push_and_a_push_token_can() {
    let env = Env::new();
    let server = start(&env, None);
    let addr = &server.addr;
    let src = busybox_layout(&env);
    let dest = format!("docker://{addr}/team/app:1");
    // Open while there are no tokens.
    assert_eq!(get(addr, "GET", "/v2/", None).status, 200);
    let (_, pull) = server.token(&env, &["--repo", "team/**"]);
    let (_, push) = server.token(&env, &["--repo", "team/**", "--push"]);
    // With a token, anonymous callers may still pull but not push.
    let r = get(addr, "POST", "/v2/team/app/blobs/uploads/", None);
    assert_eq!(r.status, 401);
    assert!(r
        .header("WWW-Authenticate")
        .is_some_and(|h| h.ends_with("scope=\"repository:team/app:pull,push\"")));
    let err = skopeo_fails(&[
        "copy",
        "--dest-tls-verify=false",
        "--dest-creds",
        &creds(&pull),
        &src,
        &dest,
    ]);
    assert!(err.contains("denied"), "{err}");
    // Basic straight to /v2/: valid credentials without push are 403 DENIED.
    let r = get(
        addr,
        "POST",
        "/v2/team/app/blobs/uploads/",
        Some(&basic("x", &pull)),
    );
    assert_eq!((r.status, r.code()), (403, "DENIED".to_owned()));
    skopeo(&[
        "copy",
        "--dest-tls-verify=false",
        "--dest-creds",
        &creds(&push),
        &src,
        &dest,
    ]);
    // Outside its patterns the push token is denied too.
    let err = skopeo_fails(&[
        "copy",
        "--dest-tls-verify=false",
        "--dest-creds",
        &creds(&push),
        &src,
        &format!("docker://{addr}/other/app:1"),
    ]);
    assert!(err.contains("denied"), "{err}");
    // Delete needs --delete.
    let r = get(
        addr,
        "DELETE",
        "/v2/team/app/manifests/1",
        Some(&basic("x", &push)),
    );
    assert_eq!(r.status, 403);
    let (_, del) = server.token(&env, &["--repo", "team/app", "--delete"]);
    let r = get(
        addr,
        "DELETE",
        "/v2/team/app/manifests/1",
        Some(&basic("x", &del)),
    );
    assert_eq!(r.status, 202, "{}", r.body);
    // Anonymous pull still works directly.
    assert_eq!(get(addr, "GET", "/v2/team/app/tags/list", None).status, 200);
}

#[test]
fn a_bearer_token_that_lacks_a_scope_the_caller_has_is_challenged_for_more() {
    let env = Env::new();
    let server = start(&env, Some("[auth]\nanonymous_pull = false\n"));
    let addr = &server.addr;
    let (_, push) = server.token(&env, &["--repo", "team/**", "--push"]);
    let (tok, _) = bearer(addr, "repository:team/app:pull", Some(&basic("x", &push)));
    let r = get(addr, "POST", "/v2/team/app/blobs/uploads/", Some(&tok));
    assert_eq!(r.status, 401);
    let h = r.header("WWW-Authenticate").expect("challenge");
    assert!(h.contains("error=\"insufficient_scope\""), "{h}");
    let (tok, _) = bearer(
        addr,
        "repository:team/app:pull,push",
        Some(&basic("x", &push)),
    );
    let r = get(addr, "POST", "/v2/team/app/blobs/uploads/", Some(&tok));
    assert_eq!(r.status, 202, "{}", r.body);
    // A tampered token is refused.
    let mut bad = tok.clone();
    bad.pop();
    bad.push(if tok.ends_with('A') { 'B' } else { 'A' });
    let r = get(addr, "POST", "/v2/team/app/blobs/uploads/", Some(&bad));
    assert_eq!(r.status, 401);
    assert!(r
        .header("WWW-Authenticate")
        .is_some_and(|h| h.contains("error=\"invalid_token\"")));

    // Cross-repository mounts need pull on `from`; without it, a plain upload starts.
    let empty = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
    let (_, secret) = server.token(&env, &["--repo", "secret/**", "--push"]);
    for (repo, cred) in [("secret/x", &secret), ("team/a", &push)] {
        let r = get(
            addr,
            "POST",
            &format!("/v2/{repo}/blobs/uploads/?digest={empty}"),
            Some(&basic("x", cred)),
        );
        assert_eq!(r.status, 201, "{}", r.body);
    }
    let mount = |from: &str| {
        get(
            addr,
            "POST",
            &format!("/v2/team/b/blobs/uploads/?mount={empty}&from={from}"),
            Some(&basic("x", &push)),
        )
        .status
    };
    assert_eq!(
        mount("secret/x"),
        202,
        "mounted from a repository it may not pull"
    );
    assert_eq!(mount("team/a"), 201);
}

#[test]
fn revoked_tokens_stop_working_at_once() {
    let env = Env::new();
    let server = start(&env, Some("[auth]\nanonymous_pull = false\n"));
    let addr = &server.addr;
    let src = busybox_layout(&env);
    let (id, push) = server.token(&env, &["--repo", "team/**", "--push"]);
    let dest = format!("docker://{addr}/team/app:1");
    skopeo(&[
        "copy",
        "--dest-tls-verify=false",
        "--dest-creds",
        &creds(&push),
        &src,
        &dest,
    ]);
    let (tok, _) = bearer(addr, "repository:team/app:pull", Some(&basic("x", &push)));
    assert_eq!(
        get(addr, "GET", "/v2/team/app/manifests/1", Some(&tok)).status,
        200
    );
    let ls = env.ok(&[
        "registry",
        "token",
        "ls",
        "--root",
        server.root.to_str().expect("utf-8"),
    ]);
    assert!(ls.contains(&id) && ls.contains("pull,push"), "{ls}");
    assert!(!ls.contains(&push), "ls shows a secret");
    env.ok(&[
        "registry",
        "token",
        "revoke",
        &id,
        "--root",
        server.root.to_str().expect("utf-8"),
    ]);
    // The bearer token made from it dies with it, and so does the secret.
    let r = get(addr, "GET", "/v2/team/app/manifests/1", Some(&tok));
    assert_eq!(r.status, 401, "{}", r.body);
    let err = skopeo_fails(&[
        "inspect",
        "--tls-verify=false",
        "--creds",
        &creds(&push),
        &dest,
    ]);
    assert!(
        err.contains("401") || err.to_lowercase().contains("unauthorized"),
        "{err}"
    );
    let err = env.fails(&[
        "registry",
        "token",
        "revoke",
        &id,
        "--root",
        server.root.to_str().expect("utf-8"),
    ]);
    assert!(err.contains(&id), "{err}");
}

fn docker_config(env: &Env, addr: &str, secret: &str) -> PathBuf {
    let dir = env.path("docker");
    std::fs::create_dir_all(&dir).expect("mkdir");
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("x:{secret}"));
    std::fs::write(
        dir.join("config.json"),
        serde_json::json!({"auths": {addr: {"auth": auth}}}).to_string(),
    )
    .expect("config.json");
    dir
}

#[test]
fn hoist_push_and_pull_go_through_the_token_flow() {
    let env = Env::new();
    let server = start(&env, Some("[auth]\nanonymous_pull = false\n"));
    let addr = &server.addr;
    env.import_busybox("busybox");
    let target = format!("{addr}/team/app:1");
    let empty = env.path("no-docker");
    std::fs::create_dir_all(&empty).expect("mkdir");
    let out = env
        .hoist()
        .env("DOCKER_CONFIG", &empty)
        .args(["push", "busybox", &target])
        .output()
        .expect("run hoist");
    assert!(!out.status.success(), "pushed without credentials");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no credentials"), "{err}");

    let (_, push) = server.token(&env, &["--repo", "team/**", "--push"]);
    let docker = docker_config(&env, addr, &push);
    let out = env
        .hoist()
        .env("DOCKER_CONFIG", &docker)
        .args(["push", "busybox", &target])
        .output()
        .expect("run hoist");
    assert_success(&out, "hoist push with a token");

    let other = Env::new();
    let (_, pull) = server.token(&env, &["--repo", "team/app"]);
    let docker = docker_config(&other, addr, &pull);
    let out = other
        .hoist()
        .env("DOCKER_CONFIG", &docker)
        .args(["pull", &target])
        .output()
        .expect("run hoist");
    assert_success(&out, "hoist pull with a token");
    assert_eq!(
        other.inspect(&target)["Digest"],
        env.inspect("busybox")["Digest"]
    );
    // The pull token cannot push.
    let out = other
        .hoist()
        .env("DOCKER_CONFIG", &docker)
        .args(["push", &target, &format!("{addr}/team/app:2")])
        .output()
        .expect("run hoist");
    assert!(!out.status.success(), "pushed with a pull token");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("DENIED") || err.contains("denied"), "{err}");
}

#[test]
fn htpasswd_users_get_the_access_their_grants_give() {
    let env = Env::new();
    let users = env.path("users.htpasswd");
    let out = Command::new("htpasswd")
        .args(["-Bbc"])
        .arg(&users)
        .args(["ci", "s3cret"])
        .output()
        .expect("htpasswd is installed (apache2-utils)");
    assert_success(&out, "htpasswd");
    let server = start(
        &env,
        Some(
            "[auth]\nanonymous_pull = false\nhtpasswd = \"users.htpasswd\"\n\
             [[auth.grant]]\nuser = \"ci\"\nrepo = \"team/**\"\nactions = [\"pull\", \"push\"]\n",
        ),
    );
    let addr = &server.addr;
    let src = busybox_layout(&env);
    skopeo(&[
        "copy",
        "--dest-tls-verify=false",
        "--dest-creds",
        "ci:s3cret",
        &src,
        &format!("docker://{addr}/team/app:1"),
    ]);
    let err = skopeo_fails(&[
        "copy",
        "--dest-tls-verify=false",
        "--dest-creds",
        "ci:s3cret",
        &src,
        &format!("docker://{addr}/other:1"),
    ]);
    // Not even pull on other: the first HEAD is 403, which skopeo reports bare.
    assert!(err.contains("403") || err.contains("denied"), "{err}");
    let err = skopeo_fails(&[
        "inspect",
        "--tls-verify=false",
        "--creds",
        "ci:wrong",
        &format!("docker://{addr}/team/app:1"),
    ]);
    assert!(
        err.contains("401") || err.to_lowercase().contains("unauthorized"),
        "{err}"
    );
    let r = get(
        addr,
        "GET",
        "/v2/team/app/tags/list",
        Some(&basic("ci", "s3cret")),
    );
    assert_eq!(r.status, 200, "{}", r.body);
}

fn write_cert(dir: &Path) -> (PathBuf, PathBuf) {
    let ck =
        rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
            .expect("self-signed certificate");
    let cert = dir.join("cert.pem");
    let key = dir.join("key.pem");
    std::fs::write(&cert, ck.cert.pem()).expect("cert");
    std::fs::write(&key, ck.signing_key.serialize_pem()).expect("key");
    let certs = dir.join("certs");
    std::fs::create_dir_all(&certs).expect("mkdir");
    std::fs::write(certs.join("ca.crt"), ck.cert.pem()).expect("ca.crt");
    (cert, key)
}

#[test]
fn tls_serves_https_and_the_token_flow_over_it() {
    let env = Env::new();
    write_cert(env.dir.path());
    let server = start(
        &env,
        Some("[tls]\ncert = \"cert.pem\"\nkey = \"key.pem\"\n"),
    );
    let addr = &server.addr;
    let src = busybox_layout(&env);
    let (_, push) = server.token(&env, &["--repo", "team/**", "--push"]);
    let certs = env.path("certs");
    let certs = certs.to_str().expect("utf-8");
    let dest = format!("docker://{addr}/team/app:1");
    // The push needs the token, fetched from the https realm.
    skopeo(&[
        "copy",
        "--dest-cert-dir",
        certs,
        "--dest-creds",
        &creds(&push),
        &src,
        &dest,
    ]);
    let inspect: serde_json::Value =
        serde_json::from_str(&skopeo(&["inspect", "--cert-dir", certs, &dest]))
            .expect("inspect JSON");
    assert_eq!(inspect["Os"], "linux");
    // Without the CA the certificate is not trusted.
    let err = skopeo_fails(&["inspect", &dest]);
    assert!(err.contains("certificate"), "{err}");
    // Plain HTTP is not spoken on the TLS port.
    let mut s = TcpStream::connect(addr).expect("connect");
    s.write_all(b"GET /v2/ HTTP/1.1\r\nHost: x\r\n\r\n")
        .expect("write");
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    assert!(!String::from_utf8_lossy(&buf).contains("200 OK"));
}

#[test]
fn a_bad_certificate_file_is_named() {
    let env = Env::new();
    let (_, key) = write_cert(env.dir.path());
    std::fs::write(env.path("bad.pem"), "not a certificate\n").expect("write");
    let config = env.path("registry.toml");
    std::fs::write(&config, "[tls]\ncert = \"bad.pem\"\nkey = \"key.pem\"\n").expect("write");
    let err = env.fails(&[
        "registry",
        "serve",
        "--addr",
        "127.0.0.1:0",
        "--root",
        env.path("registry").to_str().expect("utf-8"),
        "--config",
        config.to_str().expect("utf-8"),
    ]);
    assert!(
        err.contains("bad.pem") && err.contains("no certificate"),
        "{err}"
    );
    assert!(key.exists());
}
