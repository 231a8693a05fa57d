//! `hoist registry serve --config` with repository policies, driven by skopeo:
//! immutable tags are refused with ECR's message, and `hoist registry gc` (another
//! process, while the server runs) expires what the lifecycle policy says and frees
//! the blobs only the expired image used, while kept images still pull.

mod util;

use std::process::Command;

use util::{busybox_rootfs, skopeo, Env, RegistryServer};

/// Run skopeo expecting failure; returns its stderr.
fn skopeo_fails(args: &[&str]) -> String {
    let out = Command::new("skopeo")
        .arg("--insecure-policy")
        .args(args)
        .output()
        .expect("skopeo is installed");
    assert!(
        !out.status.success(),
        "skopeo {} succeeded but should fail",
        args.join(" ")
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The busybox rootfs imported at `epoch` (so each epoch is a different image) and
/// exported as an OCI layout; returns the `oci:` reference.
fn image_layout(env: &Env, epoch: u64) -> String {
    let name = format!("img{epoch}");
    env.import_at_epoch(&busybox_rootfs(), &name, epoch);
    let layout = env.path(&format!("layout{epoch}"));
    env.ok(&[
        "image",
        "export",
        &name,
        "--format",
        "oci",
        layout.to_str().expect("utf-8"),
    ]);
    format!("oci:{}", layout.display())
}

/// The manifest digest and config digest of `reference` in the registry.
fn digests(reference: &str) -> (String, String) {
    let inspect: serde_json::Value =
        serde_json::from_str(&skopeo(&["inspect", "--tls-verify=false", reference]))
            .expect("inspect JSON");
    let raw: serde_json::Value = serde_json::from_str(&skopeo(&[
        "inspect",
        "--raw",
        "--tls-verify=false",
        reference,
    ]))
    .expect("raw manifest JSON");
    (
        inspect["Digest"].as_str().expect("Digest").to_owned(),
        raw["config"]["digest"]
            .as_str()
            .expect("config digest")
            .to_owned(),
    )
}

fn copy(src: &str, dest: &str) {
    skopeo(&[
        "copy",
        "--src-tls-verify=false",
        "--dest-tls-verify=false",
        src,
        dest,
    ]);
}

const LIFECYCLE: &str = r#"{"rules": [
  {"rulePriority": 1, "description": "keep releases",
   "selection": {"tagStatus": "tagged", "tagPrefixList": ["keep"],
                 "countType": "imageCountMoreThan", "countNumber": 100},
   "action": {"type": "expire"}},
  {"rulePriority": 2, "description": "only the newest of the rest",
   "selection": {"tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": 1},
   "action": {"type": "expire"}}
]}"#;

const CONFIG: &str = r#"
[gc]
grace = "0s"

[[repository]]
pattern = "team/*"
tag_mutability = "IMMUTABLE"
scan_on_push = true

[[repository]]
pattern = "scratch/**"
lifecycle_policy = "lifecycle.json"
"#;

#[test]
fn immutable_tags_lifecycle_and_gc_through_skopeo() {
    let env = Env::new();
    std::fs::write(env.path("lifecycle.json"), LIFECYCLE).expect("write lifecycle.json");
    std::fs::write(env.path("registry.toml"), CONFIG).expect("write registry.toml");
    let server = RegistryServer::start_with(
        &env,
        &env.path("registry"),
        Some(&env.path("registry.toml")),
        "http",
    );
    assert!(
        server
            .startup
            .contains("scan on push for repositories matching \"team/*\""),
        "no scan on push notice:\n{}",
        server.startup
    );
    let (one, two, three) = (
        image_layout(&env, 1),
        image_layout(&env, 2),
        image_layout(&env, 3),
    );
    let reg = |path: &str| format!("docker://{}/{path}", server.addr);

    // An immutable tag: the same image again is fine, another one is refused.
    copy(&one, &reg("team/app:v1"));
    copy(&one, &reg("team/app:v1"));
    let (v1_digest, _) = digests(&reg("team/app:v1"));
    let err = skopeo_fails(&["copy", "--dest-tls-verify=false", &two, &reg("team/app:v1")]);
    assert!(
        err.contains("The image tag 'v1' already exists in the 'team/app' repository and cannot be overwritten because the repository is immutable."),
        "skopeo's error does not carry ECR's message:\n{err}"
    );
    assert_eq!(digests(&reg("team/app:v1")).0, v1_digest);

    // A lifecycle policy: keep `keep*` images, and of the rest only the newest.
    copy(&one, &reg("scratch/app:keep-1"));
    copy(&two, &reg("scratch/app:latest"));
    let (two_digest, two_config) = digests(&reg("scratch/app:latest"));
    copy(&three, &reg("scratch/app:latest"));
    let two_by_digest = reg(&format!("scratch/app@{two_digest}"));
    skopeo(&["inspect", "--raw", "--tls-verify=false", &two_by_digest]);
    let store_file = |d: &str| {
        env.path("registry/blobs/sha256")
            .join(d.strip_prefix("sha256:").expect("sha256 digest"))
    };
    assert!(store_file(&two_config).is_file());

    let gc = |extra: &[&str]| {
        let mut args = vec!["registry", "gc", "--root"];
        let root = env.path("registry");
        let config = env.path("registry.toml");
        args.push(root.to_str().expect("utf-8"));
        args.push("--config");
        args.push(config.to_str().expect("utf-8"));
        args.extend_from_slice(extra);
        env.ok(&args)
    };
    let dry = gc(&["--dry-run"]);
    assert!(
        dry.contains(&format!(
            "would expire scratch/app@{two_digest} (untagged): rulePriority 2"
        )),
        "{dry}"
    );
    assert!(dry.contains("dry run: 1 images expired"), "{dry}");
    skopeo(&["inspect", "--raw", "--tls-verify=false", &two_by_digest]);

    let report: serde_json::Value = serde_json::from_str(&gc(&["--json"])).expect("report JSON");
    let expired: Vec<&str> = report["expired"]
        .as_array()
        .expect("expired")
        .iter()
        .map(|e| e["digest"].as_str().expect("digest"))
        .collect();
    assert_eq!(expired, vec![two_digest.as_str()], "{report:#}");
    let removed: Vec<&str> = report["blobs_removed"]
        .as_array()
        .expect("blobs_removed")
        .iter()
        .map(|b| b["digest"].as_str().expect("digest"))
        .collect();
    // Its manifest, config and layer (each epoch's layer differs). The refused push
    // had uploaded the same blobs to team/app; those unreferenced links went too.
    assert!(removed.contains(&two_digest.as_str()), "{report:#}");
    assert!(removed.contains(&two_config.as_str()), "{report:#}");
    let unlinked: Vec<&str> = report["unlinked"]
        .as_array()
        .expect("unlinked")
        .iter()
        .filter(|u| u["repository"] == "team/app")
        .map(|u| u["digest"].as_str().expect("digest"))
        .collect();
    assert!(unlinked.contains(&two_config.as_str()), "{report:#}");
    assert!(report["bytes_freed"].as_u64().expect("bytes_freed") > 0);
    assert!(!store_file(&two_config).exists());
    assert!(!store_file(&two_digest).exists());
    let err = skopeo_fails(&["inspect", "--raw", "--tls-verify=false", &two_by_digest]);
    assert!(
        err.contains("manifest unknown") || err.contains("MANIFEST_UNKNOWN"),
        "{err}"
    );

    // What was kept still pulls, whole.
    for (i, kept) in ["scratch/app:keep-1", "scratch/app:latest", "team/app:v1"]
        .iter()
        .enumerate()
    {
        let out = env.path(&format!("pulled{i}"));
        copy(&reg(kept), &format!("oci:{}", out.display()));
    }
    // A second run finds nothing more to do.
    let again = gc(&[]);
    assert!(again.contains("done: 0 images expired"), "{again}");
}

#[test]
fn an_invalid_lifecycle_policy_names_the_rule_and_field() {
    let env = Env::new();
    std::fs::write(
        env.path("bad.json"),
        r#"{"rules": [{"rulePriority": 7, "selection": {"tagStatus": "tagged",
            "countType": "imageCountMoreThan", "countNumber": 1}, "action": {"type": "expire"}}]}"#,
    )
    .expect("write bad.json");
    std::fs::write(
        env.path("registry.toml"),
        "[[repository]]\npattern = \"**\"\nlifecycle_policy = \"bad.json\"\n",
    )
    .expect("write registry.toml");
    let root = env.path("registry");
    let config = env.path("registry.toml");
    let err = env.fails(&[
        "registry",
        "gc",
        "--root",
        root.to_str().expect("utf-8"),
        "--config",
        config.to_str().expect("utf-8"),
    ]);
    assert!(
        err.contains("bad.json")
            && err.contains(
                "rules[0] (rulePriority 7): selection.tagStatus: \"tagged\" needs a tagPrefixList or a tagPatternList"
            ),
        "{err}"
    );
}
