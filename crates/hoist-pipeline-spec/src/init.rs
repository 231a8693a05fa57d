//! `hoist init`'s starter `hoist.yml`: what a repository's top directory tells
//! ([`RepoFacts::detect`], which only reads files there) and a commented file made
//! from it ([`starter`]) with a dev environment and a prod one behind an approval.

use std::io;
use std::path::Path;

use hoist_deploy::spec::Name;

/// What the top directory of a repository says about it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RepoFacts {
    /// The app's name: the directory's, made a valid name.
    pub app: String,
    /// A `Dockerfile` is there.
    pub dockerfile: bool,
    /// The first port the Dockerfile's last stage `EXPOSE`s.
    pub exposed_port: Option<u16>,
    /// The Dockerfile's last stage has a `HEALTHCHECK` (not `NONE`).
    pub healthcheck: bool,
    /// A CodeBuild `buildspec.yml` is there.
    pub buildspec: bool,
    /// Test commands guessed from the build files present.
    pub test_commands: Vec<String>,
}

impl RepoFacts {
    /// Looks at `dir`'s files (not below it).
    pub fn detect(dir: &Path) -> io::Result<RepoFacts> {
        let read = |name: &str| -> io::Result<Option<String>> {
            match std::fs::read_to_string(dir.join(name)) {
                Ok(t) => Ok(Some(t)),
                Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(io::Error::new(
                    e.kind(),
                    format!("{}: {e}", dir.join(name).display()),
                )),
            }
        };
        let present = |name: &str| dir.join(name).is_file();
        let dockerfile = read("Dockerfile")?;
        let (exposed_port, healthcheck) = dockerfile
            .as_deref()
            .map(scan_dockerfile)
            .unwrap_or((None, false));

        let mut test_commands = Vec::new();
        if read("Makefile")?.is_some_and(|m| m.lines().any(|l| l.starts_with("test:"))) {
            test_commands.push("make test".to_owned());
        }
        if let Some(pkg) = read("package.json")? {
            let has_test = serde_json::from_str::<serde_json::Value>(&pkg)
                .ok()
                .and_then(|v| v.get("scripts")?.get("test").cloned())
                .is_some();
            if has_test {
                test_commands.push("npm test".to_owned());
            }
        }
        if present("Cargo.toml") {
            test_commands.push("cargo test".to_owned());
        }
        if present("pytest.ini") || present("conftest.py") || has_pytest_config(&read)? {
            test_commands.push("python3 -m pytest".to_owned());
        }
        if present("go.mod") {
            test_commands.push("go test ./...".to_owned());
        }

        let base = dir
            .canonicalize()
            .ok()
            .and_then(|d| d.file_name().map(|n| n.to_string_lossy().into_owned()))
            .unwrap_or_default();
        Ok(RepoFacts {
            app: app_name(&base),
            dockerfile: dockerfile.is_some(),
            exposed_port,
            healthcheck,
            buildspec: present("buildspec.yml"),
            test_commands,
        })
    }
}

fn has_pytest_config(read: &impl Fn(&str) -> io::Result<Option<String>>) -> io::Result<bool> {
    Ok(
        read("pyproject.toml")?.is_some_and(|t| t.contains("[tool.pytest"))
            || read("setup.cfg")?.is_some_and(|t| t.contains("[tool:pytest]"))
            || read("tox.ini")?.is_some_and(|t| t.contains("[pytest]")),
    )
}

/// The last stage's first `EXPOSE`d port and whether it has a `HEALTHCHECK`: a
/// line scan (continuation lines joined), enough for a starter file.
fn scan_dockerfile(text: &str) -> (Option<u16>, bool) {
    let mut port = None;
    let mut healthcheck = false;
    let mut logical = String::new();
    for line in text.lines() {
        let t = line.trim();
        if logical.is_empty() && t.starts_with('#') {
            continue;
        }
        if let Some(head) = t.strip_suffix('\\') {
            logical.push_str(head);
            logical.push(' ');
            continue;
        }
        logical.push_str(t);
        let instruction = std::mem::take(&mut logical);
        let mut words = instruction.split_whitespace();
        let keyword = words.next().unwrap_or_default().to_ascii_uppercase();
        match keyword.as_str() {
            "FROM" => {
                port = None;
                healthcheck = false;
            }
            "EXPOSE" if port.is_none() => {
                port = words
                    .filter_map(|w| w.split('/').next()?.parse::<u16>().ok())
                    .find(|p| *p != 0);
            }
            "HEALTHCHECK" => {
                healthcheck = !words.next().is_some_and(|w| w.eq_ignore_ascii_case("NONE"));
            }
            _ => {}
        }
    }
    (port, healthcheck)
}

/// A directory name made a valid app name: lower case, other characters as `-`,
/// at most 40 characters (so that `<app>-<environment>` fits), `app` if nothing
/// is left.
pub fn app_name(dir_name: &str) -> String {
    let mut out = String::new();
    for c in dir_name.chars() {
        let c = c.to_ascii_lowercase();
        if c.is_ascii_lowercase() || c.is_ascii_digit() {
            out.push(c);
        } else if !out.is_empty() && !out.ends_with('-') {
            out.push('-');
        }
    }
    out.truncate(40);
    let out = out.trim_end_matches('-').to_owned();
    match Name::new(&out) {
        Ok(_) => out,
        Err(_) => "app".to_owned(),
    }
}

/// A YAML scalar for any text (JSON strings are YAML double-quoted scalars).
fn quoted(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".to_owned())
}

/// The commented starter `hoist.yml` for a repository.
pub fn starter(facts: &RepoFacts) -> String {
    let mut f = String::new();
    let mut line = |s: &str| {
        f.push_str(s);
        f.push('\n');
    };
    line("# hoist.yml: how hoist's pipeline builds, tests, scans and deploys this");
    line("# repository. Only `app` and `environments` are required; commented lines");
    line("# show more settings.");
    line(&format!("app: {}", facts.app));
    line("");
    if !facts.dockerfile {
        line("# No Dockerfile was found: write one (or point build.dockerfile at it).");
    }
    line("build:");
    line("  dockerfile: Dockerfile");
    line("  context: .");
    line("  # args: {VERSION: \"1.0\"}   # --build-arg");
    line("  # target: runtime          # a stage of a multi-stage Dockerfile");
    line("");
    if facts.buildspec {
        line("# This repository also has a buildspec.yml (CodeBuild 0.2): its phases are not");
        line("# repeated here.");
    }
    line("# Run in order on the host before the image build; the run stops at the first");
    line("# failure.");
    if facts.test_commands.is_empty() {
        line("# No test command was guessed; for example:");
        line("# test:");
        line("#   - name: unit");
        line("#     run: make test");
        line("#     image: debian:bookworm   # run in a container instead of on the host");
        line("#     timeout: 10m");
        line("test: []");
    } else {
        line("test:");
        for cmd in &facts.test_commands {
            let name = cmd.split_whitespace().next().unwrap_or("test");
            line(&format!("  - name: {}", quoted(name)));
            line(&format!("    run: {}", quoted(cmd)));
            line("    # timeout: 10m");
        }
    }
    line("");
    line("# The gate before any deployment.");
    line("scan:");
    line("  fail_on: high          # critical, high, medium, low or none");
    line("  # ignore_file: .hoistignore");
    line("  # scanners: [vuln, secret, misconfig]");
    line("");
    line("# Deployed in this order, each as the service <app>-<name> on hoist's own");
    line("# runtime and load balancer.");
    line("environments:");
    for (name, approval, strategy, addr) in [
        ("dev", None, "rolling", "127.0.0.1:8080"),
        ("prod", Some("manual"), "canary:10%:30s", "127.0.0.1:8081"),
    ] {
        line(&format!("  - name: {name}"));
        if let Some(a) = approval {
            line(&format!(
                "    approval: {a}      # waits for someone to approve"
            ));
        }
        line(&format!(
            "    strategy: {strategy}{}",
            if strategy == "rolling" {
                "       # or blue-green:30s, canary:10%:30s, linear:25%:10s"
            } else {
                ""
            }
        ));
        line("    # env: {LOG_LEVEL: info}");
        line("    # secrets: {DB_PASSWORD: db-password}   # VAR: name in `hoist secret set`");
        line("    service:");
        line(&format!(
            "      count: {}",
            if name == "prod" { 2 } else { 1 }
        ));
        match facts.exposed_port {
            Some(p) => line(&format!("      port: {p}   # the Dockerfile's EXPOSE")),
            None => line(
                "      # port: 8080   # the port the app listens on (default: the image's EXPOSE)",
            ),
        }
        if facts.healthcheck {
            line("      # The image's HEALTHCHECK tells when a task is healthy; or HTTP:");
            line("      # health_check: {path: /health}");
        } else {
            line("      # health_check: {path: /health}   # an HTTP check (default: healthy once running)");
        }
        line("      listener:");
        line(&format!("        addr: {addr}"));
        line("        # host: app.example.com");
        line("        # path: /");
        if name == "prod" {
            line("    # smoke: curl -fsS \"$HOIST_URL\"   # run after the deployment");
        }
    }
    line("");
    line("# notifications:");
    line("#   webhooks:");
    line("#     - url: https://hooks.example.com/hoist");
    line("#       events: [run, deployment]");
    line("#       secret: webhook-key   # signs the body (HMAC-SHA256)");
    f
}
