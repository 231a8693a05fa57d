//! Test harness: a temporary HOIST_HOME and the real `hoist` binary.
#![allow(dead_code)] // shared by several test binaries, each using a part

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

pub mod aws;
pub mod world;

/// A scratch directory with its own hoist store.
pub struct Env {
    pub dir: tempfile::TempDir,
}

impl Env {
    pub fn new() -> Env {
        Env {
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    pub fn path(&self, p: &str) -> PathBuf {
        self.dir.path().join(p)
    }

    pub fn home(&self) -> PathBuf {
        self.path("home")
    }

    /// A `hoist` command with this env's store.
    pub fn hoist(&self) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_hoist"));
        c.env("HOIST_HOME", self.home())
            .env_remove("SOURCE_DATE_EPOCH");
        c
    }

    /// Run hoist with `args`, asserting success; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.hoist().args(args).output().expect("run hoist");
        assert_success(&out, &format!("hoist {}", args.join(" ")));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Run hoist with `args`, asserting failure; returns stderr.
    pub fn fails(&self, args: &[&str]) -> String {
        let out = self.hoist().args(args).output().expect("run hoist");
        assert!(
            !out.status.success(),
            "hoist {} succeeded but should fail; stdout:\n{}",
            args.join(" "),
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8_lossy(&out.stderr).into_owned()
    }

    /// `hoist image inspect` as JSON.
    pub fn inspect(&self, reference: &str) -> serde_json::Value {
        serde_json::from_str(&self.ok(&["image", "inspect", reference])).expect("inspect JSON")
    }

    /// Import `src` as `name` with `SOURCE_DATE_EPOCH` set, returning its inspect JSON.
    pub fn import_at_epoch(&self, src: &Path, name: &str, epoch: u64) -> serde_json::Value {
        let out = self
            .hoist()
            .env("SOURCE_DATE_EPOCH", epoch.to_string())
            .args(["image", "import", src.to_str().expect("utf-8"), name])
            .output()
            .expect("run hoist");
        assert_success(
            &out,
            &format!("hoist image import {} {name}", src.display()),
        );
        self.inspect(name)
    }

    /// Import the busybox rootfs as `name`.
    pub fn import_busybox(&self, name: &str) -> serde_json::Value {
        let rootfs = busybox_rootfs();
        self.ok(&["image", "import", rootfs.to_str().expect("utf-8"), name]);
        self.inspect(name)
    }
}

/// A container runtime over `state` whose helper is the `hoist` binary under test.
pub fn task_runtime(state: &Path, backend: hoist_runtime::Backend) -> hoist_runtime::Runtime {
    hoist_runtime::Runtime::new(hoist_runtime::RuntimeConfig {
        state_dir: state.to_path_buf(),
        backend,
        helper: hoist_runtime::HelperCommand {
            program: env!("CARGO_BIN_EXE_hoist").into(),
            args: vec!["__container".into()],
        },
    })
    .expect("runtime")
}

pub fn assert_success(out: &Output, what: &str) {
    assert!(
        out.status.success(),
        "{what} failed ({}):\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The project root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A busybox root file system made once per test process from Debian's busybox-static.
pub fn busybox_rootfs() -> PathBuf {
    static ROOTFS: OnceLock<PathBuf> = OnceLock::new();
    ROOTFS
        .get_or_init(|| {
            let dir =
                std::env::temp_dir().join(format!("hoist-test-busybox-{}", std::process::id()));
            if !dir.join("bin/busybox").exists() {
                let out = Command::new("bash")
                    .arg(root().join("scripts/busybox-rootfs.sh"))
                    .arg(&dir)
                    .output()
                    .expect("run busybox-rootfs.sh");
                assert_success(&out, "scripts/busybox-rootfs.sh");
            }
            dir
        })
        .clone()
}

/// Run skopeo, asserting success.
pub fn skopeo(args: &[&str]) -> String {
    let out = Command::new("skopeo")
        .args(["--insecure-policy"])
        .args(args)
        .output()
        .expect("skopeo is installed (apt-get install skopeo)");
    assert_success(&out, &format!("skopeo {}", args.join(" ")));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs `script` in `sh` in `dir`, asserting it succeeds; returns its stdout, trimmed.
pub fn sh(dir: &Path, script: &str) -> String {
    let out = Command::new("sh")
        .arg("-c")
        .arg(script)
        .current_dir(dir)
        .output()
        .expect("run sh");
    assert_success(&out, script);
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// A site for busybox httpd in `dir`: `www/index.html` holding `body`,
/// `www/healthz`, and a Dockerfile serving them on 8080 as a non-root user (it
/// exits 0 on SIGTERM).
pub fn busybox_site(dir: &Path, body: &str) {
    std::fs::create_dir_all(dir.join("www")).expect("mkdir www");
    std::fs::write(dir.join("www/index.html"), format!("{body}\n")).expect("index.html");
    std::fs::write(dir.join("www/healthz"), "ok\n").expect("healthz");
    std::fs::write(
        dir.join("Dockerfile"),
        "FROM busybox\nCOPY www /www\nUSER 65532:65532\nEXPOSE 8080\nCMD [\"sh\", \"-c\", \"trap 'exit 0' TERM; httpd -f -p 8080 -h /www & wait\"]\n",
    )
    .expect("Dockerfile");
}

/// A git repository in `dir` (branch `main`) with a committer set, nothing committed.
pub fn git_init(dir: &Path) {
    sh(
        dir,
        "git init -q -b main && git config user.email dev@example.com && git config user.name Dev",
    );
}

/// A free loopback port for a listener a test starts later: picked at random
/// below the kernel's ephemeral range (32768 and up), so that no outgoing
/// connection or `:0` bind of a parallel test takes it in the meantime (a port of
/// `:0` can be handed out again as soon as it is released), and checked free.
pub fn free_port() -> u16 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u32(std::process::id());
    for attempt in 0u64.. {
        h.write_u64(attempt);
        let port = 20000 + (h.finish() % 12000) as u16;
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    unreachable!("ports 20000 to 31999 are all taken")
}

/// A running `hoist registry serve`, killed on drop.
pub struct RegistryServer {
    pub child: std::process::Child,
    /// `127.0.0.1:PORT`.
    pub addr: String,
    /// The registry's storage directory.
    pub root: PathBuf,
    /// What it printed to stderr up to and including "listening on".
    pub startup: String,
    /// What it printed to stderr after that, as it comes.
    pub log: std::sync::Arc<std::sync::Mutex<String>>,
}

impl RegistryServer {
    /// Serve `env.path("registry")` over plain HTTP with no config file.
    pub fn start(env: &Env) -> RegistryServer {
        RegistryServer::start_with(env, &env.path("registry"), None, "http")
    }

    /// Serve `root` with `config` (if any), waiting until it listens on `scheme`
    /// (`https` when the config has `[tls]`).
    pub fn start_with(
        env: &Env,
        root: &Path,
        config: Option<&Path>,
        scheme: &str,
    ) -> RegistryServer {
        use std::io::{BufRead, BufReader};
        let addr = format!("127.0.0.1:{}", free_port());
        let mut cmd = env.hoist();
        cmd.args(["registry", "serve", "--addr", &addr, "--root"])
            .arg(root);
        if let Some(config) = config {
            cmd.arg("--config").arg(config);
        }
        let mut child = cmd
            .stderr(std::process::Stdio::piped())
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("spawn hoist registry serve");
        let stderr = child.stderr.take().expect("stderr");
        let mut lines = BufReader::new(stderr).lines();
        let mut startup = String::new();
        loop {
            match lines.next() {
                Some(Ok(line)) => {
                    startup.push_str(&line);
                    startup.push('\n');
                    if line.contains(&format!("listening on {scheme}://{addr}")) {
                        break;
                    }
                }
                _ => panic!("hoist registry serve exited before listening:\n{startup}"),
            }
        }
        // Keep draining stderr so the server never blocks on a full pipe.
        let log = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                let mut log = sink
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                log.push_str(&line);
                log.push('\n');
            }
        });
        RegistryServer {
            child,
            addr,
            root: root.to_owned(),
            startup,
            log,
        }
    }

    /// SIGKILL the server and reap it.
    pub fn kill(mut self) {
        self.child.kill().expect("SIGKILL the registry");
        self.child.wait().expect("reap the registry");
    }
}

impl Drop for RegistryServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A Distribution registry serving from a temp dir until dropped.
pub struct Distribution {
    dir: tempfile::TempDir,
    child: std::process::Child,
    pub port: u16,
}

impl Distribution {
    /// Start one; with `user`, it requires Basic auth as `user`/`password`.
    pub fn start(user: Option<(&str, &str)>) -> Distribution {
        let dir = tempfile::tempdir().expect("distribution setup");
        // The registry binds it right after.
        let port = free_port();
        let mut config = format!(
            "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n",
            dir.path().join("data").display()
        );
        if let Some((user, password)) = user {
            let out = std::process::Command::new("htpasswd")
                .args(["-Bbn", user, password])
                .output()
                .expect("htpasswd is installed (apt-get install apache2-utils)");
            assert_success(&out, "htpasswd");
            let file = dir.path().join("htpasswd");
            std::fs::write(&file, &out.stdout).expect("distribution setup");
            config.push_str(&format!(
                "auth:\n  htpasswd:\n    realm: basic-realm\n    path: {}\n",
                file.display()
            ));
        }
        let config_path = dir.path().join("config.yml");
        std::fs::write(&config_path, config).expect("distribution setup");
        let log =
            std::fs::File::create(dir.path().join("registry.log")).expect("distribution setup");
        let child = std::process::Command::new("docker-registry")
            .arg("serve")
            .arg(&config_path)
            .stdout(log.try_clone().expect("distribution setup"))
            .stderr(log)
            .stdin(std::process::Stdio::null())
            .spawn()
            .expect("docker-registry is installed (apt-get install docker-registry)");
        let reg = Distribution { dir, child, port };
        reg.wait_ready();
        reg
    }

    /// Wait until `/v2/` answers (any status); fail after a generous minute.
    pub fn wait_ready(&self) {
        use std::io::{Read, Write};
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        loop {
            if let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", self.port)) {
                let _ = s.write_all(b"GET /v2/ HTTP/1.0\r\nHost: localhost\r\n\r\n");
                let mut head = [0u8; 12];
                if s.read_exact(&mut head).is_ok() && head.starts_with(b"HTTP/1.") {
                    return;
                }
            }
            assert!(
                std::time::Instant::now() < deadline,
                "registry did not start; log:\n{}",
                std::fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default()
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }

    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

impl Drop for Distribution {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
