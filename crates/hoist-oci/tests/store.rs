//! The image store and transfers, through the library API.
#![allow(clippy::unwrap_used)]

use std::fs;
use std::io::Write;

use hoist_oci::config::{ImageConfig, RootFs};
use hoist_oci::media_type as mt;
use hoist_oci::store::Store;
use hoist_oci::transfer::{export_oci_layout, import_docker_archive, import_oci_layout};
use hoist_oci::{Descriptor, Digest, Reference};

/// A tiny uncompressed "layer" (any bytes work for the store) and an image over it.
fn put_image(store: &Store, layer: &[u8]) -> Descriptor {
    let (digest, size) = store.blobs().put(layer).unwrap();
    let config = ImageConfig {
        architecture: "amd64".into(),
        os: "linux".into(),
        rootfs: RootFs {
            kind: "layers".into(),
            diff_ids: vec![digest.clone()],
        },
        ..Default::default()
    };
    store
        .put_image(&config, vec![Descriptor::new(mt::OCI_LAYER, digest, size)])
        .unwrap()
}

fn name(s: &str) -> Reference {
    s.parse().unwrap()
}

#[test]
fn layout_export_adds_to_an_existing_layout_and_imports_both() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("home")).unwrap();
    let a = store
        .add_image(&put_image(&store, b"layer a"), &[name("app:a")])
        .unwrap();
    let b = store
        .add_image(&put_image(&store, b"layer b"), &[name("app:b")])
        .unwrap();
    let layout = dir.path().join("layout");
    export_oci_layout(&store, &a, Some(&name("app:a")), &layout).unwrap();
    export_oci_layout(&store, &b, Some(&name("app:b")), &layout).unwrap();
    // Re-exporting a tag replaces its entry rather than adding a third.
    export_oci_layout(&store, &b, Some(&name("app:b")), &layout).unwrap();
    let index: serde_json::Value =
        serde_json::from_slice(&fs::read(layout.join("index.json")).unwrap()).unwrap();
    assert_eq!(index["manifests"].as_array().unwrap().len(), 2);
    assert_eq!(
        index["manifests"][0]["annotations"]["org.opencontainers.image.ref.name"],
        "a"
    );

    let other = Store::open(&dir.path().join("other")).unwrap();
    let loaded = import_oci_layout(&other, &layout, None).unwrap();
    assert_eq!(loaded.len(), 2);
    assert_eq!(other.resolve("app:a").unwrap().digest, a.digest);
    assert_eq!(
        other.resolve("docker.io/library/app:b").unwrap().digest,
        b.digest
    );
    // A name for a two-image layout is refused.
    assert!(import_oci_layout(&other, &layout, Some(&name("x:y"))).is_err());
}

#[test]
fn a_corrupt_blob_in_a_layout_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("home")).unwrap();
    let a = store
        .add_image(&put_image(&store, b"layer a"), &[name("app:a")])
        .unwrap();
    let layout = dir.path().join("layout");
    export_oci_layout(&store, &a, None, &layout).unwrap();
    let layer = Digest::sha256_of(b"layer a");
    fs::write(layout.join("blobs/sha256").join(layer.hex()), b"layer A").unwrap();
    let other = Store::open(&dir.path().join("other")).unwrap();
    let err = import_oci_layout(&other, &layout, None)
        .unwrap_err()
        .to_string();
    assert!(err.contains("digest mismatch"), "{err}");
    assert!(other.list().unwrap().is_empty());
}

/// Write a docker-archive by hand.
fn archive(entries: &[(&str, &[u8])]) -> tempfile::NamedTempFile {
    let mut f = tempfile::NamedTempFile::new().unwrap();
    {
        let mut b = tar::Builder::new(f.as_file_mut());
        for (path, data) in entries {
            let mut h = tar::Header::new_gnu();
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            h.set_entry_type(tar::EntryType::Regular);
            // Write the name raw so that `..` can be tested.
            h.as_gnu_mut().unwrap().name[..path.len()].copy_from_slice(path.as_bytes());
            h.set_cksum();
            b.append(&h, *data).unwrap();
        }
        b.finish().unwrap();
    }
    f.flush().unwrap();
    f
}

fn layer_tar() -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_ustar();
    h.set_size(2);
    h.set_mode(0o644);
    b.append_data(&mut h, "hi.txt", &b"hi"[..]).unwrap();
    b.into_inner().unwrap()
}

fn config_for(diff_id: &Digest) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "architecture": "amd64", "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": [diff_id]}
    }))
    .unwrap()
}

#[test]
fn docker_archive_checks_diff_ids_and_names() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let layer = layer_tar();
    let good = config_for(&Digest::sha256_of(&layer));
    let manifest =
        br#"[{"Config":"c.json","RepoTags":["example.com/a/b:1"],"Layers":["l/layer.tar"]}]"#;
    let ok = archive(&[
        ("l/layer.tar", &layer),
        ("c.json", &good),
        ("manifest.json", manifest),
    ]);
    let loaded = import_docker_archive(&store, ok.path(), None).unwrap();
    assert_eq!(loaded[0].record.names, vec!["example.com/a/b:1".to_owned()]);
    assert_eq!(loaded[0].record.id, Digest::sha256_of(&good));

    let wrong = config_for(&Digest::sha256_of(b"something else"));
    let bad = archive(&[
        ("l/layer.tar", &layer),
        ("c.json", &wrong),
        ("manifest.json", manifest),
    ]);
    let err = import_docker_archive(&store, bad.path(), None)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("l/layer.tar") && err.contains("diff_id"),
        "{err}"
    );

    let escape = archive(&[("../evil.json", b"{}"), ("manifest.json", manifest)]);
    let err = import_docker_archive(&store, escape.path(), None)
        .unwrap_err()
        .to_string();
    assert!(err.contains("escapes"), "{err}");

    let missing = archive(&[("c.json", &good), ("manifest.json", manifest)]);
    let err = import_docker_archive(&store, missing.path(), None)
        .unwrap_err()
        .to_string();
    assert!(err.contains("Layers[0]"), "{err}");
}

#[test]
fn gc_waits_for_writers_and_keeps_what_they_record() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let session = store.write_session().unwrap();
    let desc = put_image(&store, b"in flight");
    let gc = {
        let store = store.clone();
        std::thread::spawn(move || store.gc().unwrap())
    };
    // GC must not run while the session is open, or it would take the unrecorded blobs.
    std::thread::sleep(std::time::Duration::from_millis(200));
    store.add_image(&desc, &[name("kept:1")]).unwrap();
    drop(session);
    let report = gc.join().unwrap();
    assert_eq!(report.blobs_removed, 0);
    assert!(store.reachable(&desc).unwrap().len() == 3);
    // Unreferenced content does go.
    store.blobs().put(b"orphan").unwrap();
    assert_eq!(store.gc().unwrap().blobs_removed, 1);
}

#[test]
fn an_image_with_missing_blobs_is_never_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let desc = put_image(&store, b"layer");
    store.blobs().remove(&Digest::sha256_of(b"layer")).unwrap();
    let err = store
        .add_image(&desc, &[name("broken:1")])
        .unwrap_err()
        .to_string();
    assert!(err.contains("missing"), "{err}");
    assert!(store.list().unwrap().is_empty());
}

#[test]
fn docker_schema2_manifest_lists_are_recorded_and_exported() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("home")).unwrap();
    let layer = layer_tar();
    let (layer_digest, layer_size) = store.blobs().put(&layer).unwrap();
    let config = config_for(&layer_digest);
    let (config_digest, config_size) = store.blobs().put(&config).unwrap();
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": mt::DOCKER_MANIFEST,
        "config": {"mediaType": mt::DOCKER_CONFIG, "size": config_size, "digest": config_digest},
        "layers": [{"mediaType": mt::DOCKER_LAYER, "size": layer_size, "digest": layer_digest}]
    }))
    .unwrap();
    let (m_digest, m_size) = store.blobs().put(&manifest).unwrap();
    let host = hoist_oci::Platform::host();
    let list = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": mt::DOCKER_MANIFEST_LIST,
        "manifests": [
            {"mediaType": mt::DOCKER_MANIFEST, "size": 999, "digest": Digest::sha256_of(b"absent"),
             "platform": {"architecture": "s390x", "os": "linux"}},
            {"mediaType": mt::DOCKER_MANIFEST, "size": m_size, "digest": m_digest,
             "platform": {"architecture": host.architecture, "os": "linux"}}
        ]
    }))
    .unwrap();
    let (l_digest, l_size) = store.blobs().put(&list).unwrap();
    let rec = store
        .add_image(
            &Descriptor::new(mt::DOCKER_MANIFEST_LIST, l_digest.clone(), l_size),
            &[name("multi:1")],
        )
        .unwrap();
    // An index's ID is its own digest; the absent platform is tolerated.
    assert_eq!(rec.id, l_digest);
    assert_eq!(store.reachable(&rec.descriptor()).unwrap().len(), 4);
    let chosen = hoist_oci::transfer::platform_manifest(&store, &rec).unwrap();
    assert_eq!(chosen.config.digest, Digest::sha256_of(&config));
    // docker-archive export goes through the host platform's manifest.
    let out = dir.path().join("multi.tar");
    hoist_oci::transfer::export_docker_archive(&store, &rec, &[name("multi:1")], &out).unwrap();
    let other = Store::open(&dir.path().join("other")).unwrap();
    let loaded = import_docker_archive(&other, &out, None).unwrap();
    assert_eq!(loaded[0].record.id, Digest::sha256_of(&config));
    assert_eq!(
        loaded[0].record.names,
        vec!["docker.io/library/multi:1".to_owned()]
    );
}
