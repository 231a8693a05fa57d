//! Test support (feature `testing`): a PostgreSQL server of a test's own, for
//! the run history's tests here and the server's end-to-end tests.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::path::PathBuf;

/// A PostgreSQL server of a test's own, from Debian's postgresql package: a
/// cluster made by `initdb` in a temp dir, serving on a Unix socket there only,
/// stopped on drop. PostgreSQL refuses to run as root: it runs as `postgres`.
pub struct TestPostgres {
    dir: tempfile::TempDir,
    bin: PathBuf,
}

impl TestPostgres {
    pub fn start() -> TestPostgres {
        let mut bins: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
            .map(|d| {
                d.filter_map(Result::ok)
                    .map(|e| e.path().join("bin"))
                    .collect()
            })
            .unwrap_or_default();
        bins.sort();
        let bin = bins
            .pop()
            .filter(|b| b.join("initdb").is_file())
            .expect("PostgreSQL is not installed: apt-get install -y postgresql");
        let passwd = std::fs::read_to_string("/etc/passwd").unwrap();
        let uid: u32 = passwd
            .lines()
            .find_map(|l| l.strip_prefix("postgres:"))
            .and_then(|l| l.split(':').nth(1))
            .expect("no postgres user (Debian's postgresql package makes it)")
            .parse()
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        std::os::unix::fs::chown(dir.path(), Some(uid), None).unwrap();
        let as_postgres = |args: &[&str]| {
            let out = std::process::Command::new("runuser")
                .args(["-u", "postgres", "--"])
                .args(args)
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{args:?}: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        };
        let data = dir.path().join("data");
        let initdb = bin.join("initdb");
        as_postgres(&[
            initdb.to_str().unwrap(),
            "-D",
            data.to_str().unwrap(),
            "-A",
            "trust",
            "-U",
            "hoist",
            "--no-sync",
        ]);
        let opts = format!(
            "-c listen_addresses='' -k {} -c fsync=off",
            dir.path().display()
        );
        let pg_ctl = bin.join("pg_ctl");
        as_postgres(&[
            pg_ctl.to_str().unwrap(),
            "-D",
            data.to_str().unwrap(),
            "-o",
            &opts,
            "-l",
            dir.path().join("log").to_str().unwrap(),
            "-w",
            "start",
        ]);
        TestPostgres { dir, bin }
    }

    pub fn url(&self) -> String {
        format!(
            "host={} user=hoist dbname=postgres",
            self.dir.path().display()
        )
    }
}

impl Drop for TestPostgres {
    fn drop(&mut self) {
        let _ = std::process::Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(self.bin.join("pg_ctl"))
            .arg("-D")
            .arg(self.dir.path().join("data"))
            .args(["-m", "immediate", "stop"])
            .output();
    }
}
