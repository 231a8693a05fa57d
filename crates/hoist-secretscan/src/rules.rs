//! The built-in rules and allow rules.
//!
//! Patterns follow the token formats the issuers document (AWS key id prefixes,
//! GitHub's `ghp_`/`github_pat_`, GitLab's `glpat-`, Slack's `xox?-`...). Each has
//! keywords so its regex runs only on files that could hold it.

use regex::Regex;

use crate::{AllowRule, Rule, Severity};

struct Spec {
    id: &'static str,
    category: &'static str,
    title: &'static str,
    severity: Severity,
    regex: &'static str,
    keywords: &'static [&'static str],
    min_entropy: Option<f64>,
}

const SPECS: &[Spec] = &[
    Spec {
        id: "private-key",
        category: "PrivateKey",
        title: "Private key",
        severity: Severity::High,
        regex: r"-----BEGIN[ A-Z0-9_-]{0,100}PRIVATE KEY(?: BLOCK)?-----\s*(?P<secret>[A-Za-z0-9+/=\s:,-]{32,}?)\s*-----END",
        keywords: &["private key"],
        min_entropy: None,
    },
    Spec {
        id: "aws-access-key-id",
        category: "AWS",
        title: "AWS access key ID",
        severity: Severity::Critical,
        regex: r"\b(?P<secret>(?:A3T[A-Z0-9]|AKIA|ASIA|ABIA|ACCA|AGPA|AIDA|AIPA|ANPA|ANVA|AROA|APKA)[A-Z2-7]{16})\b",
        keywords: &[
            "akia", "asia", "abia", "acca", "agpa", "aida", "aipa", "anpa", "anva", "aroa", "apka",
            "a3t",
        ],
        min_entropy: None,
    },
    Spec {
        id: "aws-secret-access-key",
        category: "AWS",
        title: "AWS secret access key",
        severity: Severity::Critical,
        regex: r#"(?i)aws[_.-]?secret[_.-]?(?:access[_.-]?)?key["']?\s*(?:[:=]|=>)\s*["']?(?P<secret>[A-Za-z0-9/+=]{40})\b"#,
        keywords: &["secret"],
        min_entropy: None,
    },
    Spec {
        id: "github-pat",
        category: "GitHub",
        title: "GitHub personal access token",
        severity: Severity::Critical,
        regex: r"\b(?P<secret>ghp_[0-9A-Za-z]{36})\b",
        keywords: &["ghp_"],
        min_entropy: None,
    },
    Spec {
        id: "github-fine-grained-pat",
        category: "GitHub",
        title: "GitHub fine-grained personal access token",
        severity: Severity::Critical,
        regex: r"\b(?P<secret>github_pat_[0-9A-Za-z_]{82})\b",
        keywords: &["github_pat_"],
        min_entropy: None,
    },
    Spec {
        id: "github-oauth",
        category: "GitHub",
        title: "GitHub OAuth, app or refresh token",
        severity: Severity::Critical,
        regex: r"\b(?P<secret>(?:gho|ghu|ghs|ghr)_[0-9A-Za-z]{36})\b",
        keywords: &["gho_", "ghu_", "ghs_", "ghr_"],
        min_entropy: None,
    },
    Spec {
        id: "gitlab-pat",
        category: "GitLab",
        title: "GitLab personal access token",
        severity: Severity::Critical,
        regex: r"\b(?P<secret>glpat-[0-9A-Za-z_-]{20,})",
        keywords: &["glpat-"],
        min_entropy: None,
    },
    Spec {
        id: "gitlab-runner-token",
        category: "GitLab",
        title: "GitLab runner or deploy token",
        severity: Severity::High,
        regex: r"\b(?P<secret>(?:glrt|gldt|glptt|GR1348941)-?[0-9A-Za-z_-]{20,})",
        keywords: &["glrt-", "gldt-", "glptt-", "gr1348941"],
        min_entropy: None,
    },
    Spec {
        id: "slack-token",
        category: "Slack",
        title: "Slack token",
        severity: Severity::High,
        regex: r"\b(?P<secret>xox[abposr]-[0-9A-Za-z-]{10,})",
        keywords: &["xoxa-", "xoxb-", "xoxp-", "xoxo-", "xoxs-", "xoxr-"],
        min_entropy: None,
    },
    Spec {
        id: "slack-webhook",
        category: "Slack",
        title: "Slack incoming webhook URL",
        severity: Severity::Medium,
        regex: r"https://hooks\.slack\.com/services/(?P<secret>T[0-9A-Z]{8,}/B[0-9A-Z]{8,}/[0-9A-Za-z]{24})",
        keywords: &["hooks.slack.com"],
        min_entropy: None,
    },
    Spec {
        id: "google-api-key",
        category: "Google",
        title: "Google API key",
        severity: Severity::High,
        regex: r"\b(?P<secret>AIza[0-9A-Za-z_-]{35})\b",
        keywords: &["aiza"],
        min_entropy: None,
    },
    Spec {
        id: "stripe-secret-key",
        category: "Stripe",
        title: "Stripe secret key",
        severity: Severity::Critical,
        regex: r"\b(?P<secret>(?:sk|rk)_live_[0-9A-Za-z]{24,})\b",
        keywords: &["sk_live_", "rk_live_"],
        min_entropy: None,
    },
    Spec {
        id: "npm-token",
        category: "npm",
        title: "npm access token",
        severity: Severity::Critical,
        regex: r"\b(?P<secret>npm_[0-9A-Za-z]{36})\b",
        keywords: &["npm_"],
        min_entropy: None,
    },
    Spec {
        id: "pypi-token",
        category: "PyPI",
        title: "PyPI upload token",
        severity: Severity::Critical,
        regex: r"\b(?P<secret>pypi-AgEIcHlwaS5vcmc[0-9A-Za-z_-]{50,})",
        keywords: &["pypi-ageichlwas5vcmc"],
        min_entropy: None,
    },
    Spec {
        id: "generic-secret-assignment",
        category: "Generic",
        title: "High-entropy value assigned to a secret-looking name",
        severity: Severity::Medium,
        regex: r#"(?i)\b[A-Za-z0-9_.-]*(?:password|passwd|secret|token|api[_.-]?key|access[_.-]?key|private[_.-]?key|client[_.-]?secret|auth)[A-Za-z0-9_.-]*["']?\s*(?:[:=]|:=|=>)\s*["']?(?P<secret>[A-Za-z0-9/+_.=~-]{16,})"#,
        keywords: &["password", "passwd", "secret", "token", "key", "auth"],
        min_entropy: Some(3.5),
    },
];

/// The built-in rules, most specific first (a specific rule's finding hides the
/// generic rule's finding for the same bytes).
pub fn builtin_rules() -> Vec<Rule> {
    SPECS
        .iter()
        .map(|s| Rule {
            id: s.id.to_owned(),
            category: s.category.to_owned(),
            title: s.title.to_owned(),
            severity: s.severity,
            // The patterns are constants checked by `every_builtin_pattern_compiles`.
            #[allow(clippy::unwrap_used)]
            regex: Regex::new(s.regex).unwrap(),
            keywords: s.keywords.iter().map(|k| (*k).to_owned()).collect(),
            min_entropy: s.min_entropy,
        })
        .collect()
}

/// Built-in allow rules: documentation and test fixtures of installed packages,
/// where key-shaped strings are examples.
pub fn builtin_allow() -> Vec<AllowRule> {
    let path = |id: &str, re: &str| AllowRule {
        id: id.to_owned(),
        #[allow(clippy::unwrap_used)]
        path: Some(Regex::new(re).unwrap()),
        value: None,
    };
    vec![
        path("docs", r"^usr/share/(?:doc|man|info|locale)/"),
        path("python-tests", r"(?:^|/)site-packages/[^/]+/tests?/"),
        path("go-testdata", r"(?:^|/)testdata/"),
        path(
            "node-tests",
            r"(?:^|/)node_modules/.*/(?:tests?|__tests__|examples?)/",
        ),
    ]
}

/// Values that are obviously not real secrets: variable references, markers,
/// documentation examples.
pub fn is_placeholder(value: &str) -> bool {
    let lower = value.to_ascii_lowercase();
    value.starts_with('$')
        || value.starts_with('<')
        || value.starts_with('{')
        || lower.contains("example")
        || lower.contains("xxxxxxxx")
        || lower.contains("placeholder")
        || lower.contains("changeme")
        || lower.contains("your_")
        || lower.contains("dummy")
        || value.bytes().all(|b| b == value.as_bytes()[0])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_builtin_pattern_compiles() {
        for s in SPECS {
            Regex::new(s.regex).unwrap_or_else(|e| panic!("{}: {e}", s.id));
            for k in s.keywords {
                assert_eq!(
                    *k,
                    k.to_ascii_lowercase(),
                    "{}: keywords are lowercase",
                    s.id
                );
            }
        }
        assert_eq!(builtin_rules().len(), SPECS.len());
        assert_eq!(builtin_allow().len(), 4);
    }
}
