//! The scanner against planted secrets. Tokens are assembled at run time so that
//! this file itself holds nothing a secret scanner (ours or a forge's) would flag.

use hoist_secretscan::{Config, Finding, Scanner, Severity};

fn token(prefix: &str, body_len: usize, seed: u64) -> String {
    // Deterministic pseudo-random alphanumerics: high entropy, reproducible.
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut x = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    let mut s = prefix.to_owned();
    for _ in 0..body_len {
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        s.push(char::from(
            ALPHABET[((x >> 33) % ALPHABET.len() as u64) as usize],
        ));
    }
    s
}

fn ids(findings: &[Finding]) -> Vec<(&str, usize)> {
    findings
        .iter()
        .map(|f| (f.rule_id.as_str(), f.line))
        .collect()
}

fn aws_key_id() -> String {
    // AKIA + 16 of [A-Z2-7].
    let mut s = String::from("AK");
    s.push_str("IA");
    s.push_str("Q3EGRT7ZKX2M4PLW");
    s
}

#[test]
fn finds_each_kind_with_its_line_and_redacts_it() {
    let scanner = Scanner::default();
    let ghp = token(&["gh", "p_"].concat(), 36, 1);
    let glpat = token(&["gl", "pat-"].concat(), 20, 2);
    let slack = token(&["xo", "xb-"].concat(), 30, 3);
    let aws_secret = token("", 40, 4);
    let generic = token("", 32, 5);
    let key_body = token("", 64, 6);
    let text = format!(
        "# settings\n\
         GITHUB_TOKEN={ghp}\n\
         gitlab: {glpat}\n\
         slack_bot = \"{slack}\"\n\
         aws_access_key_id = {akid}\n\
         aws_secret_access_key = {aws_secret}\n\
         db_password: \"{generic}\"\n\
         -----BEGIN RSA PRIVATE KEY-----\n\
         {key_body}\n\
         -----END RSA PRIVATE KEY-----\n",
        akid = aws_key_id(),
    );
    let findings = scanner.scan("app/config.env", text.as_bytes());
    assert_eq!(
        ids(&findings),
        vec![
            ("github-pat", 2),
            ("gitlab-pat", 3),
            ("slack-token", 4),
            ("aws-access-key-id", 5),
            ("aws-secret-access-key", 6),
            ("generic-secret-assignment", 7),
            ("private-key", 9),
        ],
        "{findings:#?}"
    );
    for f in &findings {
        assert_eq!(f.path, "app/config.env");
        assert!(f.redacted.contains("*****"), "{f:?}");
        for secret in [
            &ghp,
            &glpat,
            &slack,
            &aws_secret,
            &generic,
            &key_body,
            &aws_key_id(),
        ] {
            assert!(
                !f.redacted.contains(secret.as_str()),
                "{f:?} leaks a secret"
            );
        }
    }
    assert_eq!(
        findings[0].redacted,
        format!("GITHUB_TOKEN={}", "*".repeat(40))
    );
    assert_eq!(findings[3].severity, Severity::Critical);
}

#[test]
fn clean_files_placeholders_and_low_entropy_values_pass() {
    let scanner = Scanner::default();
    let text = "password = \"changeme\"\n\
                api_key: ${API_KEY}\n\
                token = <your-token-here>\n\
                secret_key = aaaaaaaaaaaaaaaaaaaaaaaa\n\
                aws_access_key_id = AKIAIOSFODNN7EXAMPLE\n\
                password = correcthorsebattery\n\
                description = \"the token is read from the environment\"\n";
    assert_eq!(scanner.scan("etc/app.conf", text.as_bytes()), vec![]);
}

#[test]
fn binary_and_oversized_files_and_allowed_paths_are_skipped() {
    let mut scanner = Scanner::default();
    let secret = format!("GITHUB_TOKEN={}\n", token(&["gh", "p_"].concat(), 36, 7));
    let mut binary = b"\x7fELF\0\0\0".to_vec();
    binary.extend_from_slice(secret.as_bytes());
    assert!(scanner.scan("usr/bin/tool", &binary).is_empty());
    assert!(scanner
        .scan("usr/share/doc/tool/README", secret.as_bytes())
        .is_empty());
    assert!(!scanner.wants("usr/share/doc/tool/README", 100));
    assert_eq!(scanner.scan("app/.env", secret.as_bytes()).len(), 1);
    scanner.max_file_size = 10;
    assert!(scanner.scan("app/.env", secret.as_bytes()).is_empty());
    assert!(!scanner.wants("app/.env", 11));
}

#[test]
fn configured_allow_rules_and_disabled_rules_apply() {
    let ghp = token(&["gh", "p_"].concat(), 36, 8);
    let text = format!("A={ghp}\nB={}\n", aws_key_id());
    let config: Config = toml_like(&ghp);
    let scanner = Scanner::with_config(&config).unwrap();
    // The GitHub token is allowed by value, the AWS rule is disabled.
    assert_eq!(scanner.scan("x", text.as_bytes()), vec![]);
    let only_path = Config {
        allow: vec![hoist_secretscan::AllowConfig {
            id: "fixtures".into(),
            path: Some("^fixtures/".into()),
            value: None,
        }],
        ..Config::default()
    };
    let scanner = Scanner::with_config(&only_path).unwrap();
    assert!(scanner.scan("fixtures/a", text.as_bytes()).is_empty());
    assert_eq!(scanner.scan("src/a", text.as_bytes()).len(), 2);

    let bad = Config {
        disable: vec!["no-such-rule".into()],
        ..Config::default()
    };
    let err = Scanner::with_config(&bad).unwrap_err().to_string();
    assert!(err.contains("no-such-rule"), "{err}");
    let bad = Config {
        allow: vec![hoist_secretscan::AllowConfig {
            id: "broken".into(),
            path: Some("(".into()),
            value: None,
        }],
        ..Config::default()
    };
    let err = Scanner::with_config(&bad).unwrap_err().to_string();
    assert!(err.contains("broken") && err.contains("regex"), "{err}");
}

fn toml_like(allowed_value: &str) -> Config {
    Config {
        disable: vec!["aws-access-key-id".into()],
        allow: vec![hoist_secretscan::AllowConfig {
            id: "known-test-token".into(),
            path: None,
            value: Some(format!("^{allowed_value}$")),
        }],
    }
}

#[test]
fn a_long_line_is_cut_around_the_secret() {
    let scanner = Scanner::default();
    let ghp = token(&["gh", "p_"].concat(), 36, 9);
    let line = format!("{} {ghp} {}", "x".repeat(500), "y".repeat(500));
    let findings = scanner.scan("big.txt", line.as_bytes());
    assert_eq!(findings.len(), 1);
    assert!(findings[0].redacted.chars().count() <= 200);
    assert!(findings[0].redacted.contains(&"*".repeat(40)));
}
