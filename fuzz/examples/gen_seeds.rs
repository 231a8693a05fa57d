//! Builds the seed corpora under `fuzz/corpus/<target>/` (git-ignored):
//!
//! * `layer_apply`: small structure-aware tars made with the `tar` crate (raw
//!   headers, so `..` and absolute paths go in unchanged): symlinks to `/` and to
//!   host paths, `..` paths, hardlinks to host paths, whiteouts and opaque
//!   markers, PAX and GNU long names, devices, fifos, xattrs; plus gzip and zstd
//!   copies of a few.
//! * `dockerfile_parse`: every Dockerfile under the BuildKit conformance data
//!   (`/work/shared/conformance/buildkit-dockerfile`, or the directory given as
//!   the first argument), read at run time, never copied into the repository.
//! * `dockerfile_expand`: the words of the conformance `envVarTest`/`wordsTest`.
//! * `dockerignore`, `reference_parse`, `manifest_parse`: small hand-written inputs.
//! * the inventory targets (`dpkg_status`, `apk_installed`, `rpm_header`,
//!   `os_release`, `lang_*`): small hand-written databases and lockfiles, a jar made
//!   with the `zip` crate, a cargo-auditable payload made with `flate2`, an rpm
//!   header made with `rpm::encode_header`, and the host's own
//!   `/var/lib/dpkg/status` and `/etc/os-release` when present. The `lang_*`
//!   targets read their first byte as the format selector, so each seed starts with
//!   the selector of its format.
//!
//! Run from `fuzz/`: `cargo run --example gen_seeds`.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use tar::{EntryType, Header};

const CANARY_DIR: &str = "/tmp/hoist-fuzz-canary";

struct Tar {
    b: tar::Builder<Vec<u8>>,
}

impl Tar {
    fn new() -> Tar {
        Tar {
            b: tar::Builder::new(Vec::new()),
        }
    }

    fn pax(&mut self, records: &[(&str, &[u8])]) {
        let mut data = Vec::new();
        for (k, v) in records {
            // "<len> <key>=<value>\n", where len counts itself.
            let rest = k.len() + v.len() + 3;
            let mut len = rest + 1;
            while len != rest + len.to_string().len() {
                len = rest + len.to_string().len();
            }
            data.extend_from_slice(format!("{len} {k}=").as_bytes());
            data.extend_from_slice(v);
            data.push(b'\n');
        }
        let mut h = Header::new_ustar();
        h.as_old_mut().name[..9].copy_from_slice(b"PaxHeader");
        h.set_entry_type(EntryType::XHeader);
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        self.b.append(&h, &data[..]).expect("append pax");
    }

    #[allow(clippy::too_many_arguments)]
    fn raw(&mut self, ty: EntryType, path: &[u8], link: &[u8], mode: u32, data: &[u8]) {
        let mut pax: Vec<(&str, &[u8])> = Vec::new();
        if path.len() > 100 {
            pax.push(("path", path));
        }
        if link.len() > 100 {
            pax.push(("linkpath", link));
        }
        if !pax.is_empty() {
            self.pax(&pax);
        }
        let mut h = Header::new_ustar();
        let n = path.len().min(100);
        h.as_old_mut().name[..n].copy_from_slice(&path[..n]);
        let n = link.len().min(100);
        h.as_old_mut().linkname[..n].copy_from_slice(&link[..n]);
        h.set_entry_type(ty);
        h.set_mode(mode);
        h.set_mtime(1_700_000_000);
        h.set_uid(0);
        h.set_gid(0);
        h.set_size(data.len() as u64);
        h.set_cksum();
        self.b.append(&h, data).expect("append");
    }

    fn dir(&mut self, path: &str) -> &mut Tar {
        self.raw(EntryType::Directory, path.as_bytes(), b"", 0o755, b"");
        self
    }
    fn file(&mut self, path: &str, data: &str) -> &mut Tar {
        self.raw(
            EntryType::Regular,
            path.as_bytes(),
            b"",
            0o644,
            data.as_bytes(),
        );
        self
    }
    fn symlink(&mut self, path: &str, target: &str) -> &mut Tar {
        self.raw(
            EntryType::Symlink,
            path.as_bytes(),
            target.as_bytes(),
            0o777,
            b"",
        );
        self
    }
    fn hardlink(&mut self, path: &str, target: &str) -> &mut Tar {
        self.raw(
            EntryType::Link,
            path.as_bytes(),
            target.as_bytes(),
            0o644,
            b"",
        );
        self
    }
    fn special(&mut self, ty: EntryType, path: &str, major: u32, minor: u32) -> &mut Tar {
        let mut h = Header::new_ustar();
        h.set_path(path).expect("path");
        h.set_entry_type(ty);
        h.set_mode(0o600);
        h.set_size(0);
        h.set_device_major(major).expect("major");
        h.set_device_minor(minor).expect("minor");
        h.set_cksum();
        self.b.append(&h, &b""[..]).expect("append");
        self
    }
    fn done(&mut self) -> Vec<u8> {
        let b = std::mem::replace(&mut self.b, tar::Builder::new(Vec::new()));
        b.into_inner().expect("finish tar")
    }
}

fn layer_seeds() -> Vec<(&'static str, Vec<u8>)> {
    let host = format!("{CANARY_DIR}/host");
    let hostdir = format!("{CANARY_DIR}/hostdir");
    let mut out = Vec::new();
    let mut t = Tar::new();

    out.push(("plain", t.dir("etc").file("etc/hostname", "box\n").done()));
    out.push((
        "symlink-root-then-write",
        t.symlink("link", "/")
            .file("link/etc/passwd", "root:x:0:0::/:/bin/sh\n")
            .file(&format!("link{host}"), "pwned\n")
            .done(),
    ));
    out.push((
        "symlink-up-then-write",
        t.symlink("up", "../../..")
            .file("up/x", "x")
            .symlink("up2", "..")
            .file("up2/escaped", "x")
            .done(),
    ));
    out.push(("dotdot-path", t.file("../escaped", "x").done()));
    out.push((
        "dotdot-inner",
        t.dir("a").file("a/../../escaped", "x").done(),
    ));
    out.push(("absolute-path", t.file(&host, "pwned\n").done()));
    out.push((
        "symlink-host-dir",
        t.symlink("d", &hostdir).file("d/planted", "x").done(),
    ));
    out.push((
        "symlink-host-file-overwrite",
        t.symlink("f", &host).file("f", "pwned\n").done(),
    ));
    out.push((
        "hardlink-host",
        t.hardlink("hl", &host).file("hl", "pwned\n").done(),
    ));
    out.push((
        "hardlink-via-symlink",
        t.symlink("s", CANARY_DIR).hardlink("hl", "s/host").done(),
    ));
    out.push((
        "hardlink-dotdot",
        t.hardlink("hl", "../target")
            .hardlink("hl2", "../../etc/passwd")
            .done(),
    ));
    out.push((
        "hardlink-to-symlink",
        t.symlink("s", &host)
            .hardlink("hl", "s")
            .file("hl", "pwned\n")
            .done(),
    ));
    out.push((
        "whiteouts",
        t.dir("a")
            .file("a/x", "x")
            .file(".wh.b", "")
            .file("a/.wh..wh..opq", "")
            .file(".wh..wh..opq", "")
            .file(".wh.", "")
            .file(".wh...", "")
            .file(".wh..", "")
            .done(),
    ));
    out.push((
        "whiteout-through-symlink",
        t.symlink("l", &hostdir)
            .file("l/.wh..wh..opq", "")
            .symlink("m", CANARY_DIR)
            .file("m/.wh.host", "")
            .done(),
    ));
    out.push((
        "replace-root",
        t.symlink(".", "/")
            .file("x", "x")
            .symlink("./", "..")
            .done(),
    ));
    out.push((
        "dir-then-symlink",
        t.dir("a")
            .symlink("a", "/")
            .file("a/x", "x")
            .dir("a/b")
            .done(),
    ));
    out.push((
        "symlink-loop",
        t.symlink("a", "b")
            .symlink("b", "a")
            .file("a/x", "x")
            .done(),
    ));
    out.push((
        "devices",
        t.special(EntryType::Char, "null", 1, 3)
            .special(EntryType::Block, "blk", 7, 0)
            .special(EntryType::Fifo, "fifo", 0, 0)
            .special(EntryType::Char, ".wh.x", 0, 0)
            .done(),
    ));
    let long = "d/".repeat(60) + "file";
    out.push((
        "long-names",
        t.dir("d")
            .file(&long, "x")
            .symlink(&("l".repeat(120)), &("/".to_owned() + &"x/".repeat(60)))
            .done(),
    ));
    // PAX path with `..` behind an innocent ustar name, and xattrs.
    t.pax(&[("path", b"../pax-escaped"), ("SCHILY.xattr.user.k", b"v")]);
    t.file("innocent", "x");
    t.pax(&[
        ("SCHILY.xattr.trusted.overlay.opaque", b"y"),
        ("SCHILY.xattr.security.capability", b"\x01\x00\x00\x02"),
        ("mtime", b"-1.5"),
        ("uid", b"4294967296"),
    ]);
    t.dir("x");
    out.push(("pax", t.done()));
    // GNU long name carrying `..`.
    {
        let name = b"../gnu-escaped\0";
        let mut h = Header::new_gnu();
        h.as_old_mut().name[..13].copy_from_slice(b"././@LongLink");
        h.set_entry_type(EntryType::GNULongName);
        h.set_size(name.len() as u64);
        h.set_cksum();
        t.b.append(&h, &name[..]).expect("append");
        t.file("short", "x");
    }
    out.push(("gnu-longname", t.done()));
    out.push((
        "file-then-dir-then-file",
        t.file("a", "1")
            .dir("a")
            .file("a", "2")
            .dir("a/b")
            .hardlink("c", "a/b")
            .done(),
    ));
    out.push(("modes", {
        t.raw(EntryType::Directory, b"ro", b"", 0o000, b"");
        t.raw(EntryType::Regular, b"ro/f", b"", 0o4755, b"x");
        t.raw(EntryType::Directory, b"sticky", b"", 0o1777, b"");
        t.done()
    }));

    let mut compressed = Vec::new();
    for (name, data) in &out {
        if ["plain", "symlink-root-then-write", "whiteouts", "pax"].contains(name) {
            let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            gz.write_all(data).expect("gzip");
            compressed.push((name.to_string() + ".gz", gz.finish().expect("gzip")));
            let zst = zstd::encode_all(&data[..], 1).expect("zstd");
            compressed.push((name.to_string() + ".zst", zst));
        }
    }
    let mut all: Vec<(&'static str, Vec<u8>)> = out;
    for (name, data) in compressed {
        all.push((Box::leak(name.into_boxed_str()), data));
    }
    all
}

fn write(dir: &Path, name: &str, data: &[u8]) {
    fs::create_dir_all(dir).expect("corpus dir");
    fs::write(dir.join(name), data).expect("write seed");
}

fn files_named(dir: &Path, name: &str, out: &mut Vec<PathBuf>) {
    let Ok(rd) = fs::read_dir(dir) else { return };
    for e in rd.flatten() {
        let p = e.path();
        if p.is_dir() {
            files_named(&p, name, out);
        } else if p.file_name().is_some_and(|n| n == name) {
            out.push(p);
        }
    }
}

fn main() {
    let fuzz = Path::new(env!("CARGO_MANIFEST_DIR"));
    let corpus = fuzz.join("corpus");
    let conformance = std::env::args()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/work/shared/conformance/buildkit-dockerfile"));

    let seeds = layer_seeds();
    for (name, data) in &seeds {
        write(&corpus.join("layer_apply"), name, data);
    }
    println!("layer_apply: {} seeds", seeds.len());

    // Dockerfiles: copied at run time into the git-ignored corpus only.
    let mut dockerfiles = Vec::new();
    files_named(&conformance, "Dockerfile", &mut dockerfiles);
    dockerfiles.sort();
    for p in &dockerfiles {
        let rel = p.strip_prefix(&conformance).unwrap_or(p);
        let name = rel.to_string_lossy().replace('/', "_");
        write(
            &corpus.join("dockerfile_parse"),
            &name,
            &fs::read(p).expect("read Dockerfile"),
        );
    }
    let own: &[(&str, &str)] = &[
        ("from", "FROM busybox\nRUN echo hi\n"),
        ("escape", "# escape=`\nFROM x\nRUN a `\n  b\n"),
        ("heredoc", "FROM x\nRUN <<EOF\necho hi\nEOF\nCOPY <<a <<b /\n1\na\n2\nb\n"),
        ("json", "FROM x\nCMD [\"a\", \"b\\\"\"]\nENTRYPOINT [\"x\"\n"),
        ("stages", "ARG V=1\nFROM a:${V} AS one\nFROM one\nCOPY --from=one --chown=1:1 /a /b\nONBUILD RUN x\nHEALTHCHECK --interval=5s CMD true\nSHELL [\"/bin/sh\", \"-c\"]\nEXPOSE 80/tcp\nLABEL a=b \"c d\"=e\nENV a=b c d\nUSER 1:1\nVOLUME [\"/v\"]\nSTOPSIGNAL 9\nWORKDIR /w\nMAINTAINER me\nADD --chmod=755 http://x/y /z\n"),
        ("continuation-comments", "FROM x\nRUN a \\\n# comment\n\\\n  b\n"),
    ];
    for (name, text) in own {
        write(&corpus.join("dockerfile_parse"), name, text.as_bytes());
    }
    println!(
        "dockerfile_parse: {} conformance + {} own seeds",
        dockerfiles.len(),
        own.len()
    );

    // Expansion words: selector byte 0 = `\` escape, 1 = `` ` `` escape.
    let mut n = 0;
    for file in ["envVarTest", "wordsTest"] {
        let Ok(text) = fs::read_to_string(conformance.join("expand").join(file)) else {
            continue;
        };
        for line in text.lines() {
            let word = match file {
                "envVarTest" => line.split('|').nth(1).map(str::trim),
                _ => line.split(" | ").next(),
            };
            let Some(word) = word else { continue };
            if line.starts_with('#') || line.starts_with("ENV ") || word.is_empty() {
                continue;
            }
            let sel = if line.starts_with('W') { 1u8 } else { 0u8 };
            let mut data = vec![sel];
            data.extend_from_slice(word.as_bytes());
            write(
                &corpus.join("dockerfile_expand"),
                &format!("{file}-{n}"),
                &data,
            );
            n += 1;
        }
    }
    for (i, w) in [
        "${A:-x}",
        "${A:+$SPACES}",
        "${UNI}\"$QUOTES\"",
        "${A",
        "$",
        "${:-}",
        "`$A`",
        "${A?err}",
        "'${A}'",
        "\"${EMPTY:-a b}\"",
    ]
    .iter()
    .enumerate()
    {
        let mut data = vec![(i % 2) as u8];
        data.extend_from_slice(w.as_bytes());
        write(
            &corpus.join("dockerfile_expand"),
            &format!("own-{i}"),
            &data,
        );
    }
    println!("dockerfile_expand: {} conformance + 10 own seeds", n);

    for (i, s) in [
        "*.go\n!main.go\0main.go",
        "**/node_modules\n!a/**/node_modules/keep\0a/b/node_modules",
        "dir\n!dir/sub\0dir",
        "# comment\n/abs/../x\n[a-c]?\0b1",
        "a/**\n!a/b*/c\0a",
        "**\n!**/*.md\0docs/x",
        "\u{feff}x\r\n!x/[^y]\\*\0x/z",
        "a{b,c}\n.+()|$\0a{b,c}",
        "[[:alpha:]]\\d\\w\0a1_",
        "!\0x",
        "a/*/b\n!a/x\0a/x/b",
    ]
    .iter()
    .enumerate()
    {
        write(
            &corpus.join("dockerignore"),
            &format!("own-{i}"),
            s.as_bytes(),
        );
    }

    for (i, s) in [
        "busybox",
        "library/busybox:1.36",
        "docker.io/library/busybox@sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824",
        "localhost:5000/a/b:tag",
        "[::1]:5000/app@sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824",
        "quay.io/x/y:v1.0-rc_1",
        "index.docker.io/user/app",
        "docker.io/foo.bar/app",
        "Uppercase/app",
        "a__b/c-d.e:tag@sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824",
        "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824",
        "localhost/app",
        "example.com:443/a:b",
    ]
    .iter()
    .enumerate()
    {
        write(&corpus.join("reference_parse"), &format!("own-{i}"), s.as_bytes());
    }

    let d = "sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824";
    let manifests = [
        format!(
            r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{d}","size":2}},"layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"{d}","size":10,"annotations":{{"a":"b"}}}}],"subject":{{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"{d}","size":1}}}}"#
        ),
        format!(
            r#"{{"schemaVersion":2,"manifests":[{{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"{d}","size":5,"platform":{{"architecture":"amd64","os":"linux","variant":"v8","os.version":"1","os.features":["x"]}}}}]}}"#
        ),
        format!(
            r#"{{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json","config":{{"mediaType":"application/vnd.docker.container.image.v1+json","size":7,"digest":"{d}"}},"layers":[]}}"#
        ),
        r#"{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.list.v2+json","manifests":[]}"#
            .to_owned(),
        r#"{"schemaVersion":1,"name":"x","tag":"y","fsLayers":[]}"#.to_owned(),
        format!(
            r#"{{"schemaVersion":2,"config":{{"mediaType":"x","digest":"sha512:{}","size":1}},"layers":[],"artifactType":"a"}}"#,
            "ab".repeat(64)
        ),
    ];
    for (i, m) in manifests.iter().enumerate() {
        write(
            &corpus.join("manifest_parse"),
            &format!("own-{i}"),
            m.as_bytes(),
        );
    }
    println!("dockerignore, reference_parse, manifest_parse: hand-written seeds");

    let mut count = 0;
    for (target, name, data) in inventory_seeds() {
        write(&corpus.join(target), &name, &data);
        count += 1;
    }
    println!("inventory targets: {count} seeds");
}

/// Seeds of the package-database and lockfile targets: (target, file name, bytes).
fn inventory_seeds() -> Vec<(&'static str, String, Vec<u8>)> {
    use hoist_inventory::os::rpm::{encode_header, HeaderValue};

    let mut out: Vec<(&'static str, String, Vec<u8>)> = Vec::new();
    let mut add = |target: &'static str, name: &str, data: Vec<u8>| {
        out.push((target, name.to_owned(), data));
    };
    let with_selector = |selector: u8, text: &str| {
        let mut v = vec![selector];
        v.extend_from_slice(text.as_bytes());
        v
    };

    add(
        "dpkg_status",
        "own-0",
        b"Package: libc6\nStatus: install ok installed\nSource: glibc (2.36-9+deb12u4)\nVersion: 2.36-9+deb12u4\nArchitecture: amd64\nDescription: GNU C Library\n multi-line\n .\n more\n\nPackage: bash\nStatus: deinstall ok config-files\nVersion: 5.2.15-2+b2\n\nPackage: tzdata\nStatus: install ok installed\nVersion: 2024a-0+deb12u1\nSource: tzdata\n"
            .to_vec(),
    );
    add(
        "dpkg_status",
        "own-1",
        b"Package: base-files\nVersion: 1:12.4+deb12u5\nSource: base-files (12.4)\nArchitecture: amd64\n".to_vec(),
    );
    if let Ok(host) = fs::read("/var/lib/dpkg/status") {
        // The first 20 entries keep the seed small enough for a fast fuzzer.
        let text = String::from_utf8_lossy(&host);
        let head: Vec<&str> = text.split("\n\n").take(20).collect();
        add("dpkg_status", "host-status", head.join("\n\n").into_bytes());
    }

    add(
        "apk_installed",
        "own-0",
        b"C:Q1abc=\nP:musl\nV:1.2.4-r2\nA:x86_64\nL:MIT\no:musl\nt:1700000000\n\nP:busybox\nV:1.36.1-r15\nL:GPL-2.0-only\no:busybox\nF:bin\nR:busybox\n\nP:ssl_client\nV:1.36.1-r15\n"
            .to_vec(),
    );

    add(
        "rpm_header",
        "own-0",
        encode_header(&[
            (1000, HeaderValue::Str("bash")),
            (1001, HeaderValue::Str("5.1.8")),
            (1002, HeaderValue::Str("6.el9")),
            (1003, HeaderValue::Int(1)),
            (1014, HeaderValue::Str("GPLv3+")),
            (1044, HeaderValue::Str("bash-5.1.8-6.el9.src.rpm")),
        ]),
    );
    add(
        "rpm_header",
        "own-1",
        encode_header(&[
            (1000, HeaderValue::Str("gpg-pubkey")),
            (1001, HeaderValue::Str("fd431d51")),
        ]),
    );

    add(
        "os_release",
        "own-0",
        b"PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nNAME=\"Debian GNU/Linux\"\nVERSION_ID=\"12\"\nVERSION_CODENAME=bookworm\nID=debian\n# comment\nX='a\\'b'\n"
            .to_vec(),
    );
    if let Ok(host) = fs::read("/etc/os-release") {
        add("os_release", "host", host);
    }

    for (i, text) in [
        "Metadata-Version: 2.1\nName: requests\nVersion: 2.31.0\nLicense: Apache 2.0\nClassifier: License :: OSI Approved :: Apache Software License\n\nbody",
        "Metadata-Version: 1.1\nName: six\nVersion: 1.16.0\nLicense: MIT\n",
        "# pinned\nrequests==2.31.0 ; python_version >= \"3.8\"\nflask[async]==3.0.0 \\\n    --hash=sha256:abc\n-r other.txt\nDjango>=4\nnumpy===1.26.0\n",
        "[[package]]\nname = \"certifi\"\nversion = \"2024.2.2\"\ndescription = \"x\"\noptional = false\n\n[[package]]\nname = \"idna\"\nversion = \"3.6\"\n\n[metadata]\nlock-version = \"2.0\"\n",
        "{\"_meta\": {\"hash\": {}}, \"default\": {\"requests\": {\"version\": \"==2.31.0\"}}, \"develop\": {\"pytest\": {\"version\": \"==8.0.0\"}}}",
    ]
    .iter()
    .enumerate()
    {
        add("lang_python", &format!("own-{i}"), with_selector(i as u8, text));
    }

    for (i, text) in [
        (0, "{\"name\": \"app\", \"lockfileVersion\": 3, \"packages\": {\"\": {\"name\": \"app\"}, \"node_modules/lodash\": {\"version\": \"4.17.21\"}, \"node_modules/a/node_modules/b\": {\"version\": \"1.0.0\", \"dev\": true}, \"packages/local\": {\"version\": \"0.1.0\"}}}"),
        (0, "{\"name\": \"app\", \"lockfileVersion\": 1, \"dependencies\": {\"express\": {\"version\": \"4.18.2\", \"dependencies\": {\"debug\": {\"version\": \"2.6.9\"}}}}}"),
        (1, "# yarn lockfile v1\n\n\nlodash@^4.17.0, lodash@^4.17.21:\n  version \"4.17.21\"\n  resolved \"https://registry.yarnpkg.com/lodash/-/lodash-4.17.21.tgz\"\n\n\"@babel/core@^7.0.0\":\n  version \"7.23.0\"\n"),
        (1, "__metadata:\n  version: 6\n\n\"lodash@npm:^4.17.21\":\n  version: 4.17.21\n  resolution: \"lodash@npm:4.17.21\"\n\n\"app@workspace:.\":\n  version: 0.0.0-use.local\n"),
        (2, "{\"name\": \"left-pad\", \"version\": \"1.3.0\", \"license\": \"WTFPL\"}"),
        (2, "{\"name\": \"@scope/pkg\", \"version\": \"2.0.0\", \"licenses\": [{\"type\": \"MIT\"}]}"),
    ]
    .iter()
    .enumerate()
    {
        add("lang_npm", &format!("own-{i}"), with_selector(text.0, text.1));
    }

    for (i, (selector, text)) in [
        (0u8, "version = 3\n\n[[package]]\nname = \"serde\"\nversion = \"1.0.190\"\nsource = \"registry+https://github.com/rust-lang/crates.io-index\"\nchecksum = \"abc\"\n\n[[package]]\nname = \"app\"\nversion = \"0.1.0\"\n"),
        (1, "module example.com/app\n\ngo 1.21\n\nrequire (\n\tgolang.org/x/net v0.17.0\n\tgithub.com/pkg/errors v0.9.1 // indirect\n)\n\nreplace github.com/pkg/errors => ../errors\nexclude golang.org/x/text v0.3.0\n"),
        (2, "golang.org/x/net v0.17.0 h1:abc=\ngolang.org/x/net v0.17.0/go.mod h1:def=\n"),
        (3, "#!/bin/sh\necho not an ELF\n"),
    ]
    .iter()
    .enumerate()
    {
        add("lang_rust_go", &format!("own-{i}"), with_selector(*selector, text));
    }
    let audit = br#"{"packages":[{"name":"app","version":"0.1.0","source":"local","root":true,"dependencies":[1]},{"name":"serde","version":"1.0.190","source":"crates.io"}]}"#;
    let mut z = flate2::write::ZlibEncoder::new(vec![4u8], flate2::Compression::default());
    z.write_all(audit).expect("zlib");
    add("lang_rust_go", "own-audit", z.finish().expect("zlib"));

    let jar = |entries: &[(&str, &[u8])]| -> Vec<u8> {
        let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        for (name, data) in entries {
            w.start_file(*name, zip::write::SimpleFileOptions::default())
                .expect("zip entry");
            w.write_all(data).expect("zip data");
        }
        w.finish().expect("zip").into_inner()
    };
    let inner = jar(&[(
        "META-INF/maven/org.slf4j/slf4j-api/pom.properties",
        b"groupId=org.slf4j\nartifactId=slf4j-api\nversion=2.0.9\n",
    )]);
    let outer = jar(&[
        (
            "META-INF/MANIFEST.MF",
            b"Manifest-Version: 1.0\r\nImplementation-Title: app\r\nImplementation-Version: 1.2.3\r\nImplementation-Vendor-Id: com.example\r\n",
        ),
        (
            "META-INF/maven/com.example/app/pom.properties",
            b"groupId=com.example\nartifactId=app\nversion=1.2.3\n",
        ),
        ("BOOT-INF/lib/slf4j-api-2.0.9.jar", &inner),
    ]);
    let mut seed = vec![0u8];
    seed.extend_from_slice(&outer);
    add("lang_java_ruby", "own-jar", seed);
    add(
        "lang_java_ruby",
        "own-gemspec",
        with_selector(
            1,
            "# -*- encoding: utf-8 -*-\nGem::Specification.new do |s|\n  s.name = \"rack\".freeze\n  s.version = \"3.0.8\"\n  s.licenses = [\"MIT\".freeze]\nend\n",
        ),
    );
    add(
        "lang_java_ruby",
        "own-gemfile-lock",
        with_selector(
            2,
            "GEM\n  remote: https://rubygems.org/\n  specs:\n    rack (3.0.8)\n    rails (7.1.2)\n      actionpack (= 7.1.2)\n\nPLATFORMS\n  ruby\n\nDEPENDENCIES\n  rails\n\nBUNDLED WITH\n   2.4.10\n",
        ),
    );
    out
}
