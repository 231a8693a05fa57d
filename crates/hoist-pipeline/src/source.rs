//! A run's source: the commit it builds and its own copy of the files.
//!
//! The working tree of `hoist up` is copied as git sees it: tracked files and
//! untracked ones that `.gitignore` does not exclude (`git ls-files -co
//! --exclude-standard`), uncommitted changes included, so that build outputs in
//! ignored directories stay out. Outside a git repository every file but `.git` is
//! copied. The commit's identity comes from `git` itself (`rev-parse`, `log`,
//! `status`): reading git's object database is git's job, and the `git` binary is
//! what every CI runner uses for it.
//!
//! The server's runs build commits instead: a [`Mirror`] is a bare clone of a
//! repository kept under hoist's home, fetched before each run, and a run's
//! workspace is a clean checkout of exactly its commit (`git archive`), no more.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::runs::Commit;

/// A source problem.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// Copying failed.
    #[error("{path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// git failed.
    #[error("git {args} in {dir}: {message}")]
    Git {
        /// Its arguments.
        args: String,
        /// The repository.
        dir: PathBuf,
        /// What it said.
        message: String,
    },
}

fn git(dir: &Path, args: &[&str]) -> Result<Vec<u8>, SourceError> {
    let fail = |message: String| SourceError::Git {
        args: args.join(" "),
        dir: dir.to_owned(),
        message,
    };
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .output()
        .map_err(|e| fail(e.to_string()))?;
    if !out.status.success() {
        return Err(fail(String::from_utf8_lossy(&out.stderr).trim().to_owned()));
    }
    Ok(out.stdout)
}

fn git_line(dir: &Path, args: &[&str]) -> Result<String, SourceError> {
    Ok(String::from_utf8_lossy(&git(dir, args)?).trim().to_owned())
}

/// Whether `dir` is inside a git work tree (false when git is missing).
pub fn in_git(dir: &Path) -> bool {
    git_line(dir, &["rev-parse", "--is-inside-work-tree"]).is_ok_and(|s| s == "true")
}

/// The commit `dir`'s work tree is at, and whether it has changes on top;
/// outside git, an empty commit marked dirty.
pub fn working_tree_commit(dir: &Path) -> Result<Commit, SourceError> {
    if !in_git(dir) {
        return Ok(Commit {
            dirty: true,
            ..Commit::default()
        });
    }
    // A repository without commits yet has no HEAD: everything is a change.
    let Ok(sha) = git_line(dir, &["rev-parse", "--verify", "HEAD"]) else {
        return Ok(Commit {
            dirty: true,
            ..Commit::default()
        });
    };
    let branch = git_line(dir, &["symbolic-ref", "--short", "-q", "HEAD"])
        .ok()
        .filter(|b| !b.is_empty());
    let log = git_line(dir, &["log", "-1", "--format=%an <%ae>%x00%s", "HEAD"])?;
    let (author, message) = match log.split_once('\0') {
        Some((a, m)) => (Some(a.to_owned()), Some(m.to_owned())),
        None => (None, None),
    };
    let status = git(
        dir,
        &["status", "--porcelain", "--untracked-files=normal", "."],
    )?;
    Ok(Commit {
        sha,
        branch,
        author,
        message,
        dirty: !status.is_empty(),
    })
}

/// Copies `dir`'s working tree into `dest` (see the module doc); returns the
/// number of files copied. Symlinks are copied as symlinks.
pub fn copy_working_tree(dir: &Path, dest: &Path) -> Result<usize, SourceError> {
    let io = |path: &Path| {
        let path = path.to_owned();
        move |source| SourceError::Io { path, source }
    };
    std::fs::create_dir_all(dest).map_err(io(dest))?;
    let files: Vec<PathBuf> = if in_git(dir) {
        git(dir, &["ls-files", "-z", "-co", "--exclude-standard"])?
            .split(|b| *b == 0)
            .filter(|p| !p.is_empty())
            .map(|p| PathBuf::from(String::from_utf8_lossy(p).into_owned()))
            .collect()
    } else {
        walkdir::WalkDir::new(dir)
            .min_depth(1)
            .into_iter()
            .filter_entry(|e| e.file_name() != ".git")
            .filter_map(Result::ok)
            .filter(|e| !e.file_type().is_dir())
            .filter_map(|e| e.path().strip_prefix(dir).ok().map(Path::to_owned))
            .collect()
    };
    let mut copied = 0;
    for rel in files {
        let from = dir.join(&rel);
        let to = dest.join(&rel);
        // A tracked file deleted in the working tree is not part of it.
        let Ok(meta) = std::fs::symlink_metadata(&from) else {
            continue;
        };
        if let Some(parent) = to.parent() {
            std::fs::create_dir_all(parent).map_err(io(parent))?;
        }
        if meta.file_type().is_symlink() {
            let target = std::fs::read_link(&from).map_err(io(&from))?;
            std::os::unix::fs::symlink(target, &to).map_err(io(&to))?;
        } else if meta.is_file() {
            std::fs::copy(&from, &to).map_err(io(&from))?;
        } else {
            continue;
        }
        copied += 1;
    }
    Ok(copied)
}

/// A bare clone of a git repository (`git clone --bare`), kept to check out its
/// commits. Fetches and checkouts hold a lock on it, so workers can share it.
#[derive(Clone, Debug)]
pub struct Mirror {
    /// The bare repository.
    pub dir: PathBuf,
    /// Where it is cloned from: any URL or path `git clone` takes.
    pub url: String,
}

/// Holds an exclusive lock on a mirror while alive.
struct MirrorLock {
    _held: std::fs::File,
}

impl Mirror {
    /// The mirror of `url` at `dir` (made by the first [`Mirror::fetch`]).
    pub fn new(dir: &Path, url: &str) -> Mirror {
        Mirror {
            dir: dir.to_owned(),
            url: url.to_owned(),
        }
    }

    fn lock(&self) -> Result<MirrorLock, SourceError> {
        let path = self.dir.with_extension("lock");
        let io = |source| SourceError::Io {
            path: path.clone(),
            source,
        };
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(io)?;
        }
        let file = std::fs::File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(io)?;
        rustix::fs::flock(&file, rustix::fs::FlockOperation::LockExclusive)
            .map_err(|e| io(e.into()))?;
        Ok(MirrorLock { _held: file })
    }

    /// Brings the mirror up to date with its URL: every branch, as the remote has
    /// them now (cloning it the first time).
    pub fn fetch(&self) -> Result<(), SourceError> {
        let _lock = self.lock()?;
        self.fetch_locked()
    }

    fn fetch_locked(&self) -> Result<(), SourceError> {
        if !self.dir.join("HEAD").is_file() {
            let parent = self.dir.parent().unwrap_or(Path::new("."));
            let tmp = self.dir.with_extension("cloning");
            let _ = std::fs::remove_dir_all(&tmp);
            let tmp_text = tmp.display().to_string();
            git(
                parent,
                &["clone", "--bare", "--quiet", "--", &self.url, &tmp_text],
            )?;
            std::fs::rename(&tmp, &self.dir).map_err(|source| SourceError::Io {
                path: self.dir.clone(),
                source,
            })?;
            return Ok(());
        }
        git(
            &self.dir,
            &[
                "fetch",
                "--quiet",
                "--prune",
                "--force",
                "--",
                &self.url,
                "+refs/heads/*:refs/heads/*",
            ],
        )?;
        Ok(())
    }

    /// The branches of the remote and their commits, as `git ls-remote` gives them.
    pub fn heads(&self) -> Result<Vec<(String, String)>, SourceError> {
        let here = self.dir.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(here).map_err(|source| SourceError::Io {
            path: here.to_owned(),
            source,
        })?;
        let out = git_line(here, &["ls-remote", "--heads", "--", &self.url])?;
        Ok(out
            .lines()
            .filter_map(|l| {
                let (sha, name) = l.split_once('\t')?;
                let branch = name.strip_prefix("refs/heads/")?;
                Some((branch.to_owned(), sha.to_owned()))
            })
            .collect())
    }

    /// Commit `sha` (fetching when the mirror lacks it), on `branch`.
    pub fn commit(&self, sha: &str, branch: Option<&str>) -> Result<Commit, SourceError> {
        let _lock = self.lock()?;
        let have = |m: &Mirror| git(&m.dir, &["cat-file", "-e", &format!("{sha}^{{commit}}")]);
        if !self.dir.join("HEAD").is_file() || have(self).is_err() {
            self.fetch_locked()?;
        }
        have(self).map_err(|_| SourceError::Git {
            args: format!("cat-file -e {sha}"),
            dir: self.dir.clone(),
            message: format!(
                "{} has no commit {sha} on any branch (pushed over since?)",
                self.url
            ),
        })?;
        let log = git_line(
            &self.dir,
            &["log", "-1", "--format=%H%x00%an <%ae>%x00%s", sha],
        )?;
        let mut parts = log.splitn(3, '\0');
        Ok(Commit {
            sha: parts.next().unwrap_or(sha).to_owned(),
            author: parts.next().map(str::to_owned),
            message: parts.next().map(str::to_owned),
            branch: branch.map(str::to_owned),
            dirty: false,
        })
    }

    /// A clean checkout of commit `sha` into `dest`, which must not exist yet (a
    /// half-made one from an interrupted run is removed first). Returns the number
    /// of files.
    pub fn checkout(&self, sha: &str, dest: &Path) -> Result<usize, SourceError> {
        let io = |path: &Path| {
            let path = path.to_owned();
            move |source| SourceError::Io { path, source }
        };
        if dest.exists() {
            std::fs::remove_dir_all(dest).map_err(io(dest))?;
        }
        std::fs::create_dir_all(dest).map_err(io(dest))?;
        let _lock = self.lock()?;
        let fail = |message: String| SourceError::Git {
            args: format!("archive {sha}"),
            dir: self.dir.clone(),
            message,
        };
        let mut child = Command::new("git")
            .arg("-C")
            .arg(&self.dir)
            .args(["archive", "--format=tar", sha])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .map_err(|e| fail(e.to_string()))?;
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| fail("no stdout".into()))?;
        let mut archive = tar::Archive::new(stdout);
        archive.set_preserve_permissions(true);
        let mut files = 0;
        let unpacked = (|| -> std::io::Result<()> {
            for entry in archive.entries()? {
                let mut entry = entry?;
                let kind = entry.header().entry_type();
                if kind.is_file() || kind.is_symlink() {
                    files += 1;
                }
                entry.unpack_in(dest)?;
            }
            Ok(())
        })();
        // Closes the pipe: a git still writing after a failed unpack ends, not blocks.
        drop(archive);
        let out = child.wait_with_output().map_err(|e| fail(e.to_string()))?;
        if !out.status.success() {
            return Err(fail(String::from_utf8_lossy(&out.stderr).trim().to_owned()));
        }
        unpacked.map_err(io(dest))?;
        Ok(files)
    }
}

/// A name fit for an image tag: `[A-Za-z0-9_.-]`, at most 128 characters, not
/// starting with `.` or `-` (`feature/login` is `feature-login`).
pub fn tag_of(s: &str) -> String {
    let t: String = s
        .chars()
        .map(|c| match c {
            'a'..='z' | 'A'..='Z' | '0'..='9' | '_' | '.' | '-' => c,
            _ => '-',
        })
        .collect();
    let t = t.trim_start_matches(['.', '-']);
    t.chars().take(128).collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn sh(dir: &Path, script: &str) {
        let st = Command::new("sh")
            .arg("-c")
            .arg(script)
            .current_dir(dir)
            .status()
            .unwrap();
        assert!(st.success(), "{script}");
    }

    #[test]
    fn the_working_tree_is_copied_as_git_sees_it() {
        let tmp = tempfile::tempdir().unwrap();
        let repo = tmp.path().join("repo");
        std::fs::create_dir_all(repo.join("src")).unwrap();
        sh(
            &repo,
            "git init -q -b main && git config user.email a@b && git config user.name Ann \
             && printf 'target/\\n' > .gitignore && echo v1 > src/app.txt && echo x > gone.txt \
             && git add -A && git commit -q -m 'first commit'",
        );
        let commit = working_tree_commit(&repo).unwrap();
        assert_eq!(commit.sha.len(), 40);
        assert_eq!(commit.branch.as_deref(), Some("main"));
        assert_eq!(commit.author.as_deref(), Some("Ann <a@b>"));
        assert_eq!(commit.message.as_deref(), Some("first commit"));
        assert!(!commit.dirty);

        sh(
            &repo,
            "echo v2 > src/app.txt && echo new > new.txt && rm gone.txt \
             && mkdir -p target && echo big > target/out.bin",
        );
        assert!(working_tree_commit(&repo).unwrap().dirty);
        let dest = tmp.path().join("ws");
        assert_eq!(copy_working_tree(&repo, &dest).unwrap(), 3);
        assert_eq!(
            std::fs::read_to_string(dest.join("src/app.txt")).unwrap(),
            "v2\n"
        );
        assert!(dest.join("new.txt").is_file());
        assert!(!dest.join("gone.txt").exists());
        assert!(!dest.join("target").exists());
        assert!(!dest.join(".git").exists());
    }

    #[test]
    fn outside_git_everything_but_dot_git_is_copied_and_the_tree_is_dirty() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("plain");
        std::fs::create_dir_all(dir.join("a/b")).unwrap();
        std::fs::write(dir.join("a/b/c.txt"), "c").unwrap();
        std::fs::write(dir.join("top.txt"), "t").unwrap();
        let commit = working_tree_commit(&dir).unwrap();
        assert!(commit.dirty && commit.sha.is_empty());
        let dest = tmp.path().join("ws");
        assert_eq!(copy_working_tree(&dir, &dest).unwrap(), 2);
        assert_eq!(
            std::fs::read_to_string(dest.join("a/b/c.txt")).unwrap(),
            "c"
        );
    }

    #[test]
    fn tags_keep_only_what_a_tag_may_hold() {
        assert_eq!(tag_of("feature/login"), "feature-login");
        assert_eq!(tag_of("-x.y_z"), "x.y_z");
        assert_eq!(tag_of(&"a".repeat(200)).len(), 128);
    }

    #[test]
    fn a_mirror_checks_out_exactly_a_commit_and_follows_the_remote() {
        let tmp = tempfile::tempdir().unwrap();
        let origin = tmp.path().join("origin");
        std::fs::create_dir_all(&origin).unwrap();
        sh(
            &origin,
            "git init -q -b main && git config user.email a@example.com && git config user.name Ann \
             && echo one > a.txt && mkdir -p d && echo x > d/x && chmod +x d/x \
             && git add -A && git commit -q -m 'first line' -m body",
        );
        let first = git_line(&origin, &["rev-parse", "HEAD"]).unwrap();
        let mirror = Mirror::new(
            &tmp.path().join("mirrors/origin.git"),
            &origin.display().to_string(),
        );
        let commit = mirror.commit(&first, Some("main")).unwrap();
        assert_eq!(commit.sha, first);
        assert_eq!(commit.author.as_deref(), Some("Ann <a@example.com>"));
        assert_eq!(commit.message.as_deref(), Some("first line"));
        assert!(!commit.dirty);

        // A second commit; the working tree also has uncommitted junk.
        sh(
            &origin,
            "echo two > a.txt && git commit -q -am second && echo junk > junk.txt",
        );
        let second = git_line(&origin, &["rev-parse", "HEAD"]).unwrap();
        assert_eq!(
            mirror.heads().unwrap(),
            [("main".to_owned(), second.clone())]
        );
        // Not fetched yet: asking for it fetches.
        mirror.commit(&second, None).unwrap();

        let ws = tmp.path().join("ws");
        std::fs::create_dir_all(&ws).unwrap();
        std::fs::write(ws.join("stale"), "from an interrupted run").unwrap();
        assert_eq!(mirror.checkout(&first, &ws).unwrap(), 2);
        assert_eq!(std::fs::read_to_string(ws.join("a.txt")).unwrap(), "one\n");
        assert!(!ws.join("stale").exists() && !ws.join("junk.txt").exists());
        assert!(!ws.join(".git").exists() && !ws.join("pax_global_header").exists());
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(ws.join("d/x"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o111, 0o111, "the executable bit is kept");
        mirror.checkout(&second, &ws).unwrap();
        assert_eq!(std::fs::read_to_string(ws.join("a.txt")).unwrap(), "two\n");

        let err = mirror
            .commit("0123456789012345678901234567890123456789", None)
            .unwrap_err()
            .to_string();
        assert!(err.contains("no commit"), "{err}");
    }
}
