//! `hoist secret`: values go in through stdin or a file, are sealed at rest, and no
//! command prints one. Real binary, temporary HOIST_HOME.
#![allow(clippy::unwrap_used)]

mod util;

use std::io::Write;
use std::process::{Command, Output, Stdio};

use util::Env;

const VALUE: &str = "p4ss-w0rd-that-must-not-leak";

/// Run `hoist` with `stdin` piped in.
fn with_stdin(mut cmd: Command, stdin: &[u8]) -> Output {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    child.wait_with_output().unwrap()
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn set_ls_rm_never_show_the_value() {
    let env = Env::new();
    let mut set = env.hoist();
    set.args(["secret", "set", "DB_PASSWORD"]);
    let out = with_stdin(set, format!("{VALUE}\n").as_bytes());
    util::assert_success(&out, "hoist secret set DB_PASSWORD");
    assert!(!text(&out).contains(VALUE), "{}", text(&out));

    // --trim drops the newline; --from-file reads a file.
    let mut set = env.hoist();
    set.args(["secret", "set", "--trim", "API_TOKEN"]);
    util::assert_success(&with_stdin(set, b"tok\n"), "hoist secret set --trim");
    let file = env.path("cert.pem");
    std::fs::write(&file, "-----BEGIN-----\n").unwrap();
    env.ok(&[
        "secret",
        "set",
        "tls.cert",
        "--from-file",
        file.to_str().unwrap(),
    ]);

    let ls = env.ok(&["secret", "ls"]);
    assert!(!ls.contains(VALUE), "{ls}");
    let lines: Vec<&str> = ls.lines().collect();
    assert!(lines[0].starts_with("NAME"), "{ls}");
    assert_eq!(lines.len(), 4, "{ls}");
    let size_of = |name: &str| -> u64 {
        let line = lines
            .iter()
            .find(|l| l.split_whitespace().next() == Some(name))
            .unwrap();
        line.split_whitespace().nth(1).unwrap().parse().unwrap()
    };
    // The trailing newline from stdin is kept unless --trim.
    assert_eq!(size_of("DB_PASSWORD"), VALUE.len() as u64 + 1);
    assert_eq!(size_of("API_TOKEN"), 3);
    assert_eq!(size_of("tls.cert"), 16);

    let json = env.ok(&["--json", "secret", "ls"]);
    assert!(!json.contains(VALUE), "{json}");
    let list: serde_json::Value = serde_json::from_str(&json).unwrap();
    let names: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["API_TOKEN", "DB_PASSWORD", "tls.cert"]);
    assert_eq!(list[1]["size"], VALUE.len() + 1);
    assert!(list[1]["updated"].as_str().unwrap().ends_with('Z'));

    // On disk: sealed, private.
    let dir = env.home().join("secrets");
    let stored = std::fs::read_to_string(dir.join("secrets.json")).unwrap();
    assert!(stored.contains("DB_PASSWORD") && !stored.contains(VALUE));
    use std::os::unix::fs::PermissionsExt;
    for f in ["key", "secrets.json"] {
        let mode = std::fs::metadata(dir.join(f)).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "{f}");
    }

    // Replacing says so.
    let mut set = env.hoist();
    set.args(["--json", "secret", "set", "DB_PASSWORD"]);
    let out = with_stdin(set, b"new");
    util::assert_success(&out, "hoist secret set (replace)");
    let reply: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(reply["replaced"], true);
    assert_eq!(reply["size"], 3);

    env.ok(&["secret", "rm", "DB_PASSWORD"]);
    let ls = env.ok(&["secret", "ls"]);
    assert!(!ls.contains("DB_PASSWORD"), "{ls}");
}

#[test]
fn rm_of_a_missing_secret_fails_clearly() {
    let env = Env::new();
    let err = env.fails(&["secret", "rm", "NOPE"]);
    assert!(err.contains("no secret named \"NOPE\""), "{err}");
}

#[test]
fn bad_names_and_argv_values_are_refused() {
    let env = Env::new();
    let err = env.fails(&["secret", "set", "has/slash"]);
    assert!(err.contains("invalid secret name"), "{err}");
    // There is no way to pass the value on the command line.
    let err = env.fails(&["secret", "set", "NAME", VALUE]);
    assert!(err.contains("unexpected argument"), "{err}");
}

#[test]
fn a_tampered_store_is_reported_without_the_value() {
    let env = Env::new();
    let mut set = env.hoist();
    set.args(["secret", "set", "x"]);
    util::assert_success(&with_stdin(set, VALUE.as_bytes()), "hoist secret set x");
    let path = env.home().join("secrets/secrets.json");
    std::fs::write(&path, "{\n  \"version\": 1,\n  oops\n").unwrap();
    let err = env.fails(&["secret", "ls"]);
    assert!(
        err.contains(&format!("{}:3:", path.display())),
        "the file and line: {err}"
    );
}
