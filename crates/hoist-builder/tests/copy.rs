//! COPY/ADD against real directories: the BuildKit rules for destinations,
//! wildcards, symlinks, metadata, `.dockerignore`/`--exclude`, archives and URLs.

#![allow(clippy::unwrap_used)]

use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use hoist_builder::context::BuildContext;
use hoist_builder::copy::{
    execute, parse_chmod, resolve_chown, source_digest, AddOptions, CopyError, CopyFrom, CopyOp,
    CopyStats,
};
use hoist_oci::Digest;
use hoist_snapshot::{MergedView, PlainDir};
use tempfile::TempDir;

struct Env {
    _tmp: TempDir,
    ctx: PathBuf,
    root: PathBuf,
    staging: PathBuf,
    dl: PathBuf,
}

impl Env {
    fn new() -> Env {
        let tmp = TempDir::new().unwrap();
        let ctx = tmp.path().join("ctx");
        let root = tmp.path().join("rootfs");
        let staging = tmp.path().join("staging");
        let dl = tmp.path().join("dl");
        for d in [&ctx, &root, &staging] {
            fs::create_dir(d).unwrap();
        }
        Env {
            _tmp: tmp,
            ctx,
            root,
            staging,
            dl,
        }
    }
    fn file(&self, rel: &str, body: &str) -> PathBuf {
        let p = self.ctx.join(rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(&p, body).unwrap();
        p
    }
    fn context(&self) -> BuildContext {
        BuildContext::open(&self.ctx, &self.ctx.join("Dockerfile")).unwrap()
    }
    fn staged(&self, rel: &str) -> String {
        fs::read_to_string(self.staging.join(rel)).unwrap()
    }
    fn exists(&self, rel: &str) -> bool {
        fs::symlink_metadata(self.staging.join(rel)).is_ok()
    }
    fn meta(&self, rel: &str) -> fs::Metadata {
        fs::symlink_metadata(self.staging.join(rel)).unwrap()
    }
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

/// Runs a COPY from the context with `dest_view` = the env's rootfs.
fn copy(env: &Env, sources: &[&str], dest: &str) -> Result<CopyStats, CopyError> {
    copy_with(env, sources, dest, &[], |_| {})
}

fn copy_with(
    env: &Env,
    sources: &[&str],
    dest: &str,
    exclude: &[String],
    tweak: impl FnOnce(&mut CopyOp<'_>),
) -> Result<CopyStats, CopyError> {
    let ctx = env.context();
    let view = PlainDir::new(env.root.clone());
    let sources = strings(sources);
    let mut op = CopyOp {
        sources: &sources,
        dest,
        workdir: "/work",
        from: CopyFrom::Context(&ctx),
        exclude,
        chown: None,
        chmod: None,
        link: false,
        dest_view: &view,
        add: None,
        source_date_epoch: None,
    };
    tweak(&mut op);
    execute(&op, &env.staging, &env.dl)
}

#[test]
fn single_file_to_new_path_and_relative_dest_uses_workdir() {
    let env = Env::new();
    env.file("a.txt", "A");
    copy(&env, &["a.txt"], "b.txt").unwrap();
    assert_eq!(env.staged("work/b.txt"), "A");
    assert!(env.meta("work").is_dir());
}

#[test]
fn trailing_slash_makes_a_directory() {
    let env = Env::new();
    env.file("a.txt", "A");
    copy(&env, &["a.txt"], "/app/").unwrap();
    assert_eq!(env.staged("app/a.txt"), "A");
}

#[test]
fn file_into_existing_directory_of_the_stage_following_symlinks() {
    let env = Env::new();
    env.file("a.txt", "A");
    fs::create_dir_all(env.root.join("srv/real")).unwrap();
    std::os::unix::fs::symlink("/srv/real", env.root.join("app")).unwrap();
    copy(&env, &["a.txt"], "/app").unwrap();
    // /app is a symlink to a directory: the file goes inside its target.
    assert_eq!(env.staged("srv/real/a.txt"), "A");
    assert!(!env.exists("app"));
}

#[test]
fn directory_source_copies_its_contents() {
    let env = Env::new();
    env.file("src/x/y.txt", "Y");
    env.file("src/z.txt", "Z");
    copy(&env, &["src"], "/dst").unwrap();
    assert_eq!(env.staged("dst/x/y.txt"), "Y");
    assert_eq!(env.staged("dst/z.txt"), "Z");
    assert!(!env.exists("dst/src"));
}

#[test]
fn several_sources_into_a_directory() {
    let env = Env::new();
    env.file("a", "1");
    env.file("b", "2");
    copy(&env, &["a", "b"], "/d/").unwrap();
    assert_eq!(env.staged("d/a"), "1");
    assert_eq!(env.staged("d/b"), "2");
}

#[test]
fn wildcards_follow_buildkit() {
    let env = Env::new();
    env.file("foo.go", "foo");
    env.file("bar.go", "bar");
    env.file("sub/dir1/dir2/foo", "deep");
    copy(&env, &["*.go"], "/gofiles/").unwrap();
    assert_eq!(env.staged("gofiles/foo.go"), "foo");
    assert_eq!(env.staged("gofiles/bar.go"), "bar");
    // One match, dest without slash: a file (BuildKit's testCopyWildcards).
    copy(&env, &["f*.go"], "/foo2.go").unwrap();
    assert_eq!(env.staged("foo2.go"), "foo");
    // A matched directory copies its contents; `*` does not cross `/`.
    copy(&env, &["sub/*"], "/subdest/").unwrap();
    assert_eq!(env.staged("subdest/dir2/foo"), "deep");
    copy(&env, &["sub/*/dir2/foo"], "/subdest3/bar").unwrap();
    assert_eq!(env.staged("subdest3/bar"), "deep");
}

#[test]
fn empty_wildcard_is_fine_missing_plain_source_is_not() {
    let env = Env::new();
    env.file("foo", "x");
    copy(&env, &["foo", "nomatch*"], "/").unwrap();
    assert_eq!(env.staged("foo"), "x");
    let err = copy(&env, &["missing.txt"], "/").unwrap_err();
    assert!(matches!(err, CopyError::NotFound { ignored: false, .. }));
    let msg = err.to_string();
    assert!(
        msg.contains("missing.txt") && msg.contains("build context"),
        "{msg}"
    );
    assert_eq!(
        copy(&env, &[], "/").unwrap_err().to_string(),
        "no source files were specified"
    );
}

#[test]
fn sources_are_cleaned_to_the_context_root() {
    let env = Env::new();
    env.file("x", "inside");
    // A sibling of the context that must stay unreachable.
    fs::write(env.ctx.parent().unwrap().join("x"), "outside").unwrap();
    copy(&env, &["../x"], "/out").unwrap();
    assert_eq!(env.staged("out"), "inside");
    // A symlink pointing out of the context resolves inside it.
    std::os::unix::fs::symlink("../../x", env.ctx.join("esc")).unwrap();
    copy(&env, &["esc"], "/esc").unwrap();
    assert_eq!(env.staged("esc"), "inside");
}

#[test]
fn symlinks_top_level_followed_nested_kept() {
    let env = Env::new();
    env.file("real.txt", "R");
    std::os::unix::fs::symlink("real.txt", env.ctx.join("link")).unwrap();
    env.file("dir/f", "F");
    std::os::unix::fs::symlink("f", env.ctx.join("dir/l")).unwrap();
    fs::create_dir(env.ctx.join("sub")).unwrap();
    env.file("sub/foo", "via link");
    std::os::unix::fs::symlink("sub", env.ctx.join("sublink")).unwrap();
    copy(&env, &["link"], "/d/").unwrap();
    // Followed, but named after the source as written.
    assert!(env.meta("d/link").is_file());
    assert_eq!(env.staged("d/link"), "R");
    copy(&env, &["dir"], "/e").unwrap();
    assert!(env.meta("e/l").file_type().is_symlink());
    assert_eq!(
        fs::read_link(env.staging.join("e/l")).unwrap(),
        Path::new("f")
    );
    copy(&env, &["sublink/foo"], "/g").unwrap();
    assert_eq!(env.staged("g"), "via link");
}

#[test]
fn metadata_mode_mtime_owner_and_hardlinks() {
    let env = Env::new();
    let p = env.file("dir/exe", "#!/bin/sh");
    fs::set_permissions(&p, fs::Permissions::from_mode(0o751)).unwrap();
    std::os::unix::fs::lchown(&p, Some(1234), Some(4321)).unwrap();
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_000_000);
    fs::File::options()
        .write(true)
        .open(&p)
        .unwrap()
        .set_modified(t)
        .unwrap();
    fs::hard_link(&p, env.ctx.join("dir/exe2")).unwrap();
    let stats = copy(&env, &["dir"], "/d").unwrap();
    assert_eq!(stats.files, 2);
    let m = env.meta("d/exe");
    assert_eq!(m.mode() & 0o7777, 0o751);
    assert_eq!(m.mtime(), 1_000_000);
    // From the context, owners are reset to root.
    assert_eq!((m.uid(), m.gid()), (0, 0));
    assert_eq!(m.ino(), env.meta("d/exe2").ino(), "hard link kept");
}

#[test]
fn chown_and_chmod_apply_to_files_dirs_and_created_parents() {
    let env = Env::new();
    env.file("src/sub/f", "x");
    copy_with(&env, &["src"], "/a/b/", &[], |op| {
        op.chown = Some((1000, 1001));
        op.chmod = Some(0o640);
    })
    .unwrap();
    for rel in ["a", "a/b"] {
        let m = env.meta(rel);
        assert_eq!(
            (m.uid(), m.gid(), m.mode() & 0o7777),
            (1000, 1001, 0o755),
            "{rel}"
        );
    }
    let f = env.meta("a/b/sub/f");
    assert_eq!((f.uid(), f.gid(), f.mode() & 0o7777), (1000, 1001, 0o640));
    let d = env.meta("a/b/sub");
    assert_eq!(d.mode() & 0o7777, 0o640);
}

#[test]
fn existing_parents_keep_their_metadata_from_the_stage() {
    let env = Env::new();
    env.file("f", "x");
    let opt = env.root.join("opt");
    fs::create_dir(&opt).unwrap();
    fs::set_permissions(&opt, fs::Permissions::from_mode(0o711)).unwrap();
    std::os::unix::fs::lchown(&opt, Some(7), Some(8)).unwrap();
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(123_456);
    fs::File::open(&opt).unwrap().set_modified(t).unwrap();
    copy(&env, &["f"], "/opt/new/f").unwrap();
    let m = env.meta("opt");
    assert_eq!(
        (m.mode() & 0o7777, m.uid(), m.gid(), m.mtime()),
        (0o711, 7, 8, 123_456)
    );
    let n = env.meta("opt/new");
    assert_eq!((n.mode() & 0o7777, n.uid(), n.gid()), (0o755, 0, 0));
    // --link ignores the stage: /opt is created fresh.
    let env2 = Env::new();
    env2.file("f", "x");
    fs::create_dir(env2.root.join("opt")).unwrap();
    fs::set_permissions(env2.root.join("opt"), fs::Permissions::from_mode(0o711)).unwrap();
    copy_with(&env2, &["f"], "/opt/f", &[], |op| op.link = true).unwrap();
    assert_eq!(env2.meta("opt").mode() & 0o7777, 0o755);
}

#[test]
fn file_onto_a_directory_of_the_stage_goes_inside_but_never_replaces_nested_dirs() {
    let env = Env::new();
    env.file("d/x", "file");
    fs::create_dir_all(env.root.join("t/x")).unwrap();
    let err = copy(&env, &["d"], "/t").unwrap_err();
    assert!(matches!(err, CopyError::DirectoryInTheWay { .. }), "{err}");
    fs::write(env.root.join("plain"), "").unwrap();
    let err = copy(&env, &["d"], "/plain").unwrap_err();
    assert!(matches!(err, CopyError::NotADirectory { .. }), "{err}");
}

#[test]
fn copy_from_a_tree_keeps_owners() {
    let env = Env::new();
    let stage = env.root.parent().unwrap().join("stage");
    fs::create_dir_all(stage.join("out")).unwrap();
    fs::write(stage.join("out/bin"), "B").unwrap();
    std::os::unix::fs::lchown(stage.join("out/bin"), Some(33), Some(44)).unwrap();
    std::os::unix::fs::symlink("/out", stage.join("link")).unwrap();
    let src = PlainDir::new(stage.clone());
    let view = PlainDir::new(env.root.clone());
    let sources = strings(&["/link/bin"]);
    let mk = |chown| CopyOp {
        sources: &sources,
        dest: "/usr/bin/",
        workdir: "/",
        from: CopyFrom::Tree(&src),
        exclude: &[],
        chown,
        chmod: None,
        link: false,
        dest_view: &view,
        add: None,
        source_date_epoch: None,
    };
    execute(&mk(None), &env.staging, &env.dl).unwrap();
    let m = env.meta("usr/bin/bin");
    assert_eq!((m.uid(), m.gid()), (33, 44));
    fs::remove_dir_all(&env.staging).unwrap();
    fs::create_dir(&env.staging).unwrap();
    execute(&mk(Some((5, 6))), &env.staging, &env.dl).unwrap();
    let m = env.meta("usr/bin/bin");
    assert_eq!((m.uid(), m.gid()), (5, 6));
    // The digest includes owners for trees.
    let d1 = source_digest(&mk(None), &env.dl).unwrap();
    std::os::unix::fs::lchown(stage.join("out/bin"), Some(34), Some(44)).unwrap();
    assert_ne!(d1, source_digest(&mk(None), &env.dl).unwrap());
}

#[test]
fn dest_view_can_be_a_merged_view() {
    let env = Env::new();
    env.file("f", "x");
    let lower2 = env.root.parent().unwrap().join("lower2");
    fs::create_dir_all(lower2.join("etc")).unwrap();
    fs::set_permissions(lower2.join("etc"), fs::Permissions::from_mode(0o750)).unwrap();
    let view = MergedView::new(vec![env.root.clone(), lower2]);
    let ctx = env.context();
    let sources = strings(&["f"]);
    let op = CopyOp {
        sources: &sources,
        dest: "/etc",
        workdir: "/",
        from: CopyFrom::Context(&ctx),
        exclude: &[],
        chown: None,
        chmod: None,
        link: false,
        dest_view: &view,
        add: None,
        source_date_epoch: None,
    };
    execute(&op, &env.staging, &env.dl).unwrap();
    assert_eq!(env.staged("etc/f"), "x");
    assert_eq!(env.meta("etc").mode() & 0o7777, 0o750);
}

#[test]
fn dockerignore_with_reinclude() {
    let env = Env::new();
    env.file(".dockerignore", "logs\n!logs/keep.log\n*.tmp\n");
    env.file("logs/a.log", "a");
    env.file("logs/keep.log", "k");
    env.file("x.tmp", "t");
    env.file("y.txt", "y");
    let ctx = env.context();
    assert!(ctx.is_ignored(Path::new("logs/a.log")));
    assert!(!ctx.is_ignored(Path::new("logs/keep.log")));
    copy(&env, &["."], "/all/").unwrap();
    assert_eq!(env.staged("all/y.txt"), "y");
    assert_eq!(env.staged("all/logs/keep.log"), "k");
    assert!(!env.exists("all/logs/a.log"));
    assert!(!env.exists("all/x.tmp"));
    let err = copy(&env, &["x.tmp"], "/").unwrap_err();
    assert!(matches!(err, CopyError::NotFound { ignored: true, .. }));
    assert!(err.to_string().contains(".dockerignore"), "{err}");
    // An ignored directory holding a re-included file exists with that file only.
    copy(&env, &["logs"], "/l/").unwrap();
    assert!(env.exists("l/keep.log") && !env.exists("l/a.log"));
    // Wildcards do not see ignored files.
    copy(&env, &["*.tmp", "*.txt"], "/w/").unwrap();
    assert!(env.exists("w/y.txt") && !env.exists("w/x.tmp"));
}

#[test]
fn dockerfile_specific_ignore_file_wins() {
    let env = Env::new();
    env.file(".dockerignore", "a\n");
    env.file("sub/app.Dockerfile", "FROM scratch\n");
    env.file("sub/app.Dockerfile.dockerignore", "b\n");
    let ctx = BuildContext::open(&env.ctx, &env.ctx.join("sub/app.Dockerfile")).unwrap();
    assert!(ctx.is_ignored(Path::new("b")));
    assert!(!ctx.is_ignored(Path::new("a")));
    let plain = BuildContext::open(&env.ctx, &env.ctx.join("Dockerfile")).unwrap();
    assert!(plain.is_ignored(Path::new("a")));
    env.file(".dockerignore", "[\n");
    let err = BuildContext::open(&env.ctx, &env.ctx.join("Dockerfile")).unwrap_err();
    assert!(matches!(err, CopyError::IgnoreFile { .. }), "{err}");
}

#[test]
fn exclude_is_relative_to_each_source_with_exceptions() {
    let env = Env::new();
    env.file("dir3/a.mp3", "");
    env.file("dir3/b.txt", "b");
    env.file("dir3/keep.mp3", "k");
    env.file("dir3/sub/c.mp3", "");
    let ex = strings(&["*.mp3", "!keep.mp3"]);
    copy_with(&env, &["dir3/"], "/3/", &ex, |_| {}).unwrap();
    assert!(env.exists("3/b.txt"));
    assert!(env.exists("3/keep.mp3"));
    assert!(!env.exists("3/a.mp3"));
    // `*.mp3` does not match `sub/c.mp3` (no `**`).
    assert!(env.exists("3/sub/c.mp3"));
    let ex2 = strings(&["**/*.mp3"]);
    fs::remove_dir_all(&env.staging).unwrap();
    fs::create_dir(&env.staging).unwrap();
    copy_with(&env, &["dir3"], "/4/", &ex2, |_| {}).unwrap();
    assert!(!env.exists("4/sub/c.mp3") && env.exists("4/sub"));
}

#[test]
fn source_digest_tracks_content_not_mtime() {
    let env = Env::new();
    let p = env.file("f", "one");
    env.file(".dockerignore", "ignored\n");
    env.file("ignored", "x");
    let ctx = env.context();
    let view = PlainDir::new(env.root.clone());
    let sources = strings(&["."]);
    let op = CopyOp {
        sources: &sources,
        dest: "/",
        workdir: "/",
        from: CopyFrom::Context(&ctx),
        exclude: &[],
        chown: None,
        chmod: None,
        link: false,
        dest_view: &view,
        add: None,
        source_date_epoch: None,
    };
    let d1 = source_digest(&op, &env.dl).unwrap();
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(42);
    fs::File::options()
        .write(true)
        .open(&p)
        .unwrap()
        .set_modified(t)
        .unwrap();
    assert_eq!(
        d1,
        source_digest(&op, &env.dl).unwrap(),
        "mtime is not part of it"
    );
    fs::write(env.ctx.join("ignored"), "changed").unwrap();
    assert_eq!(
        d1,
        source_digest(&op, &env.dl).unwrap(),
        "ignored files are not"
    );
    fs::write(&p, "two").unwrap();
    let d2 = source_digest(&op, &env.dl).unwrap();
    assert_ne!(d1, d2);
    fs::set_permissions(&p, fs::Permissions::from_mode(0o700)).unwrap();
    assert_ne!(
        d2,
        source_digest(&op, &env.dl).unwrap(),
        "mode is part of it"
    );
}

fn tar_bytes(entries: &[(&str, &str)]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (name, body) in entries {
        let mut h = tar::Header::new_gnu();
        h.set_size(body.len() as u64);
        h.set_mode(0o644);
        h.set_uid(10);
        h.set_gid(20);
        h.set_mtime(5000);
        h.set_cksum();
        b.append_data(&mut h, name, body.as_bytes()).unwrap();
    }
    b.into_inner().unwrap()
}

fn add_local(env: &Env, src: &str, dest: &str, unpack: bool) -> Result<CopyStats, CopyError> {
    copy_with(env, &[src], dest, &[], |op| {
        op.add = Some(AddOptions {
            checksum: None,
            unpack,
        })
    })
}

#[test]
fn add_extracts_local_archives() {
    let env = Env::new();
    let plain = tar_bytes(&[("a/b.txt", "inside")]);
    fs::write(env.ctx.join("plain.tar"), &plain).unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&plain).unwrap();
    fs::write(env.ctx.join("x.tgz"), gz.finish().unwrap()).unwrap();
    let mut bz = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::fast());
    bz.write_all(&plain).unwrap();
    fs::write(env.ctx.join("x.tar.bz2"), bz.finish().unwrap()).unwrap();
    let mut xz = Vec::new();
    lzma_rs::xz_compress(&mut &plain[..], &mut xz).unwrap();
    fs::write(env.ctx.join("x.tar.xz"), xz).unwrap();
    for (src, dest) in [
        ("plain.tar", "/p"),
        ("x.tgz", "/g/"),
        ("x.tar.bz2", "/b"),
        ("x.tar.xz", "/x"),
    ] {
        add_local(&env, src, dest, true).unwrap();
        let d = dest.trim_matches('/');
        assert_eq!(env.staged(&format!("{d}/a/b.txt")), "inside", "{src}");
        let m = env.meta(&format!("{d}/a/b.txt"));
        assert_eq!((m.uid(), m.gid(), m.mtime()), (10, 20, 5000), "{src}");
    }
    // --chown applies to extracted entries.
    copy_with(&env, &["x.tgz"], "/c", &[], |op| {
        op.add = Some(AddOptions {
            checksum: None,
            unpack: true,
        });
        op.chown = Some((1, 2));
    })
    .unwrap();
    let m = env.meta("c/a/b.txt");
    assert_eq!((m.uid(), m.gid()), (1, 2));
    // --unpack=false copies the file; a non-archive named .tar.gz is copied too.
    add_local(&env, "x.tgz", "/raw/", false).unwrap();
    assert!(env.meta("raw/x.tgz").is_file());
    env.file("fake.tar.gz", "not an archive");
    add_local(&env, "fake.tar.gz", "/fake/", true).unwrap();
    assert_eq!(env.staged("fake/fake.tar.gz"), "not an archive");
}

struct Server {
    url: String,
    hits: Arc<AtomicUsize>,
}

/// Serves `body` (with a Last-Modified header) for any path but `/missing` (404).
fn serve(body: &'static [u8]) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let hits = Arc::new(AtomicUsize::new(0));
    let h = hits.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { continue };
            h.fetch_add(1, Ordering::SeqCst);
            let mut r = BufReader::new(s.try_clone().unwrap());
            let mut line = String::new();
            r.read_line(&mut line).unwrap();
            loop {
                let mut l = String::new();
                if r.read_line(&mut l).unwrap() == 0 || l == "\r\n" {
                    break;
                }
            }
            if line.contains("/missing") {
                let _ = s.write_all(
                    b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                );
                continue;
            }
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nLast-Modified: Sun, 06 Nov 1994 08:49:37 GMT\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = s.write_all(head.as_bytes());
            let _ = s.write_all(body);
            let mut rest = Vec::new();
            let _ = r.read_to_end(&mut rest);
        }
    });
    Server { url, hits }
}

fn add_url(
    env: &Env,
    url: &str,
    dest: &str,
    checksum: Option<Digest>,
) -> (Result<CopyStats, CopyError>, Result<Digest, CopyError>) {
    let ctx = env.context();
    let view = PlainDir::new(env.root.clone());
    let sources = vec![url.to_owned()];
    let op = CopyOp {
        sources: &sources,
        dest,
        workdir: "/",
        from: CopyFrom::Context(&ctx),
        exclude: &[],
        chown: None,
        chmod: None,
        link: false,
        dest_view: &view,
        add: Some(AddOptions {
            checksum,
            unpack: true,
        }),
        source_date_epoch: None,
    };
    let digest = source_digest(&op, &env.dl);
    (execute(&op, &env.staging, &env.dl), digest)
}

#[test]
fn add_url_names_file_mode_0600_mtime_and_download_reuse() {
    let body: &'static [u8] = b"payload";
    let srv = serve(body);
    let env = Env::new();
    let url = format!("{}/files/tool.tar.gz", srv.url);
    let (res, digest) = add_url(&env, &url, "/opt/", None);
    res.unwrap();
    digest.unwrap();
    // Downloaded once for the digest, reused by execute; never unpacked.
    assert_eq!(srv.hits.load(Ordering::SeqCst), 1);
    assert_eq!(env.staged("opt/tool.tar.gz"), "payload");
    let m = env.meta("opt/tool.tar.gz");
    assert_eq!(m.mode() & 0o7777, 0o600);
    assert_eq!(m.mtime(), 784111777);
    // To a non-directory dest: that path.
    let (res, _) = add_url(&env, &url, "/bin/tool", None);
    res.unwrap();
    assert_eq!(env.staged("bin/tool"), "payload");
}

#[test]
fn add_url_checksum_and_status_errors() {
    let body: &'static [u8] = b"checked";
    let srv = serve(body);
    let env = Env::new();
    let url = format!("{}/c", srv.url);
    let good = Digest::sha256_of(body);
    let (res, digest) = add_url(&env, &url, "/c", Some(good.clone()));
    res.unwrap();
    digest.unwrap();
    assert_eq!(env.staged("c"), "checked");
    assert_eq!(
        srv.hits.load(Ordering::SeqCst),
        1,
        "checksum: digest did not fetch"
    );

    let env2 = Env::new();
    let bad = Digest::sha256_of(b"other");
    let (res, _) = add_url(&env2, &url, "/c", Some(bad.clone()));
    let err = res.unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, CopyError::ChecksumMismatch { .. }));
    assert!(
        msg.contains(&good.to_string()) && msg.contains(&bad.to_string()),
        "{msg}"
    );

    let env3 = Env::new();
    let missing = format!("{}/missing", srv.url);
    let (res, _) = add_url(&env3, &missing, "/m", None);
    let err = res.unwrap_err();
    assert!(
        matches!(err, CopyError::HttpStatus { status: 404, .. }),
        "{err}"
    );
    assert!(err.to_string().contains(&missing));
}

#[test]
fn copy_refuses_urls() {
    let env = Env::new();
    let err = copy(&env, &["http://example.invalid/x"], "/").unwrap_err();
    assert!(matches!(err, CopyError::UrlInCopy { .. }), "{err}");
}

#[test]
fn chown_resolution_and_chmod_parsing() {
    let env = Env::new();
    fs::create_dir_all(env.root.join("etc")).unwrap();
    fs::write(
        env.root.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1001::/home/app:/bin/sh\n",
    )
    .unwrap();
    fs::write(env.root.join("etc/group"), "root:x:0:\nstaff:x:50:app\n").unwrap();
    let view = PlainDir::new(env.root.clone());
    assert_eq!(resolve_chown("app", &view).unwrap(), (1000, 1001));
    assert_eq!(resolve_chown("app:staff", &view).unwrap(), (1000, 50));
    assert_eq!(resolve_chown("app:7", &view).unwrap(), (1000, 7));
    assert_eq!(resolve_chown("42", &view).unwrap(), (42, 42));
    assert_eq!(resolve_chown("42:root", &view).unwrap(), (42, 0));
    let e = resolve_chown("nobody", &view).unwrap_err();
    assert!(e.to_string().contains("nobody"), "{e}");
    let e = resolve_chown("app:wheel", &view).unwrap_err();
    assert!(e.to_string().contains("wheel"), "{e}");
    assert_eq!(parse_chmod("0755").unwrap(), 0o755);
    assert!(parse_chmod("a+x")
        .unwrap_err()
        .to_string()
        .contains("not supported"));
}
