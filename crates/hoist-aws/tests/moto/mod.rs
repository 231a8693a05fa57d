//! `moto_server` for the tests of this crate.
#![allow(clippy::unwrap_used, dead_code)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// `moto_server` on a free loopback port until dropped.
pub struct Moto {
    child: Child,
    /// Its port on 127.0.0.1.
    pub port: u16,
}

impl Moto {
    pub fn start() -> Moto {
        Self::start_with(&[])
    }

    /// Started with these environment variables (moto settings).
    pub fn start_with(env: &[(&str, &str)]) -> Moto {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let args = ["-H", "127.0.0.1", "-p", &port.to_string()];
        let child = Command::new("moto_server")
            .args(args)
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .or_else(|_| {
                Command::new("python3")
                    .args(["-m", "moto.server"])
                    .args(args)
                    .envs(env.iter().copied())
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

    /// Points the SDK's ECR calls here (`AWS_ENDPOINT_URL_ECR`).
    pub fn point_sdk_here(&self) {
        std::env::set_var(
            "AWS_ENDPOINT_URL_ECR",
            format!("http://127.0.0.1:{}", self.port),
        );
    }

    /// Points every SDK call here, with dummy credentials and nothing else of the
    /// machine's AWS configuration consulted. (One test per process under nextest,
    /// so the environment is the test's own.)
    pub fn point_all_here(&self, region: &str) {
        std::env::set_var(
            "AWS_ENDPOINT_URL",
            format!("http://127.0.0.1:{}", self.port),
        );
        isolate_aws_environment(region);
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Credentials for moto from the environment and nothing else: no shared files, no
/// instance metadata, no profile; `region` as the default region.
pub fn isolate_aws_environment(region: &str) {
    std::env::set_var("AWS_ACCESS_KEY_ID", "testing");
    std::env::set_var("AWS_SECRET_ACCESS_KEY", "testing");
    std::env::set_var("AWS_EC2_METADATA_DISABLED", "true");
    std::env::set_var("AWS_CONFIG_FILE", "/nonexistent/aws-config");
    std::env::set_var(
        "AWS_SHARED_CREDENTIALS_FILE",
        "/nonexistent/aws-credentials",
    );
    std::env::set_var("AWS_REGION", region);
    std::env::remove_var("AWS_PROFILE");
}

/// The test's own SDK configuration (the environment's endpoint and credentials,
/// `region` over the environment's), to set up and read back what hoist-aws did.
pub async fn sdk_config(region: Option<&str>) -> aws_config::SdkConfig {
    use aws_smithy_http_client::tls;
    let http = aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(
            tls::rustls_provider::CryptoMode::Ring,
        ))
        .build_https();
    let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest()).http_client(http);
    if let Some(region) = region {
        loader = loader.region(aws_config::Region::new(region.to_owned()));
    }
    loader.load().await
}
