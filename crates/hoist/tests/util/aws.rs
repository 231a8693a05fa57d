//! AWS offline: moto in server mode (`pip install 'moto[server]'`, 5.2.5 or newer
//! for CodeDeploy) and `deploy/terraform/examples/hello` applied to it by the real
//! terraform with the AWS provider from the filesystem mirror `/opt/tf-plugins`.
//!
//! Nothing here uses the AWS SDK, so that the test binaries that share `util` do
//! not compile it: a test builds its clients from [`Applied::endpoint`] and
//! [`Applied::region`], or runs a process with [`Applied::env`].
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::{assert_success, free_port, root};

/// Where terraform finds the AWS provider without network.
const PLUGIN_MIRROR: &str = "/opt/tf-plugins";

/// Tasks moto reports running per service (without it services never become stable).
const RUNNING_TASKS: u32 = 2;

/// `moto_server` on a free loopback port until dropped.
pub struct Moto {
    child: Child,
    pub port: u16,
    /// moto's stdout and stderr, shown when something it served fails.
    log: tempfile::NamedTempFile,
}

impl Moto {
    /// Starts moto with AWS-managed IAM policies loaded and ECS services reporting
    /// running tasks, and waits until it answers.
    pub fn start() -> Moto {
        let port = free_port();
        let log = tempfile::NamedTempFile::new().unwrap();
        let child = Command::new("moto_server")
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .env("MOTO_IAM_LOAD_MANAGED_POLICIES", "true")
            .env("MOTO_ECS_SERVICE_RUNNING", RUNNING_TASKS.to_string())
            .stdout(log.reopen().unwrap())
            .stderr(log.reopen().unwrap())
            .spawn()
            .expect("moto_server is installed (pip install 'moto[server]')");
        let mut moto = Moto { child, port, log };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) {
                let _ = s.write_all(b"GET /moto-api/ HTTP/1.0\r\nHost: localhost\r\n\r\n");
                let mut head = [0u8; 12];
                if s.read_exact(&mut head).is_ok() && head.starts_with(b"HTTP/1.") {
                    return moto;
                }
            }
            if let Ok(Some(status)) = moto.child.try_wait() {
                panic!("moto_server exited ({status}):\n{}", moto.log_text());
            }
            assert!(
                Instant::now() < deadline,
                "moto_server did not answer on port {port}:\n{}",
                moto.log_text()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// `http://127.0.0.1:PORT`, the endpoint of every service.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The last lines moto wrote.
    pub fn log_text(&self) -> String {
        let text = std::fs::read_to_string(self.log.path()).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The example applied to moto: its directory (state included) and outputs.
pub struct Applied {
    /// Holds `modules/` and `examples/hello/` (the root module, with its state).
    pub dir: tempfile::TempDir,
    /// `terraform output -json`, name to value.
    pub outputs: BTreeMap<String, serde_json::Value>,
    endpoint: String,
}

impl Applied {
    /// An output's value; panics naming it when there is none.
    pub fn output(&self, name: &str) -> &serde_json::Value {
        self.outputs
            .get(name)
            .unwrap_or_else(|| panic!("no terraform output {name:?}: {:?}", self.outputs))
    }

    /// A string output.
    pub fn output_str(&self, name: &str) -> &str {
        self.output(name)
            .as_str()
            .unwrap_or_else(|| panic!("output {name:?} is not a string"))
    }

    /// The root module the example was applied from.
    pub fn root_module(&self) -> PathBuf {
        self.dir.path().join("examples/hello")
    }

    /// moto's endpoint.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// The region the example was applied in.
    pub fn region(&self) -> &str {
        self.output_str("region")
    }

    /// What a process needs to talk to moto with the standard AWS credential chain
    /// and endpoint resolution, and nothing from this machine's AWS configuration.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ENDPOINT_URL", self.endpoint.clone()),
            ("AWS_ACCESS_KEY_ID", "testing".into()),
            ("AWS_SECRET_ACCESS_KEY", "testing".into()),
            ("AWS_REGION", self.region().into()),
            ("AWS_EC2_METADATA_DISABLED", "true".into()),
            ("AWS_CONFIG_FILE", "/nonexistent/aws-config".into()),
            (
                "AWS_SHARED_CREDENTIALS_FILE",
                "/nonexistent/aws-credentials".into(),
            ),
        ]
    }

    /// `program` with [`Applied::env`] set and `AWS_PROFILE` removed.
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut c = Command::new(program);
        c.envs(self.env()).env_remove("AWS_PROFILE");
        c
    }
}

/// The services the provider talks to, each pointed at moto.
const ENDPOINTS: &[&str] = &[
    "codedeploy",
    "ec2",
    "ecr",
    "ecs",
    "elbv2",
    "iam",
    "kms",
    "logs",
    "sts",
];

/// Copies the example and the modules into a temp dir (so `../../modules` still
/// resolves), adds a `moto_override.tf` pointing the provider at `moto` with dummy
/// credentials, and runs `terraform init` and `apply` with `image` as the image.
/// Panics with terraform's output (and moto's log) when a step fails; terraform
/// missing is a failure too, never a skip.
pub fn apply_example(moto: &Moto, image: &str) -> Applied {
    let src = root().join("deploy/terraform");
    let dir = tempfile::tempdir().unwrap();
    copy_tree(&src.join("modules"), &dir.path().join("modules"));
    copy_tree(
        &src.join("examples/hello"),
        &dir.path().join("examples/hello"),
    );
    let module = dir.path().join("examples/hello");

    let endpoint = moto.endpoint();
    let endpoints: String = ENDPOINTS
        .iter()
        .map(|s| format!("    {s} = \"{endpoint}\"\n"))
        .collect();
    std::fs::write(
        module.join("moto_override.tf"),
        format!(
            "# Written by the test: the provider talks to moto, not AWS.\n\
             provider \"aws\" {{\n  \
               access_key                  = \"testing\"\n  \
               secret_key                  = \"testing\"\n  \
               skip_credentials_validation = true\n  \
               skip_requesting_account_id  = true\n  \
               skip_metadata_api_check     = true\n  \
               skip_region_validation      = true\n  \
               endpoints {{\n{endpoints}  }}\n\
             }}\n"
        ),
    )
    .unwrap();
    let cli_config = dir.path().join("terraformrc");
    std::fs::write(
        &cli_config,
        format!(
            "provider_installation {{\n  \
               filesystem_mirror {{\n    \
                 path    = \"{PLUGIN_MIRROR}\"\n    \
                 include = [\"registry.terraform.io/*/*\"]\n  \
               }}\n  \
               direct {{ exclude = [\"registry.terraform.io/*/*\"] }}\n\
             }}\n\
             disable_checkpoint = true\n"
        ),
    )
    .unwrap();

    let terraform = |args: &[&str]| -> String {
        let out = Command::new("terraform")
            .args(args)
            .current_dir(&module)
            .env("TF_CLI_CONFIG_FILE", &cli_config)
            .env("TF_IN_AUTOMATION", "1")
            .env("TF_DATA_DIR", module.join(".terraform"))
            .env_remove("TF_WORKSPACE")
            .stdin(Stdio::null())
            .output()
            .expect("terraform is installed (/usr/local/bin/terraform)");
        if !out.status.success() {
            assert_success(
                &out,
                &format!(
                    "terraform {} (moto's log:\n{}\n)",
                    args.join(" "),
                    moto.log_text()
                ),
            );
        }
        String::from_utf8(out.stdout).unwrap()
    };
    terraform(&["init", "-input=false", "-no-color"]);
    let var = format!("image={image}");
    terraform(&[
        "apply",
        "-auto-approve",
        "-input=false",
        "-no-color",
        "-var",
        &var,
    ]);
    let json: serde_json::Value =
        serde_json::from_str(&terraform(&["output", "-json", "-no-color"])).unwrap();
    let outputs = json
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v["value"].clone()))
        .collect();
    Applied {
        dir,
        outputs,
        endpoint,
    }
}

/// Copies the regular files under `from` to `to`, skipping terraform's own
/// working files should a developer have run it in the source tree.
fn copy_tree(from: &Path, to: &Path) {
    for entry in walkdir::WalkDir::new(from).into_iter().filter_entry(|e| {
        let name = e.file_name().to_string_lossy();
        !(name == ".terraform" || name.starts_with("terraform.tfstate"))
    }) {
        let entry = entry.unwrap();
        let dest = to.join(entry.path().strip_prefix(from).unwrap());
        if entry.file_type().is_dir() {
            std::fs::create_dir_all(&dest).unwrap();
        } else if entry.file_type().is_file() {
            std::fs::copy(entry.path(), &dest)
                .unwrap_or_else(|e| panic!("copy {}: {e}", entry.path().display()));
        }
    }
}
