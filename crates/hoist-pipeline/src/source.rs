//! A run's source: the commit it builds and its own copy of the files.
//!
//! The working tree of `hoist up` is copied as git sees it: tracked files and
//! untracked ones that `.gitignore` does not exclude (`git ls-files -co
//! --exclude-standard`), uncommitted changes included, so that build outputs in
//! ignored directories stay out. Outside a git repository every file but `.git` is
//! copied. The commit's identity comes from `git` itself (`rev-parse`, `log`,
//! `status`): reading git's object database is git's job, and the `git` binary is
//! what every CI runner uses for it.

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
}
