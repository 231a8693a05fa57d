//! How a local client finds the registry serving a storage directory: the first
//! `hoist registry serve` on a root takes `serve.lock` (a `flock`, released when
//! the process dies however it dies, holding its pid) and writes its bound address
//! to `serve.addr`; [`serving`] reads it back while the lock is held. Further servers
//! on the same root serve too, unannounced.

use std::fs;
use std::io::Write;
use std::net::SocketAddr;
use std::path::Path;

use crate::storage::{io_err, RegistryError};

/// The lock file under the registry root.
pub const LOCK_FILE: &str = "serve.lock";
/// The file holding the announced server's address (`127.0.0.1:5000\n`).
pub const ADDR_FILE: &str = "serve.addr";

/// Held while this process is the announced server of its root.
#[derive(Debug)]
pub struct Announcement {
    _lock: fs::File,
}

/// Announces `addr` as the server of `root`, unless another live server already
/// is (then `None`).
pub fn announce(root: &Path, addr: SocketAddr) -> Result<Option<Announcement>, RegistryError> {
    fs::create_dir_all(root).map_err(io_err(root))?;
    let path = root.join(LOCK_FILE);
    let lock = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(io_err(&path))?;
    match lock.try_lock() {
        Ok(()) => {}
        Err(fs::TryLockError::WouldBlock) => return Ok(None),
        Err(fs::TryLockError::Error(e)) => return Err(io_err(&path)(e)),
    }
    lock.set_len(0).map_err(io_err(&path))?;
    writeln!(&lock, "{}", std::process::id()).map_err(io_err(&path))?;
    let addr_path = root.join(ADDR_FILE);
    let tmp = root.join(format!(".{ADDR_FILE}.tmp"));
    let mut f = fs::File::create(&tmp).map_err(io_err(&tmp))?;
    writeln!(f, "{addr}").map_err(io_err(&tmp))?;
    f.sync_all().map_err(io_err(&tmp))?;
    fs::rename(&tmp, &addr_path).map_err(io_err(&addr_path))?;
    Ok(Some(Announcement { _lock: lock }))
}

/// The address of the server announced for `root`, while it runs.
pub fn serving(root: &Path) -> Option<SocketAddr> {
    let lock = fs::File::open(root.join(LOCK_FILE)).ok()?;
    match lock.try_lock_shared() {
        Err(fs::TryLockError::WouldBlock) => {}
        _ => return None,
    }
    fs::read_to_string(root.join(ADDR_FILE))
        .ok()?
        .trim()
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn the_first_server_is_announced_until_it_goes() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(serving(dir.path()), None);
        let a: SocketAddr = "127.0.0.1:5000".parse().unwrap();
        let first = announce(dir.path(), a).unwrap().unwrap();
        assert_eq!(serving(dir.path()), Some(a));
        // A second server on the root is not announced and changes nothing.
        let b: SocketAddr = "127.0.0.1:5001".parse().unwrap();
        assert!(announce(dir.path(), b).unwrap().is_none());
        assert_eq!(serving(dir.path()), Some(a));
        drop(first);
        assert_eq!(serving(dir.path()), None);
        let _second = announce(dir.path(), b).unwrap().unwrap();
        assert_eq!(serving(dir.path()), Some(b));
    }
}
