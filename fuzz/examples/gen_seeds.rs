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
}
