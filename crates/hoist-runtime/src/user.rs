//! Resolving `user` (`""`, `uid`, `name`, `uid:gid`, `name:group`) against the
//! rootfs's `/etc/passwd` and `/etc/group`, and creating the working directory,
//! without ever following a path out of the rootfs (`openat2(RESOLVE_IN_ROOT)`).
//! The `/etc/passwd` and `/etc/group` parsers are public: the builder's
//! `COPY --chown` reads the same files through its own view of the image.

use std::io::Read;
use std::os::fd::OwnedFd;

use rustix::fs::{Mode, OFlags, ResolveFlags};
use rustix::io::Errno;

/// The ids the container process runs with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ResolvedUser {
    pub uid: u32,
    pub gid: u32,
    pub additional_gids: Vec<u32>,
}

/// An `/etc/passwd` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Passwd {
    /// Login name.
    pub name: String,
    /// User id.
    pub uid: u32,
    /// Primary group id.
    pub gid: u32,
}

/// An `/etc/group` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    /// Group name.
    pub name: String,
    /// Group id.
    pub gid: u32,
    /// Supplementary members.
    pub members: Vec<String>,
}

/// The entries of an `/etc/passwd` text; malformed lines are skipped.
pub fn parse_passwd(text: &str) -> Vec<Passwd> {
    text.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            Some(Passwd {
                name: (*f.first()?).to_owned(),
                uid: f.get(2)?.parse().ok()?,
                gid: f.get(3)?.parse().ok()?,
            })
        })
        .collect()
}

/// The entries of an `/etc/group` text; malformed lines are skipped.
pub fn parse_group(text: &str) -> Vec<Group> {
    text.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            Some(Group {
                name: (*f.first()?).to_owned(),
                gid: f.get(2)?.parse().ok()?,
                members: f
                    .get(3)
                    .map(|m| {
                        m.split(',')
                            .filter(|s| !s.is_empty())
                            .map(str::to_owned)
                            .collect()
                    })
                    .unwrap_or_default(),
            })
        })
        .collect()
}

/// Resolve `user` given the text of `/etc/passwd` and `/etc/group` (None: absent).
pub(crate) fn resolve(
    user: &str,
    passwd: Option<&str>,
    group: Option<&str>,
) -> Result<ResolvedUser, String> {
    let users = passwd.map(parse_passwd).unwrap_or_default();
    let groups = group.map(parse_group).unwrap_or_default();
    let (user_part, group_part) = match user.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (user, None),
    };
    let user_part = if user_part.is_empty() { "0" } else { user_part };
    let (uid, mut gid, name) = match user_part.parse::<u32>() {
        Ok(uid) => match users.iter().find(|p| p.uid == uid) {
            Some(p) => (uid, p.gid, Some(p.name.clone())),
            None => (uid, 0, None),
        },
        Err(_) => {
            if passwd.is_none() {
                return Err(format!(
                    "user {user_part:?}: the rootfs has no /etc/passwd to look it up in"
                ));
            }
            let p = users.iter().find(|p| p.name == user_part).ok_or_else(|| {
                format!("user {user_part:?} not found in the rootfs's /etc/passwd")
            })?;
            (p.uid, p.gid, Some(p.name.clone()))
        }
    };
    let mut additional_gids = Vec::new();
    match group_part {
        Some(g) if !g.is_empty() => {
            gid = match g.parse::<u32>() {
                Ok(gid) => gid,
                Err(_) => {
                    if group.is_none() {
                        return Err(format!(
                            "group {g:?}: the rootfs has no /etc/group to look it up in"
                        ));
                    }
                    groups
                        .iter()
                        .find(|e| e.name == g)
                        .map(|e| e.gid)
                        .ok_or_else(|| {
                            format!("group {g:?} not found in the rootfs's /etc/group")
                        })?
                }
            };
        }
        _ => {
            if let Some(name) = &name {
                for g in &groups {
                    if g.members.iter().any(|m| m == name)
                        && g.gid != gid
                        && !additional_gids.contains(&g.gid)
                    {
                        additional_gids.push(g.gid);
                    }
                }
            }
        }
    }
    Ok(ResolvedUser {
        uid,
        gid,
        additional_gids,
    })
}

/// Open `root` as a directory to resolve paths in.
pub(crate) fn open_root(root: &std::path::Path) -> Result<OwnedFd, String> {
    rustix::fs::open(
        root,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| format!("{}: {e}", root.display()))
}

/// Read `path` inside the rootfs; `None` when it does not exist.
pub(crate) fn read_in_root(root: &OwnedFd, path: &str) -> Result<Option<String>, String> {
    let rel = path.trim_start_matches('/');
    match rustix::fs::openat2(
        root,
        rel,
        OFlags::RDONLY | OFlags::CLOEXEC,
        Mode::empty(),
        ResolveFlags::IN_ROOT,
    ) {
        Ok(fd) => {
            let mut text = String::new();
            std::fs::File::from(fd)
                .read_to_string(&mut text)
                .map_err(|e| format!("rootfs {path}: {e}"))?;
            Ok(Some(text))
        }
        Err(Errno::NOENT) | Err(Errno::NOTDIR) => Ok(None),
        Err(e) => Err(format!("rootfs {path}: {e}")),
    }
}

/// Create directory `path` (absolute, in the container) and its missing parents
/// inside the rootfs; new directories are owned by `uid:gid`, as Docker does for a
/// working directory.
pub(crate) fn ensure_dir_in_root(
    root: &OwnedFd,
    path: &str,
    uid: u32,
    gid: u32,
) -> Result<(), String> {
    let mut prefix = String::new();
    for comp in path.split('/').filter(|c| !c.is_empty() && *c != ".") {
        if comp == ".." {
            return Err(format!("working directory {path:?} contains '..'"));
        }
        let parent = if prefix.is_empty() {
            "."
        } else {
            prefix.as_str()
        };
        let parent_fd = rustix::fs::openat2(
            root,
            parent,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
            ResolveFlags::IN_ROOT,
        )
        .map_err(|e| format!("working directory {path:?}: /{parent}: {e}"))?;
        match rustix::fs::mkdirat(&parent_fd, comp, Mode::from_raw_mode(0o755)) {
            Ok(()) => {
                rustix::fs::chownat(
                    &parent_fd,
                    comp,
                    Some(rustix::fs::Uid::from_raw(uid)),
                    Some(rustix::fs::Gid::from_raw(gid)),
                    rustix::fs::AtFlags::SYMLINK_NOFOLLOW,
                )
                .map_err(|e| format!("working directory {path:?}: chown {comp}: {e}"))?;
            }
            Err(Errno::EXIST) => {}
            Err(e) => return Err(format!("working directory {path:?}: mkdir {comp}: {e}")),
        }
        if !prefix.is_empty() {
            prefix.push('/');
        }
        prefix.push_str(comp);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534::/:/bin/false\nbob:x:1000:1000::/home/bob:/bin/sh\n";
    const GROUP: &str = "root:x:0:\nnogroup:x:65534:\nbob:x:1000:\nwheel:x:10:bob,alice\n";

    fn r(u: &str) -> Result<ResolvedUser, String> {
        resolve(u, Some(PASSWD), Some(GROUP))
    }

    #[test]
    fn resolves_names_numbers_and_groups() {
        assert_eq!(
            r("").unwrap(),
            ResolvedUser {
                uid: 0,
                gid: 0,
                additional_gids: vec![]
            }
        );
        assert_eq!(r("nobody").unwrap().uid, 65534);
        assert_eq!(r("nobody").unwrap().gid, 65534);
        assert_eq!(r("bob").unwrap().additional_gids, vec![10]);
        assert_eq!(r("1000").unwrap().gid, 1000);
        assert_eq!(
            r("4242").unwrap(),
            ResolvedUser {
                uid: 4242,
                gid: 0,
                additional_gids: vec![]
            }
        );
        assert_eq!(
            r("bob:wheel").unwrap(),
            ResolvedUser {
                uid: 1000,
                gid: 10,
                additional_gids: vec![]
            }
        );
        assert_eq!(
            r("7:8").unwrap(),
            ResolvedUser {
                uid: 7,
                gid: 8,
                additional_gids: vec![]
            }
        );
    }

    #[test]
    fn unknown_names_are_clear_errors() {
        assert!(r("mallory").unwrap_err().contains("\"mallory\" not found"));
        assert!(r("bob:staff").unwrap_err().contains("\"staff\" not found"));
        assert!(resolve("bob", None, None)
            .unwrap_err()
            .contains("no /etc/passwd"));
        assert_eq!(resolve("12", None, None).unwrap().uid, 12);
    }
}
