//! Conventions the project keeps, checked: every crate opens with a doc essay, and
//! crate dependencies only point the allowed way (data flows one way).

use std::fs;
use std::path::Path;

/// Which hoist crates each crate may depend on. A crate missing here fails the test,
/// so a new crate has to state its place in the flow.
const ALLOWED: &[(&str, &[&str])] = &[
    ("hoist-oci", &[]),
    ("hoist-dockerfile", &[]),
    ("hoist-layer", &["hoist-oci"]),
    ("hoist-runtime", &[]),
    ("hoist-tls", &[]),
    ("hoist-registry", &["hoist-oci", "hoist-tls"]),
    ("hoist-registry-client", &["hoist-oci"]),
    ("hoist-aws", &[]),
    ("hoist-proxy", &["hoist-tls"]),
    ("hoist-secrets", &[]),
    ("hoist-version", &[]),
    ("hoist-inventory", &["hoist-oci", "hoist-layer"]),
    ("hoist-vulndb", &["hoist-version"]),
    ("hoist-secretscan", &[]),
    ("hoist-lint", &["hoist-dockerfile"]),
    ("hoist-pipeline-spec", &["hoist-deploy", "hoist-oci"]),
    (
        "hoist-scan",
        &[
            "hoist-oci",
            "hoist-layer",
            "hoist-inventory",
            "hoist-vulndb",
            "hoist-secretscan",
            "hoist-lint",
        ],
    ),
    (
        "hoist-deploy",
        &[
            "hoist-oci",
            "hoist-snapshot",
            "hoist-runtime",
            "hoist-proxy",
            "hoist-secrets",
        ],
    ),
    (
        "hoist-pipeline",
        &[
            "hoist-oci",
            "hoist-builder",
            "hoist-runtime",
            "hoist-snapshot",
            "hoist-scan",
            "hoist-vulndb",
            "hoist-secretscan",
            "hoist-deploy",
            "hoist-registry",
            "hoist-registry-client",
            "hoist-secrets",
            // Its deploy stage for `target: ecs` environments.
            "hoist-aws",
            "hoist-pipeline-spec",
        ],
    ),
    (
        "hoist-server",
        // hoist-proxy: the dashboard reads the proxy's request counts.
        // hoist-runtime: the dashboard reads task logs.
        &[
            "hoist-oci",
            "hoist-deploy",
            "hoist-pipeline",
            "hoist-proxy",
            "hoist-runtime",
        ],
    ),
    ("hoist-snapshot", &["hoist-oci", "hoist-layer"]),
    (
        "hoist-builder",
        &[
            "hoist-oci",
            "hoist-layer",
            "hoist-dockerfile",
            "hoist-snapshot",
            "hoist-runtime",
        ],
    ),
    (
        "hoist",
        &[
            "hoist-oci",
            "hoist-layer",
            "hoist-dockerfile",
            "hoist-snapshot",
            "hoist-runtime",
            "hoist-builder",
            "hoist-registry",
            "hoist-registry-client",
            "hoist-aws",
            "hoist-proxy",
            "hoist-secrets",
            "hoist-tls",
            "hoist-deploy",
            "hoist-version",
            "hoist-inventory",
            "hoist-vulndb",
            "hoist-secretscan",
            "hoist-lint",
            "hoist-pipeline",
            "hoist-pipeline-spec",
            "hoist-scan",
            "hoist-server",
        ],
    ),
];

fn crates() -> Vec<(String, std::path::PathBuf)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut out: Vec<_> = fs::read_dir(&dir)
        .expect("crates dir")
        .flatten()
        .filter(|e| e.path().join("Cargo.toml").is_file())
        .map(|e| (e.file_name().to_string_lossy().into_owned(), e.path()))
        .collect();
    out.sort();
    out
}

#[test]
fn every_crate_opens_with_a_doc_essay() {
    for (name, path) in crates() {
        let root = ["src/lib.rs", "src/main.rs"]
            .iter()
            .map(|f| path.join(f))
            .find(|p| p.is_file())
            .unwrap_or_else(|| panic!("{name}: no lib.rs or main.rs"));
        let text = fs::read_to_string(&root).expect("read crate root");
        let doc_lines = text.lines().take_while(|l| l.starts_with("//!")).count();
        assert!(
            doc_lines >= 3,
            "{}: must open with a //! essay (what it owns, what it must not do)",
            root.display()
        );
    }
}

#[test]
fn dependencies_point_the_allowed_way() {
    for (name, path) in crates() {
        let allowed = ALLOWED
            .iter()
            .find(|(n, _)| *n == name)
            .unwrap_or_else(|| panic!("{name}: add it to ALLOWED in tests/tidy.rs"))
            .1;
        let manifest = fs::read_to_string(path.join("Cargo.toml")).expect("read Cargo.toml");
        let mut section = String::new();
        for line in manifest.lines() {
            let line = line.trim();
            if line.starts_with('[') {
                section = line.to_owned();
                continue;
            }
            if section != "[dependencies]" {
                continue;
            }
            let dep = line.split(['=', '.', ' ']).next().unwrap_or("");
            if dep.starts_with("hoist") {
                assert!(allowed.contains(&dep), "{name} must not depend on {dep}");
            }
        }
    }
}
