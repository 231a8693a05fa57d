//! ECR credentials through the real AWS SDK against moto in server mode
//! (`pip install 'moto[server]'`), pointed at it with `AWS_ENDPOINT_URL_ECR`.
#![allow(clippy::unwrap_used)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use hoist_aws::ecr::{AwsError, EcrCredentials, EcrRegistry};

/// `moto_server` on a free loopback port until dropped.
struct Moto {
    child: Child,
    port: u16,
}

impl Moto {
    fn start() -> Moto {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let args = ["-H", "127.0.0.1", "-p", &port.to_string()];
        let child = Command::new("moto_server")
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .or_else(|_| {
                Command::new("python3")
                    .args(["-m", "moto.server"])
                    .args(args)
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .spawn()
            })
            .expect("moto is installed (pip install 'moto[server]')");
        let moto = Moto { child, port };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) {
                let _ = s.write_all(b"GET /moto-api/ HTTP/1.0\r\nHost: localhost\r\n\r\n");
                let mut head = [0u8; 12];
                if s.read_exact(&mut head).is_ok() && head.starts_with(b"HTTP/1.") {
                    return moto;
                }
            }
            assert!(Instant::now() < deadline, "moto_server did not start");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn point_sdk_here(&self) {
        std::env::set_var(
            "AWS_ENDPOINT_URL_ECR",
            format!("http://127.0.0.1:{}", self.port),
        );
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A clock the test sets.
fn clock(at: &Arc<AtomicU64>) -> hoist_aws::ecr::Clock {
    let at = at.clone();
    Arc::new(move || UNIX_EPOCH + Duration::from_secs(at.load(Ordering::SeqCst)))
}

fn secs(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).unwrap().as_secs()
}

#[test]
fn ecr_tokens_come_from_aws_and_are_cached_until_just_before_they_expire() {
    // The standard credential chain finds these; nothing else is consulted. (One test
    // per process under nextest, so the environment is this test's own.)
    std::env::set_var("AWS_ACCESS_KEY_ID", "testing");
    std::env::set_var("AWS_SECRET_ACCESS_KEY", "testing");
    std::env::set_var("AWS_EC2_METADATA_DISABLED", "true");
    std::env::set_var("AWS_CONFIG_FILE", "/nonexistent/aws-config");
    std::env::set_var(
        "AWS_SHARED_CREDENTIALS_FILE",
        "/nonexistent/aws-credentials",
    );
    // The host names the region, whatever the environment says.
    std::env::set_var("AWS_REGION", "us-east-1");
    std::env::remove_var("AWS_PROFILE");

    let moto = Moto::start();
    moto.point_sdk_here();
    let cache = tempfile::tempdir().unwrap();
    let host = "123456789012.dkr.ecr.eu-west-2.amazonaws.com";
    let registry = EcrRegistry::parse(host).unwrap();
    // moto's tokens expire at 2015-01-01 (local time); the clock starts a day before.
    let now = Arc::new(AtomicU64::new(1_419_984_000));
    let creds = EcrCredentials::new(Some(cache.path().to_owned())).with_clock(clock(&now));

    let token = creds.token(host).unwrap();
    assert_eq!(token.username, "AWS");
    assert_eq!(token.password, "123456789012-auth-token");
    assert_eq!(
        token.proxy_endpoint,
        "https://123456789012.dkr.ecr.eu-west-2.amazonaws.com"
    );
    let expiry = secs(token.expires_at);
    assert!(
        expiry.abs_diff(1_420_070_400) <= 14 * 3600,
        "moto's expiry is 2015-01-01, got {expiry}"
    );
    // Another account's registry: the registry ID goes to AWS.
    let other = creds
        .token("210987654321.dkr.ecr.eu-west-2.amazonaws.com")
        .unwrap();
    assert_eq!(other.password, "210987654321-auth-token");

    // Cached on disk, for this account and host, readable by its owner only.
    let file = creds.cache_path(&registry).unwrap();
    assert_eq!(
        file,
        cache
            .path()
            .join("123456789012")
            .join(format!("{host}.json"))
    );
    let mode = std::fs::metadata(&file).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "{mode:o}");

    // With AWS gone, both caches still answer: memory, then disk for a new process.
    drop(moto);
    assert_eq!(creds.token(host).unwrap(), token);
    let fresh = EcrCredentials::new(Some(cache.path().to_owned())).with_clock(clock(&now));
    assert_eq!(fresh.token(host).unwrap(), token);

    // Four minutes before expiry the token counts as expired: AWS is asked (and,
    // being down, the call fails rather than handing out a dying token).
    now.store(expiry - 240, Ordering::SeqCst);
    let err = creds.token(host).unwrap_err();
    assert!(matches!(err, AwsError::Api { .. }), "{err}");
    assert!(err.to_string().contains("123456789012"), "{err}");

    // AWS back: the stale entry (marked, to see it replaced) is refreshed.
    let moto = Moto::start();
    moto.point_sdk_here();
    let stale = std::fs::read_to_string(&file)
        .unwrap()
        .replace("123456789012-auth-token", "stale");
    std::fs::write(&file, stale).unwrap();
    let again = EcrCredentials::new(Some(cache.path().to_owned())).with_clock(clock(&now));
    let refreshed = again.token(host).unwrap();
    assert_eq!(refreshed.password, "123456789012-auth-token");
    assert!(!std::fs::read_to_string(&file).unwrap().contains("stale"));
    // A non-ECR host is refused before any call.
    assert!(matches!(again.token("ghcr.io"), Err(AwsError::NotEcr(_))));
}
