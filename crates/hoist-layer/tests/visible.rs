//! `walk_visible` over hand-made layer tars: what later layers delete, replace or hide
//! is not visited; same-layer duplicates and hardlinks.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use hoist_layer::visible::ProblemKind;
use hoist_layer::{walk_visible, VisibleFile, VisibleVisitor, WalkReport};

/// One tar entry of a hand-made layer.
enum E<'a> {
    File(&'a str, &'a str),
    Dir(&'a str),
    Symlink(&'a str, &'a str),
    Hardlink(&'a str, &'a str),
}

fn layer(entries: &[E<'_>]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for e in entries {
        let mut h = tar::Header::new_ustar();
        h.set_mode(0o644);
        h.set_mtime(0);
        h.set_uid(0);
        h.set_gid(0);
        match e {
            E::File(p, content) => {
                h.set_entry_type(tar::EntryType::Regular);
                h.set_size(content.len() as u64);
                b.append_data(&mut h, p, content.as_bytes()).unwrap();
            }
            E::Dir(p) => {
                h.set_entry_type(tar::EntryType::Directory);
                h.set_mode(0o755);
                h.set_size(0);
                b.append_data(&mut h, p, io::empty()).unwrap();
            }
            E::Symlink(p, t) => {
                h.set_entry_type(tar::EntryType::Symlink);
                h.set_size(0);
                b.append_link(&mut h, p, t).unwrap();
            }
            E::Hardlink(p, t) => {
                h.set_entry_type(tar::EntryType::Link);
                h.set_mode(0o755);
                h.set_size(0);
                b.append_link(&mut h, p, t).unwrap();
            }
        }
    }
    b.into_inner().unwrap()
}

/// Records every call; wants everything except paths ending in `.skip`.
#[derive(Default)]
struct Rec {
    /// (layer, path, content, mode, link target) in call order.
    visits: Vec<(usize, String, String, u32, Option<String>)>,
    withdrawn: Vec<(usize, String)>,
}

impl VisibleVisitor for Rec {
    fn wants(&mut self, path: &Path, _size: u64, _mode: u32) -> bool {
        !path.to_string_lossy().ends_with(".skip")
    }
    fn visit(&mut self, file: &VisibleFile<'_>, content: &mut dyn Read) -> io::Result<()> {
        let mut s = String::new();
        content.read_to_string(&mut s)?;
        assert_eq!(s.len() as u64, file.size, "{:?}", file.path);
        self.visits.push((
            file.layer,
            file.path.to_string_lossy().into_owned(),
            s,
            file.mode,
            file.link_target.map(|t| t.to_string_lossy().into_owned()),
        ));
        Ok(())
    }
    fn withdraw(&mut self, layer: usize, path: &Path) {
        self.withdrawn
            .push((layer, path.to_string_lossy().into_owned()));
    }
}

impl Rec {
    /// The final view: path -> (layer, content), applying re-deliveries and withdrawals.
    fn view(&self) -> BTreeMap<String, (usize, String)> {
        let mut out = BTreeMap::new();
        for (layer, path, content, _, _) in &self.visits {
            out.insert(path.clone(), (*layer, content.clone()));
        }
        for (layer, path) in &self.withdrawn {
            if out.get(path).is_some_and(|(l, _)| l == layer) {
                out.remove(path);
            }
        }
        out
    }
}

fn walk(layers: &[Vec<u8>]) -> (Rec, WalkReport, Vec<usize>) {
    let mut rec = Rec::default();
    let mut opened = Vec::new();
    let report = walk_visible(
        layers.len(),
        |i| {
            opened.push(i);
            Ok(io::Cursor::new(layers[i].clone()))
        },
        &mut rec,
    );
    (rec, report, opened)
}

fn view(pairs: &[(&str, usize, &str)]) -> BTreeMap<String, (usize, String)> {
    pairs
        .iter()
        .map(|(p, l, c)| (p.to_string(), (*l, c.to_string())))
        .collect()
}

#[test]
fn deleted_file_is_not_visited() {
    let l0 = layer(&[
        E::Dir("etc"),
        E::File("etc/a", "a0"),
        E::File("etc/b", "b0"),
    ]);
    let l1 = layer(&[E::Dir("etc"), E::File("etc/.wh.a", "")]);
    let (rec, report, opened) = walk(&[l0, l1]);
    assert!(report.problems.is_empty(), "{:?}", report.problems);
    assert_eq!(opened, vec![1, 0], "top-down, each layer once");
    assert_eq!(rec.view(), view(&[("etc/b", 0, "b0")]));
    assert_eq!(rec.visits.len(), 1);
}

#[test]
fn replaced_file_is_visited_once_with_upper_content_and_layer() {
    let l0 = layer(&[E::Dir("etc"), E::File("etc/a", "lower"), E::File("x", "x0")]);
    let l1 = layer(&[E::File("other", "o")]);
    let l2 = layer(&[E::Dir("etc"), E::File("etc/a", "upper")]);
    let (rec, report, _) = walk(&[l0, l1, l2]);
    assert!(report.problems.is_empty());
    assert_eq!(
        rec.visits
            .iter()
            .filter(|v| v.1 == "etc/a")
            .map(|v| (v.0, v.2.as_str()))
            .collect::<Vec<_>>(),
        vec![(2, "upper")]
    );
    assert_eq!(
        rec.view(),
        view(&[("etc/a", 2, "upper"), ("other", 1, "o"), ("x", 0, "x0")])
    );
}

#[test]
fn whiteout_of_a_directory_hides_its_tree_and_a_new_file_in_the_same_layer_shows() {
    let l0 = layer(&[E::Dir("d"), E::File("d/a", "a"), E::File("d/sub/b", "b")]);
    // Whiteouts affect lower layers only: d/c of this very layer stays.
    let l1 = layer(&[E::File(".wh.d", ""), E::Dir("d"), E::File("d/c", "c")]);
    let (rec, report, _) = walk(&[l0, l1]);
    assert!(report.problems.is_empty());
    assert_eq!(rec.view(), view(&[("d/c", 1, "c")]));
}

#[test]
fn opaque_directory_hides_lower_contents_only() {
    let l0 = layer(&[
        E::Dir("d"),
        E::File("d/a", "a0"),
        E::File("d/sub/deep", "deep"),
        E::File("d2/keep", "k"),
        E::File("dfile", "not under d"),
    ]);
    let l1 = layer(&[
        E::Dir("d"),
        E::File("d/.wh..wh..opq", ""),
        E::File("d/n", "n1"),
    ]);
    let (rec, report, _) = walk(&[l0, l1]);
    assert!(report.problems.is_empty());
    assert_eq!(
        rec.view(),
        view(&[
            ("d/n", 1, "n1"),
            ("d2/keep", 0, "k"),
            ("dfile", 0, "not under d")
        ])
    );
}

#[test]
fn upper_non_directory_hides_lower_tree_and_upper_directory_merges() {
    let l0 = layer(&[
        E::File("lib/x", "x"),
        E::File("usr/y", "y"),
        E::File("f", "file becomes dir"),
    ]);
    let l1 = layer(&[E::Symlink("lib", "usr/lib"), E::Dir("usr"), E::Dir("f")]);
    let (rec, report, _) = walk(&[l0, l1]);
    assert!(report.problems.is_empty());
    assert_eq!(rec.view(), view(&[("usr/y", 0, "y")]));
}

#[test]
fn same_layer_duplicates_last_entry_wins() {
    let l0 = layer(&[E::File("a", "lower a"), E::File("b", "lower b")]);
    let l1 = layer(&[
        E::File("a", "first"),
        E::File("a", "second"),
        E::File("b", "will become a symlink"),
        E::Symlink("b", "a"),
        E::File("c.skip", "not wanted"),
    ]);
    let (rec, report, _) = walk(&[l0, l1]);
    assert!(report.problems.is_empty());
    // b's file was delivered, then withdrawn when the symlink superseded it; the
    // lower a and b are hidden by layer 1 either way.
    assert_eq!(rec.withdrawn, vec![(1, "b".to_owned())]);
    assert_eq!(rec.view(), view(&[("a", 1, "second")]));
    assert!(rec.visits.iter().all(|v| v.0 == 1));
}

#[test]
fn hardlinks_resolve_within_the_layer() {
    let l0 = layer(&[E::File("bin/lower", "lower content")]);
    let l1 = layer(&[
        E::File("bin/tool", "tool v1"),
        E::Hardlink("bin/alias", "bin/tool"),
        E::Hardlink("bin/alias2", "bin/alias"),
        E::Hardlink("bin/other", "bin/tool"),
        // The target changes after the link: the links keep the earlier content.
        E::File("bin/tool", "tool v2"),
        // A link to a file of a lower layer is not resolved.
        E::Hardlink("bin/tolower", "bin/lower"),
    ]);
    let (rec, report, opened) = walk(&[l0, l1]);
    assert_eq!(opened, vec![1, 1, 0], "the layer with links is read twice");
    assert_eq!(report.problems.len(), 1, "{:?}", report.problems);
    assert!(matches!(
        &report.problems[0].kind,
        ProblemKind::UnresolvedHardlink { path, target }
            if path == &PathBuf::from("bin/tolower") && target == &PathBuf::from("bin/lower")
    ));
    assert_eq!(
        rec.view(),
        view(&[
            ("bin/alias", 1, "tool v1"),
            ("bin/alias2", 1, "tool v1"),
            ("bin/lower", 0, "lower content"),
            ("bin/other", 1, "tool v1"),
            ("bin/tool", 1, "tool v2"),
        ])
    );
    let alias = rec.visits.iter().find(|v| v.1 == "bin/alias2").unwrap();
    assert_eq!(alias.3, 0o755, "the link's own mode");
    assert_eq!(alias.4.as_deref(), Some("bin/alias"));
}

#[test]
fn compressed_layers_and_broken_layers_degrade() {
    use std::io::Write;
    let l0 = layer(&[E::File("a", "a0"), E::File("b", "b0")]);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&layer(&[E::File("c", "c1")])).unwrap();
    let l1 = gz.finish().unwrap();
    // A truncated top layer: its first entry is read, then the stream breaks.
    let mut l2 = layer(&[E::File("a", "a2"), E::File("big", &"x".repeat(4096))]);
    l2.truncate(512 + 512 + 512 + 100);
    let (rec, report, _) = walk(&[l0, l1, l2]);
    assert_eq!(report.problems.len(), 1, "{:?}", report.problems);
    assert_eq!(report.problems[0].layer, 2);
    let v = rec.view();
    assert_eq!(v.get("a"), Some(&(2, "a2".to_owned())), "{v:?}");
    assert_eq!(v.get("b"), Some(&(0, "b0".to_owned())));
    assert_eq!(v.get("c"), Some(&(1, "c1".to_owned())));
}
