//! `hoist registry serve` driven by real skopeo and by a tiny HTTP/1.1 client that
//! checks the distribution protocol's edges.

mod util;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::Stdio;

use sha2::{Digest as _, Sha256};
use util::{busybox_rootfs, skopeo, Env, RegistryServer};

struct Resp {
    status: u16,
    headers: BTreeMap<String, String>,
    body: Vec<u8>,
}

impl Resp {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(&name.to_ascii_lowercase())
            .map(String::as_str)
    }

    fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "body is not JSON ({e}): {}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    fn error_code(&self) -> String {
        self.json()["errors"][0]["code"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }
}

/// One HTTP/1.1 request on a fresh connection.
fn http(addr: &str, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Resp {
    let mut s = TcpStream::connect(addr).expect("connect");
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).expect("write request");
    s.write_all(body).expect("write body");
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).expect("read response");
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("end of headers");
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut rest = raw[split + 4..].to_vec();
    let mut lines = head.split("\r\n");
    let status: u16 = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|c| c.parse().ok())
        .expect("status line");
    let headers: BTreeMap<String, String> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    if headers.get("transfer-encoding").map(String::as_str) == Some("chunked") {
        let mut out = Vec::new();
        let mut i = 0;
        loop {
            let eol = i + rest[i..]
                .windows(2)
                .position(|w| w == b"\r\n")
                .expect("chunk size");
            let n = usize::from_str_radix(std::str::from_utf8(&rest[i..eol]).expect("utf-8"), 16)
                .expect("hex chunk size");
            if n == 0 {
                break;
            }
            out.extend_from_slice(&rest[eol + 2..eol + 2 + n]);
            i = eol + 2 + n + 2;
        }
        rest = out;
    }
    Resp {
        status,
        headers,
        body: rest,
    }
}

fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{}", hex(&Sha256::digest(bytes)))
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Push a blob monolithically; asserts 201.
fn push_blob(addr: &str, name: &str, bytes: &[u8]) -> String {
    let d = sha256(bytes);
    let r = http(
        addr,
        "POST",
        &format!("/v2/{name}/blobs/uploads/?digest={d}"),
        &[],
        bytes,
    );
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.header("Docker-Content-Digest"), Some(d.as_str()));
    d
}

#[test]
fn skopeo_copies_an_image_in_and_out_with_the_same_digest() {
    let env = Env::new();
    let server = RegistryServer::start(&env);
    let rootfs = busybox_rootfs();
    env.ok(&[
        "image",
        "import",
        rootfs.to_str().expect("utf-8"),
        "busybox",
    ]);
    let layout = env.path("layout");
    env.ok(&[
        "image",
        "export",
        "busybox",
        "--format",
        "oci",
        layout.to_str().expect("utf-8"),
    ]);
    let src = format!("oci:{}", layout.display());
    let dest = format!("docker://{}/team/app/busybox:1", server.addr);
    skopeo(&["copy", "--dest-tls-verify=false", &src, &dest]);

    let raw_src = skopeo(&["inspect", "--raw", &src]);
    let raw_reg = skopeo(&["inspect", "--raw", "--tls-verify=false", &dest]);
    assert_eq!(sha256(raw_src.as_bytes()), sha256(raw_reg.as_bytes()));

    let out = env.path("out");
    let out_ref = format!("oci:{}", out.display());
    skopeo(&["copy", "--src-tls-verify=false", &dest, &out_ref]);
    let raw_out = skopeo(&["inspect", "--raw", &out_ref]);
    assert_eq!(
        sha256(raw_src.as_bytes()),
        sha256(raw_out.as_bytes()),
        "the manifest digest changed on the round trip"
    );

    let inspect: serde_json::Value =
        serde_json::from_str(&skopeo(&["inspect", "--tls-verify=false", &dest]))
            .expect("inspect JSON");
    assert_eq!(inspect["Digest"], sha256(raw_src.as_bytes()));
    assert_eq!(inspect["Os"], "linux");
    let tags: serde_json::Value = serde_json::from_str(&skopeo(&[
        "list-tags",
        "--tls-verify=false",
        &format!("docker://{}/team/app/busybox", server.addr),
    ]))
    .expect("list-tags JSON");
    assert_eq!(tags["Tags"], serde_json::json!(["1"]));

    // Docker schema 2: skopeo converts and pushes a Docker manifest, which is served
    // back with its Docker media type.
    let docker = format!("docker://{}/team/app/busybox:docker", server.addr);
    skopeo(&[
        "copy",
        "--format",
        "v2s2",
        "--dest-tls-verify=false",
        &src,
        &docker,
    ]);
    let raw_docker = skopeo(&["inspect", "--raw", "--tls-verify=false", &docker]);
    let m = http(
        &server.addr,
        "GET",
        "/v2/team/app/busybox/manifests/docker",
        &[],
        b"",
    );
    assert_eq!(
        m.header("Content-Type"),
        Some("application/vnd.docker.distribution.manifest.v2+json")
    );
    assert_eq!(m.body, raw_docker.as_bytes());
    assert_eq!(
        m.header("Docker-Content-Digest"),
        Some(sha256(raw_docker.as_bytes()).as_str())
    );

    let catalog = http(&server.addr, "GET", "/v2/_catalog", &[], b"");
    assert_eq!(
        catalog.json()["repositories"],
        serde_json::json!(["team/app/busybox"])
    );
    // The manifest is served with its own media type and digest, even to a client
    // that asks for something else.
    let m = http(
        &server.addr,
        "GET",
        "/v2/team/app/busybox/manifests/1",
        &[("Accept", "application/json")],
        b"",
    );
    assert_eq!(m.status, 200);
    assert_eq!(m.body, raw_src.as_bytes());
    assert_eq!(
        m.header("Content-Type"),
        serde_json::from_str::<serde_json::Value>(&raw_src).expect("json")["mediaType"].as_str()
    );
    // Blobs are per repository: another name does not see them.
    let layer = serde_json::from_str::<serde_json::Value>(&raw_src).expect("json")["layers"][0]
        ["digest"]
        .as_str()
        .expect("layer digest")
        .to_owned();
    let head = http(
        &server.addr,
        "HEAD",
        &format!("/v2/team/app/busybox/blobs/{layer}"),
        &[],
        b"",
    );
    assert_eq!(head.status, 200);
    let other = http(
        &server.addr,
        "HEAD",
        &format!("/v2/other/blobs/{layer}"),
        &[],
        b"",
    );
    assert_eq!(other.status, 404);
}

fn write_blob(layout: &Path, bytes: &[u8]) -> (String, usize) {
    let d = sha256(bytes);
    let dir = layout.join("blobs/sha256");
    std::fs::create_dir_all(&dir).expect("mkdir");
    std::fs::write(dir.join(&d["sha256:".len()..]), bytes).expect("write blob");
    (d, bytes.len())
}

#[test]
fn an_index_with_two_platforms_round_trips() {
    let env = Env::new();
    let server = RegistryServer::start(&env);
    let layout = env.path("multi");
    std::fs::create_dir_all(&layout).expect("mkdir");
    std::fs::write(
        layout.join("oci-layout"),
        r#"{"imageLayoutVersion":"1.0.0"}"#,
    )
    .expect("oci-layout");
    let mut tar = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(6);
    h.set_mode(0o644);
    h.set_cksum();
    tar.append_data(&mut h, "hello.txt", &b"hello\n"[..])
        .expect("tar");
    let tar_bytes = tar.into_inner().expect("tar");
    let diff_id = sha256(&tar_bytes);
    // gzip it (with gzip(1)), so skopeo has no reason to recompress and change digests.
    let mut gz = std::process::Command::new("gzip")
        .args(["-n", "-c"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("gzip");
    gz.stdin
        .take()
        .expect("stdin")
        .write_all(&tar_bytes)
        .expect("feed gzip");
    let layer_bytes = gz.wait_with_output().expect("gzip").stdout;
    let (layer, layer_size) = write_blob(&layout, &layer_bytes);
    let mut children = Vec::new();
    for arch in ["amd64", "arm64"] {
        let config = serde_json::json!({
            "architecture": arch, "os": "linux",
            "rootfs": {"type": "layers", "diff_ids": [diff_id]},
            "config": {}
        })
        .to_string();
        let (cd, cs) = write_blob(&layout, config.as_bytes());
        let manifest = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": cs},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": layer, "size": layer_size}]
        })
        .to_string();
        let (md, ms) = write_blob(&layout, manifest.as_bytes());
        children.push(serde_json::json!({
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": md, "size": ms,
            "platform": {"architecture": arch, "os": "linux"}
        }));
    }
    let index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": children
    })
    .to_string();
    let (id, is) = write_blob(&layout, index.as_bytes());
    std::fs::write(
        layout.join("index.json"),
        serde_json::json!({
            "schemaVersion": 2,
            "manifests": [{
                "mediaType": "application/vnd.oci.image.index.v1+json",
                "digest": id, "size": is,
                "annotations": {"org.opencontainers.image.ref.name": "v1"}
            }]
        })
        .to_string(),
    )
    .expect("index.json");

    let src = format!("oci:{}:v1", layout.display());
    let dest = format!("docker://{}/multi/arch:v1", server.addr);
    skopeo(&[
        "copy",
        "--all",
        "--preserve-digests",
        "--dest-tls-verify=false",
        &src,
        &dest,
    ]);
    let raw = skopeo(&["inspect", "--raw", "--tls-verify=false", &dest]);
    assert_eq!(raw, index, "the index bytes changed");
    for child in &children {
        let d = child["digest"].as_str().expect("digest");
        let r = http(
            &server.addr,
            "GET",
            &format!("/v2/multi/arch/manifests/{d}"),
            &[],
            b"",
        );
        assert_eq!(r.status, 200);
        assert_eq!(sha256(&r.body), d);
        assert_eq!(r.header("Docker-Content-Digest"), Some(d));
    }
    let out = env.path("out");
    let out_ref = format!("oci:{}:v1", out.display());
    skopeo(&[
        "copy",
        "--all",
        "--preserve-digests",
        "--src-tls-verify=false",
        &dest,
        &out_ref,
    ]);
    assert_eq!(
        sha256(skopeo(&["inspect", "--raw", &out_ref]).as_bytes()),
        id
    );
}

#[test]
fn upload_protocol_edges() {
    let env = Env::new();
    let server = RegistryServer::start(&env);
    let addr = server.addr.as_str();

    let base = http(addr, "GET", "/v2/", &[], b"");
    assert_eq!(base.status, 200);
    assert_eq!(
        base.header("Docker-Distribution-API-Version"),
        Some("registry/2.0")
    );

    // Chunked upload: POST, PATCH with Content-Range, out-of-order PATCH → 416.
    let start = http(addr, "POST", "/v2/a/b/blobs/uploads/", &[], b"");
    assert_eq!(start.status, 202);
    assert_eq!(start.header("Range"), Some("0-0"));
    assert!(start.header("OCI-Chunk-Min-Length").is_some());
    let uuid = start.header("Docker-Upload-UUID").expect("uuid").to_owned();
    let loc = start.header("Location").expect("location").to_owned();
    assert_eq!(loc, format!("/v2/a/b/blobs/uploads/{uuid}"));
    let data: Vec<u8> = (0..100_000u32).map(|i| (i % 253) as u8).collect();
    let r = http(
        addr,
        "PATCH",
        &loc,
        &[("Content-Range", "0-49999")],
        &data[..50_000],
    );
    assert_eq!(r.status, 202);
    assert_eq!(r.header("Range"), Some("0-49999"));
    let r = http(
        addr,
        "PATCH",
        &loc,
        &[("Content-Range", "60000-69999")],
        &data[60_000..70_000],
    );
    assert_eq!(r.status, 416);
    assert_eq!(r.error_code(), "BLOB_UPLOAD_INVALID");
    let status = http(addr, "GET", &loc, &[], b"");
    assert_eq!(status.status, 204);
    assert_eq!(status.header("Range"), Some("0-49999"));
    // A PATCH without Content-Range streams on.
    let r = http(addr, "PATCH", &loc, &[], &data[50_000..90_000]);
    assert_eq!(r.header("Range"), Some("0-89999"));
    // Bad digest on PUT → 400 DIGEST_INVALID, nothing stored.
    let wrong = sha256(b"something else");
    let r = http(
        addr,
        "PUT",
        &format!("{loc}?digest={wrong}"),
        &[],
        &data[90_000..],
    );
    assert_eq!(r.status, 400);
    assert_eq!(r.error_code(), "DIGEST_INVALID");
    assert_eq!(
        http(addr, "HEAD", &format!("/v2/a/b/blobs/{wrong}"), &[], b"").status,
        404
    );

    // A fresh chunked upload whose last chunk comes with the PUT.
    let start = http(addr, "POST", "/v2/a/b/blobs/uploads/", &[], b"");
    let loc = start.header("Location").expect("location").to_owned();
    let r = http(
        addr,
        "PATCH",
        &loc,
        &[("Content-Range", "0-69999")],
        &data[..70_000],
    );
    assert_eq!(r.status, 202);
    let digest = sha256(&data);
    let r = http(
        addr,
        "PUT",
        &format!("{loc}?digest={digest}"),
        &[],
        &data[70_000..],
    );
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.header("Docker-Content-Digest"), Some(digest.as_str()));
    assert_eq!(
        r.header("Location"),
        Some(format!("/v2/a/b/blobs/{digest}").as_str())
    );
    // The session is gone.
    assert_eq!(
        http(addr, "GET", &loc, &[], b"").error_code(),
        "BLOB_UPLOAD_UNKNOWN"
    );

    // GET, HEAD and Range GET of the blob.
    let blob_path = format!("/v2/a/b/blobs/{digest}");
    let g = http(addr, "GET", &blob_path, &[], b"");
    assert_eq!(g.status, 200);
    assert_eq!(g.body, data);
    let h = http(addr, "HEAD", &blob_path, &[], b"");
    assert_eq!(h.header("Content-Length"), Some("100000"));
    assert!(h.body.is_empty());
    let r = http(
        addr,
        "GET",
        &blob_path,
        &[("Range", "bytes=1000-1999")],
        b"",
    );
    assert_eq!(r.status, 206);
    assert_eq!(r.header("Content-Range"), Some("bytes 1000-1999/100000"));
    assert_eq!(r.body, &data[1000..2000]);
    let r = http(addr, "GET", &blob_path, &[("Range", "bytes=200000-")], b"");
    assert_eq!(r.status, 416);

    // Cross-repository mount: 201 when `from` has it, else a 202 upload.
    let r = http(
        addr,
        "POST",
        &format!("/v2/c/blobs/uploads/?mount={digest}&from=a/b"),
        &[],
        b"",
    );
    assert_eq!(r.status, 201);
    assert_eq!(
        http(addr, "HEAD", &format!("/v2/c/blobs/{digest}"), &[], b"").status,
        200
    );
    let r = http(
        addr,
        "POST",
        &format!("/v2/d/blobs/uploads/?mount={digest}&from=nowhere"),
        &[],
        b"",
    );
    assert_eq!(r.status, 202);
    let cancel = r.header("Location").expect("location").to_owned();
    assert_eq!(http(addr, "DELETE", &cancel, &[], b"").status, 204);
    assert_eq!(http(addr, "GET", &cancel, &[], b"").status, 404);

    // A manifest that references a missing blob.
    let config = push_blob(addr, "a/b", b"{}");
    let missing = sha256(b"not pushed");
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config, "size": 2},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": missing, "size": 10}]
    })
    .to_string();
    let ct = ("Content-Type", "application/vnd.oci.image.manifest.v1+json");
    let r = http(
        addr,
        "PUT",
        "/v2/a/b/manifests/v1",
        &[ct],
        manifest.as_bytes(),
    );
    assert_eq!(r.status, 404);
    assert_eq!(r.error_code(), "MANIFEST_BLOB_UNKNOWN");

    // A good manifest; PUT by a digest that does not match is refused.
    let manifest = manifest
        .replace(&missing, &digest)
        .replace("\"size\":10", "\"size\":100000");
    let md = sha256(manifest.as_bytes());
    let r = http(
        addr,
        "PUT",
        &format!("/v2/a/b/manifests/{wrong}"),
        &[ct],
        manifest.as_bytes(),
    );
    assert_eq!(r.error_code(), "DIGEST_INVALID");
    let r = http(
        addr,
        "PUT",
        &format!("/v2/a/b/manifests/{md}"),
        &[ct],
        manifest.as_bytes(),
    );
    assert_eq!(r.status, 201);
    assert_eq!(r.header("Docker-Content-Digest"), Some(md.as_str()));
    for tag in ["v1", "v2", "v3"] {
        let r = http(
            addr,
            "PUT",
            &format!("/v2/a/b/manifests/{tag}"),
            &[ct],
            manifest.as_bytes(),
        );
        assert_eq!(r.status, 201);
    }
    let h = http(addr, "HEAD", "/v2/a/b/manifests/v2", &[], b"");
    assert_eq!(h.header("Docker-Content-Digest"), Some(md.as_str()));
    assert_eq!(
        h.header("Content-Length"),
        Some(manifest.len().to_string().as_str())
    );

    // Tag pagination with a Link header.
    let t = http(addr, "GET", "/v2/a/b/tags/list?n=2", &[], b"");
    assert_eq!(
        t.json(),
        serde_json::json!({"name": "a/b", "tags": ["v1", "v2"]})
    );
    assert_eq!(
        t.header("Link"),
        Some("</v2/a/b/tags/list?n=2&last=v2>; rel=\"next\"")
    );
    let t = http(addr, "GET", "/v2/a/b/tags/list?n=2&last=v2", &[], b"");
    assert_eq!(t.json()["tags"], serde_json::json!(["v3"]));
    assert!(t.header("Link").is_none());
    let unknown = http(addr, "GET", "/v2/never/pushed/tags/list", &[], b"");
    assert_eq!(unknown.status, 404);
    assert_eq!(unknown.error_code(), "NAME_UNKNOWN");
    assert_eq!(
        http(addr, "GET", "/v2/Bad_Name/tags/list", &[], b"").error_code(),
        "NAME_INVALID"
    );

    // Referrers: an artifact whose subject is the manifest.
    let empty = push_blob(addr, "a/b", b"{ }");
    let artifact = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "artifactType": "application/vnd.example.sbom",
        "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": empty, "size": 3},
        "layers": [],
        "subject": {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": md, "size": manifest.len()}
    })
    .to_string();
    let ad = sha256(artifact.as_bytes());
    let r = http(
        addr,
        "PUT",
        &format!("/v2/a/b/manifests/{ad}"),
        &[ct],
        artifact.as_bytes(),
    );
    assert_eq!(r.status, 201);
    assert_eq!(r.header("OCI-Subject"), Some(md.as_str()));
    let refs = http(addr, "GET", &format!("/v2/a/b/referrers/{md}"), &[], b"");
    assert_eq!(refs.status, 200);
    let list = refs.json();
    assert_eq!(list["manifests"][0]["digest"], ad.as_str());
    assert_eq!(
        list["manifests"][0]["artifactType"],
        "application/vnd.example.sbom"
    );
    let filtered = http(
        addr,
        "GET",
        &format!("/v2/a/b/referrers/{md}?artifactType=other"),
        &[],
        b"",
    );
    assert_eq!(filtered.header("OCI-Filters-Applied"), Some("artifactType"));
    assert_eq!(filtered.json()["manifests"], serde_json::json!([]));

    // Deleting the manifest by digest removes it and its tags.
    assert_eq!(
        http(addr, "DELETE", &format!("/v2/a/b/manifests/{md}"), &[], b"").status,
        202
    );
    let g = http(addr, "GET", "/v2/a/b/manifests/v1", &[], b"");
    assert_eq!(
        (g.status, g.error_code().as_str()),
        (404, "MANIFEST_UNKNOWN")
    );
    assert_eq!(
        http(addr, "GET", "/v2/a/b/tags/list", &[], b"").json()["tags"],
        serde_json::json!([])
    );
    // Deleting a blob unlinks it from the repository only.
    assert_eq!(http(addr, "DELETE", &blob_path, &[], b"").status, 202);
    let g = http(addr, "GET", &blob_path, &[], b"");
    assert_eq!((g.status, g.error_code().as_str()), (404, "BLOB_UNKNOWN"));
    assert_eq!(
        http(addr, "HEAD", &format!("/v2/c/blobs/{digest}"), &[], b"").status,
        200
    );
}

#[test]
fn concurrent_uploads_of_overlapping_blobs_are_all_intact() {
    let env = Env::new();
    let server = RegistryServer::start(&env);
    let blobs: Vec<Vec<u8>> = (0..4u32)
        .map(|k| {
            (0..300_000u32)
                .map(|i| ((i * (k + 3)) % 251) as u8)
                .collect()
        })
        .collect();
    std::thread::scope(|s| {
        for t in 0..20usize {
            let (addr, blob) = (server.addr.as_str(), &blobs[t % 4]);
            s.spawn(move || {
                let name = format!("con/r{}", t % 3);
                let start = http(
                    addr,
                    "POST",
                    &format!("/v2/{name}/blobs/uploads/"),
                    &[],
                    b"",
                );
                assert_eq!(start.status, 202);
                let loc = start.header("Location").expect("location").to_owned();
                for (i, chunk) in blob.chunks(65_536).enumerate() {
                    let from = i * 65_536;
                    let range = format!("{from}-{}", from + chunk.len() - 1);
                    let r = http(addr, "PATCH", &loc, &[("Content-Range", &range)], chunk);
                    assert_eq!(r.status, 202);
                }
                let d = sha256(blob);
                let r = http(addr, "PUT", &format!("{loc}?digest={d}"), &[], b"");
                assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
            });
        }
    });
    for t in 0..20usize {
        let blob = &blobs[t % 4];
        let r = http(
            &server.addr,
            "GET",
            &format!("/v2/con/r{}/blobs/{}", t % 3, sha256(blob)),
            &[],
            b"",
        );
        assert_eq!(r.status, 200);
        assert!(
            r.body == *blob,
            "blob {} in con/r{} is corrupt",
            t % 4,
            t % 3
        );
    }
    // No upload session is left behind.
    let uploads = env.path("registry/_uploads");
    assert_eq!(std::fs::read_dir(uploads).expect("uploads dir").count(), 0);
}

#[test]
fn patches_racing_on_one_session_do_not_interleave() {
    let env = Env::new();
    let server = RegistryServer::start(&env);
    let addr = server.addr.as_str();
    let start = http(addr, "POST", "/v2/race/blobs/uploads/", &[], b"");
    let loc = start.header("Location").expect("location").to_owned();
    let a = vec![b'a'; 2 << 20];
    let b = vec![b'b'; 2 << 20];
    std::thread::scope(|s| {
        for part in [&a, &b] {
            let loc = loc.as_str();
            s.spawn(move || assert_eq!(http(addr, "PATCH", loc, &[], part).status, 202));
        }
    });
    let status = http(addr, "GET", &loc, &[], b"");
    assert_eq!(status.header("Range"), Some("0-4194303"));
    // The session holds one whole chunk after the other: a then b, or b then a.
    let ab = sha256(&[a.as_slice(), b.as_slice()].concat());
    let ba = sha256(&[b.as_slice(), a.as_slice()].concat());
    let first = http(addr, "PUT", &format!("{loc}?digest={ab}"), &[], b"");
    if first.status != 201 {
        assert_eq!(first.error_code(), "DIGEST_INVALID");
        let second = http(addr, "PUT", &format!("{loc}?digest={ba}"), &[], b"");
        assert_eq!(second.status, 201, "the two chunks were interleaved");
    }
}

#[test]
fn hoist_pushes_pulls_and_builds_from_its_own_registry() {
    let env = Env::new();
    let server = RegistryServer::start(&env);
    let base = env.import_busybox("busybox");
    let dest = format!("{}/base/busybox:1", server.addr);
    env.ok(&["push", "busybox", &dest]);

    // Pulled into another store: the same manifest digest.
    let other = Env::new();
    other.ok(&["pull", &dest]);
    assert_eq!(other.inspect(&dest)["Digest"], base["Digest"]);

    // A build in a third store pulls its base from the registry by itself.
    let third = Env::new();
    let ctx = third.path("ctx");
    std::fs::create_dir_all(&ctx).unwrap();
    std::fs::write(
        ctx.join("Dockerfile"),
        format!("FROM {dest}\nRUN echo built > /built\n"),
    )
    .unwrap();
    third.ok(&["build", ctx.to_str().unwrap(), "-t", "from-registry"]);
    assert_eq!(third.inspect(&dest)["Digest"], base["Digest"]);
    let built = third.inspect("from-registry");
    assert_eq!(built["RootFS"]["Layers"].as_array().unwrap().len(), 2);

    // A base that is nowhere gives the registry's answer and the ways out.
    std::fs::write(
        ctx.join("Dockerfile"),
        format!("FROM {}/base/missing:1\n", server.addr),
    )
    .unwrap();
    let err = third.fails(&["build", ctx.to_str().unwrap()]);
    assert!(
        err.contains("MANIFEST_UNKNOWN") || err.contains("NAME_UNKNOWN"),
        "{err}"
    );
    assert!(err.contains("hoist image import"), "{err}");
}
