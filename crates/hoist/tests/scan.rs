//! `hoist scan`, `hoist sbom` and `hoist db` end to end: a small Debian-like image
//! with a vulnerable OS package, a vulnerable Python package and a planted secret,
//! matched against OSV advisories written here on the model of a Debian DSA and a
//! PyPI GHSA.
#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

mod util;

use std::fs;
use std::path::Path;

use util::Env;

const DSA: &str = r#"{
  "id": "DSA-9001-1",
  "modified": "2026-10-01T00:00:00Z",
  "published": "2026-09-30T00:00:00Z",
  "aliases": ["CVE-2026-1111"],
  "summary": "openssl: key and IV length handling",
  "severity": [{"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:N/A:N"}],
  "affected": [{
    "package": {"ecosystem": "Debian:12", "name": "openssl"},
    "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "3.0.11-1~deb12u2"}]}]
  }]
}"#;

const GHSA: &str = r#"{
  "id": "GHSA-aaaa-bbbb-cccc",
  "modified": "2026-10-02T00:00:00Z",
  "aliases": ["CVE-2026-2222"],
  "summary": "Django: denial of service in a form field",
  "affected": [{
    "package": {"ecosystem": "PyPI", "name": "django"},
    "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "4.2"}, {"fixed": "4.2.2"}]}],
    "database_specific": {"severity": "MODERATE"}
  }]
}"#;

const STATUS: &str = "Package: base-files
Status: install ok installed
Version: 12.4+deb12u5

Package: libssl3
Status: install ok installed
Source: openssl
Version: 3.0.11-1~deb12u1

Package: zlib1g
Status: install ok installed
Source: zlib
Version: 1:1.2.13.dfsg-1
";

fn github_token() -> String {
    // Assembled at run time so this file holds nothing a secret scanner flags.
    let mut t = String::from("gh");
    t.push_str("p_");
    t.push_str("Zq4RkT7mWx2Lp9Vb3Nc8Hd5Jf1Gs6Ay0Ue4K");
    t
}

fn rootfs(dir: &Path) {
    let w = |p: &str, body: &str| {
        let path = dir.join(p);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, body).unwrap();
    };
    w("etc/os-release", "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nID=debian\nVERSION_ID=\"12\"\nVERSION_CODENAME=bookworm\n");
    w("var/lib/dpkg/status", STATUS);
    w(
        "usr/lib/python3/dist-packages/Django-4.2.1.dist-info/METADATA",
        "Metadata-Version: 2.1\nName: Django\nVersion: 4.2.1\nLicense: BSD-3-Clause\n",
    );
    w(
        "app/.env",
        &format!("GITHUB_TOKEN={}\nDEBUG=0\n", github_token()),
    );
}

fn setup() -> Env {
    let env = Env::new();
    rootfs(&env.path("rootfs"));
    fs::create_dir_all(env.path("osv/Debian")).unwrap();
    fs::create_dir_all(env.path("osv/PyPI")).unwrap();
    fs::write(env.path("osv/Debian/DSA-9001-1.json"), DSA).unwrap();
    fs::write(env.path("osv/PyPI/GHSA-aaaa-bbbb-cccc.json"), GHSA).unwrap();
    env.import_at_epoch(&env.path("rootfs"), "app:v1", 1_700_000_000);
    let out = env.ok(&["db", "import", env.path("osv").to_str().unwrap()]);
    assert!(out.contains("imported 2 advisories"), "{out}");
    env
}

fn scan_json(env: &Env, args: &[&str]) -> serde_json::Value {
    let mut all = vec!["scan"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--format", "json"]);
    serde_json::from_str(&env.ok(&all)).expect("scan JSON")
}

#[test]
fn an_image_scan_finds_os_and_language_vulnerabilities_and_a_secret() {
    let env = setup();
    let report = scan_json(&env, &["app:v1"]);
    assert_eq!(report["os"]["id"], "debian");
    assert_eq!(
        report["packages"].as_array().unwrap().len(),
        4,
        "{report:#}"
    );
    let vulns: Vec<(String, String, String)> = report["vulnerabilities"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            (
                v["id"].as_str().unwrap().to_owned(),
                v["package"].as_str().unwrap().to_owned(),
                v["fixed"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    assert_eq!(
        vulns,
        vec![
            (
                "DSA-9001-1".into(),
                "libssl3".into(),
                "3.0.11-1~deb12u2".into()
            ),
            (
                "GHSA-aaaa-bbbb-cccc".into(),
                "Django".into(),
                "4.2.2".into()
            ),
        ]
    );
    assert_eq!(report["vulnerabilities"][0]["severity"], "HIGH");
    assert_eq!(report["vulnerabilities"][1]["severity"], "MEDIUM");
    let layer = env.inspect("app:v1")["RootFS"]["Layers"][0].clone();
    assert_eq!(report["vulnerabilities"][0]["layer"], layer);
    let secrets = report["secrets"].as_array().unwrap();
    assert_eq!(secrets.len(), 1);
    assert_eq!(secrets[0]["rule_id"], "github-pat");
    assert_eq!(secrets[0]["path"], "app/.env");
    assert_eq!(secrets[0]["line"], 1);
    assert_eq!(secrets[0]["layer"], layer);
    assert!(
        !report.to_string().contains(&github_token()),
        "the report leaks the token"
    );

    // The same tree as a directory gives the same findings, without layers.
    let dir = scan_json(&env, &["--dir", env.path("rootfs").to_str().unwrap()]);
    assert_eq!(dir["vulnerabilities"].as_array().unwrap().len(), 2);
    assert!(dir["vulnerabilities"][0].get("layer").is_none());

    // Misconfigurations, for a directory: the `hoist lint` rules.
    fs::write(
        env.path("rootfs/app/Dockerfile"),
        "FROM debian:latest\nUSER 1000\nHEALTHCHECK NONE\n",
    )
    .unwrap();
    let dir = scan_json(
        &env,
        &[
            "--dir",
            env.path("rootfs").to_str().unwrap(),
            "--scanners",
            "misconfig",
        ],
    );
    let m = dir["misconfigurations"].as_array().unwrap();
    assert_eq!(m.len(), 1, "{m:#?}");
    assert_eq!(
        (m[0]["rule_id"].as_str(), m[0]["line"].as_u64()),
        (Some("HL-DF-002"), Some(1))
    );
    assert!(m[0]["path"].as_str().unwrap().ends_with("app/Dockerfile"));

    // Only the secret scanner: no database needed, no vulnerabilities.
    let secrets_only = scan_json(&env, &["app:v1", "--scanners", "secret"]);
    assert_eq!(secrets_only["vulnerabilities"].as_array().unwrap().len(), 0);
    assert_eq!(secrets_only["secrets"].as_array().unwrap().len(), 1);
}

#[test]
fn the_gate_fails_at_its_threshold_and_the_ignore_file_can_accept_findings() {
    let env = setup();
    // The secret is CRITICAL, the DSA HIGH, the GHSA MEDIUM.
    env.ok(&["scan", "app:v1"]);
    let err = env.fails(&["scan", "app:v1", "--fail-on", "critical"]);
    assert!(
        err.contains("scan gate failed: 1 findings at CRITICAL"),
        "{err}"
    );
    let err = env.fails(&["scan", "app:v1", "--fail-on", "medium"]);
    assert!(err.contains("3 findings at MEDIUM"), "{err}");

    let ignore = env.path("hoistignore");
    fs::write(
        &ignore,
        "# accepted\nCVE-2026-1111 libssl3 2099-01-01 # backport pending\nGHSA-aaaa-bbbb-cccc\ngithub-pat app/.env # test fixture\n",
    )
    .unwrap();
    let out = env.ok(&[
        "scan",
        "app:v1",
        "--fail-on",
        "low",
        "--ignore-file",
        ignore.to_str().unwrap(),
    ]);
    assert!(out.contains("3 findings ignored"), "{out}");
    assert!(out.contains("gate: passed"), "{out}");

    // An expired entry no longer applies, and says so.
    fs::write(&ignore, "DSA-9001-1 libssl3 2020-01-01\n").unwrap();
    let out = env
        .hoist()
        .args([
            "scan",
            "app:v1",
            "--fail-on",
            "high",
            "--ignore-file",
            ignore.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("expired on 2020-01-01"), "{stdout}");

    // A bad ignore file is an error naming the line.
    fs::write(&ignore, "DSA-9001-1 libssl3 2020-02-30\n").unwrap();
    let err = env.fails(&["scan", "app:v1", "--ignore-file", ignore.to_str().unwrap()]);
    assert!(
        err.contains("hoistignore:1:") && err.contains("not a valid date"),
        "{err}"
    );
    let err = env.fails(&["scan", "app:v1", "--fail-on", "severe"]);
    assert!(err.contains("--fail-on \"severe\""), "{err}");
}

#[test]
fn reports_and_sboms_are_written_to_files() {
    let env = setup();
    let sarif = env.path("out/report.sarif");
    fs::create_dir_all(sarif.parent().unwrap()).unwrap();
    env.ok(&[
        "scan",
        "app:v1",
        "--format",
        "sarif",
        "-o",
        sarif.to_str().unwrap(),
    ]);
    let v: serde_json::Value = serde_json::from_slice(&fs::read(&sarif).unwrap()).unwrap();
    assert_eq!(v["version"], "2.1.0");
    assert_eq!(v["runs"][0]["results"].as_array().unwrap().len(), 3);

    let spdx = env.path("out/sbom.spdx.json");
    env.ok(&[
        "sbom",
        "app:v1",
        "--format",
        "spdx",
        "-o",
        spdx.to_str().unwrap(),
    ]);
    let v: serde_json::Value = serde_json::from_slice(&fs::read(&spdx).unwrap()).unwrap();
    assert_eq!(v["spdxVersion"], "SPDX-2.3");
    assert_eq!(
        v["packages"].as_array().unwrap().len(),
        5,
        "root + 4 packages"
    );

    let cdx = env.ok(&["sbom", "app:v1"]);
    let v: serde_json::Value = serde_json::from_str(&cdx).unwrap();
    assert_eq!(v["specVersion"], "1.5");
    let purls: Vec<&str> = v["components"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["purl"].as_str())
        .collect();
    assert!(
        purls.contains(&"pkg:deb/debian/zlib1g@1%3A1.2.13.dfsg-1?distro=debian-12"),
        "{purls:?}"
    );
    assert!(purls.contains(&"pkg:pypi/django@4.2.1"), "{purls:?}");
    // Nothing half-written is left next to the outputs.
    let left: Vec<_> = fs::read_dir(env.path("out"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert_eq!(left.len(), 2, "{left:?}");
}

#[test]
fn db_status_and_import_errors() {
    let env = setup();
    let status: serde_json::Value =
        serde_json::from_str(&env.ok(&["--json", "db", "status"])).unwrap();
    assert_eq!(status["sources"][0]["advisories"], 2);
    fs::write(env.path("bad.json"), "{\"id\": \"X\",\n \"affected\": [}\n").unwrap();
    fs::create_dir_all(env.path("bad")).unwrap();
    fs::rename(env.path("bad.json"), env.path("bad/X.json")).unwrap();
    let err = env.fails(&["db", "import", env.path("bad").to_str().unwrap()]);
    assert!(err.contains("X.json") && err.contains("line 2"), "{err}");
    // The failed import kept nothing and lost nothing.
    let status: serde_json::Value =
        serde_json::from_str(&env.ok(&["--json", "db", "status"])).unwrap();
    assert_eq!(status["sources"].as_array().unwrap().len(), 1);
    let err = env.fails(&["scan", "no-such-image:v9"]);
    assert!(err.contains("no-such-image:v9"), "{err}");
}

/// GET `path` from the registry at `addr`: (status, body).
fn registry_get(addr: &str, path: &str) -> (u16, Vec<u8>) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let mut resp = agent
        .get(format!("http://{addr}{path}"))
        .header(
            "Accept",
            "application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json",
        )
        .call()
        .unwrap();
    let status = resp.status().as_u16();
    let body = resp.body_mut().read_to_vec().unwrap();
    (status, body)
}

/// The referrer descriptors of `repo@digest`, optionally filtered by artifact type.
fn referrers(
    addr: &str,
    repo: &str,
    digest: &str,
    artifact_type: Option<&str>,
) -> Vec<serde_json::Value> {
    // `+` in a query string means a space: encode it.
    let query = artifact_type
        .map(|t| format!("?artifactType={}", t.replace('+', "%2B")))
        .unwrap_or_default();
    let (status, body) = registry_get(addr, &format!("/v2/{repo}/referrers/{digest}{query}"));
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let index: serde_json::Value = serde_json::from_slice(&body).unwrap();
    index["manifests"].as_array().unwrap().clone()
}

/// The single file of the artifact `referrer` describes.
fn artifact_file(addr: &str, repo: &str, referrer: &serde_json::Value) -> Vec<u8> {
    let digest = referrer["digest"].as_str().unwrap();
    let (status, body) = registry_get(addr, &format!("/v2/{repo}/manifests/{digest}"));
    assert_eq!(status, 200);
    let manifest: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(manifest["artifactType"], referrer["artifactType"]);
    assert_eq!(
        manifest["config"]["mediaType"],
        "application/vnd.oci.empty.v1+json"
    );
    let layers = manifest["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 1, "{manifest:#}");
    let blob = layers[0]["digest"].as_str().unwrap();
    let (status, body) = registry_get(addr, &format!("/v2/{repo}/blobs/{blob}"));
    assert_eq!(status, 200);
    body
}

const REPORT: &str = "application/vnd.hoist.scan.report.v1+json";
const SBOM: &str = "application/vnd.cyclonedx+json";

#[test]
fn scan_on_push_attaches_a_report_and_an_sbom_through_the_referrers_api() {
    let env = setup();
    fs::write(
        env.path("registry.toml"),
        "[[repository]]\npattern = \"scanned/*\"\nscan_on_push = true\n",
    )
    .unwrap();
    let server = util::RegistryServer::start_with(
        &env,
        &env.path("registry"),
        Some(&env.path("registry.toml")),
        "http",
    );
    let addr = server.addr.clone();
    // The plain repository first: its push calls no hook at all, so once the
    // scanned one has its report, the plain one is known to have none.
    env.ok(&["push", "app:v1", &format!("{addr}/plain/app:v1")]);
    let pushed: serde_json::Value = serde_json::from_str(&env.ok(&[
        "--json",
        "push",
        "app:v1",
        &format!("{addr}/scanned/app:v1"),
    ]))
    .unwrap();
    let digest = pushed["Digest"].as_str().unwrap().to_owned();

    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    let found = loop {
        let found = referrers(&addr, "scanned/app", &digest, None);
        if found.len() >= 2 {
            break found;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no report and SBOM attached; registry log:\n{}",
            server.log.lock().unwrap()
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    let types: Vec<&str> = found
        .iter()
        .map(|d| d["artifactType"].as_str().unwrap())
        .collect();
    assert!(
        types.contains(&REPORT) && types.contains(&SBOM),
        "{found:#?}"
    );
    assert!(referrers(&addr, "plain/app", &digest, None).is_empty());

    // The report: the findings `hoist scan` gives for the same image.
    let report_ref = &referrers(&addr, "scanned/app", &digest, Some(REPORT))[0];
    let annotations = &report_ref["annotations"];
    assert_eq!(annotations["dev.hoist.scan.high"], "1", "{report_ref:#}");
    assert_eq!(annotations["dev.hoist.scan.medium"], "1", "{report_ref:#}");
    assert_eq!(
        annotations["dev.hoist.scan.critical"], "0",
        "{report_ref:#}"
    );
    assert_eq!(annotations["dev.hoist.scan.secrets"], "1", "{report_ref:#}");
    let report: serde_json::Value =
        serde_json::from_slice(&artifact_file(&addr, "scanned/app", report_ref)).unwrap();
    assert_eq!(report["target"]["digest"], digest.as_str(), "{report:#}");
    let mut ids: Vec<&str> = report["vulnerabilities"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["id"].as_str().unwrap())
        .collect();
    ids.sort();
    assert_eq!(ids, ["DSA-9001-1", "GHSA-aaaa-bbbb-cccc"]);
    let secrets = report["secrets"].as_array().unwrap();
    assert_eq!(secrets.len(), 1);
    assert_eq!(secrets[0]["path"], "app/.env");
    assert!(
        !String::from_utf8_lossy(&serde_json::to_vec(&report).unwrap()).contains(&github_token()),
        "the attached report holds the secret itself"
    );

    // The SBOM lists the image's packages.
    let sbom_ref = &referrers(&addr, "scanned/app", &digest, Some(SBOM))[0];
    let sbom: serde_json::Value =
        serde_json::from_slice(&artifact_file(&addr, "scanned/app", sbom_ref)).unwrap();
    assert_eq!(sbom["bomFormat"], "CycloneDX");
    let names: Vec<&str> = sbom["components"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["name"].as_str())
        .collect();
    assert!(
        names.contains(&"libssl3") && names.contains(&"Django"),
        "{names:?}"
    );

    // Pushing the same image again does not scan it again.
    env.ok(&["push", "app:v1", &format!("{addr}/scanned/app:again")]);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while !server.log.lock().unwrap().contains("already scanned") {
        assert!(
            std::time::Instant::now() < deadline,
            "the second push was not seen; registry log:\n{}",
            server.log.lock().unwrap()
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert_eq!(referrers(&addr, "scanned/app", &digest, None).len(), 2);
}

#[test]
fn misconfiguration_rules_read_an_images_config() {
    let env = setup();
    let report = scan_json(&env, &["app:v1", "--scanners", "misconfig"]);
    let found: Vec<(&str, &str)> = report["misconfigurations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m["rule_id"].as_str().unwrap(), m["path"].as_str().unwrap()))
        .collect();
    // An imported rootfs has a config with no User and no HEALTHCHECK.
    assert_eq!(
        found,
        [
            ("HL-DF-001", "(image config)"),
            ("HL-DF-005", "(image config)")
        ],
        "{report:#}"
    );
    assert!(report["vulnerabilities"].as_array().unwrap().is_empty());
    // The root user is a high finding: the gate fails on it.
    let err = env.fails(&[
        "scan",
        "app:v1",
        "--scanners",
        "misconfig",
        "--fail-on",
        "high",
    ]);
    assert!(
        err.contains("scan gate failed: 1 findings at HIGH or above"),
        "{err}"
    );
}
