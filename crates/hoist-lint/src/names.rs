//! Which variable names look like they hold a secret (`DB_PASSWORD`, `NPM_TOKEN`,
//! `AWS_SECRET_ACCESS_KEY`), shared by the Dockerfile ENV/ARG rules and the ECS
//! `environment` rule.
//!
//! The name is split into words at `_`, `-` and `.`; it is a secret name when a
//! word is one of [`SECRET_WORDS`] or two adjacent words make one of
//! [`SECRET_PAIRS`], unless the last word says the value only points at a secret
//! (`_FILE`, `_PATH`, `_ARN`, `_ID`...). `GPG_KEY` (a public fingerprint in
//! official images) and `PWD` are not secrets.

/// Words that make a name secret on their own.
const SECRET_WORDS: &[&str] = &[
    "PASSWORD",
    "PASSWD",
    "PASSPHRASE",
    "SECRET",
    "SECRETS",
    "TOKEN",
    "APIKEY",
    "CREDENTIALS",
    "CREDENTIAL",
    "PRIVATEKEY",
];

/// Adjacent word pairs that make a name secret.
const SECRET_PAIRS: &[(&str, &str)] = &[
    ("API", "KEY"),
    ("PRIVATE", "KEY"),
    ("ACCESS", "KEY"),
    ("SECRET", "KEY"),
    ("CLIENT", "SECRET"),
    ("SIGNING", "KEY"),
    ("ENCRYPTION", "KEY"),
    ("MASTER", "KEY"),
    ("AUTH", "KEY"),
];

/// Last words that mean the value refers to a secret rather than being one.
const REFERENCE_SUFFIXES: &[&str] = &[
    "FILE",
    "PATH",
    "DIR",
    "NAME",
    "URL",
    "URI",
    "ARN",
    "ID",
    "REF",
    "ENDPOINT",
    "HOST",
    "PORT",
    "TYPE",
    "LENGTH",
    "SIZE",
    "TTL",
    "EXPIRY",
    "HEADER",
    "ENABLED",
    "REGION",
    "VERSION",
    "KEYRING",
    "PARAMETER",
    "PARAM",
];

/// Whether an environment variable or build argument named `name` looks like it
/// holds a secret.
pub fn is_secret_name(name: &str) -> bool {
    let upper = name.to_ascii_uppercase();
    let words: Vec<&str> = upper
        .split(['_', '-', '.'])
        .filter(|w| !w.is_empty())
        .collect();
    let Some(last) = words.last() else {
        return false;
    };
    if REFERENCE_SUFFIXES.contains(last) {
        return false;
    }
    words.iter().any(|w| SECRET_WORDS.contains(w))
        || words
            .windows(2)
            .any(|p| SECRET_PAIRS.contains(&(p[0], p[1])))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_names() {
        for n in [
            "PASSWORD",
            "db_password",
            "NPM_TOKEN",
            "GITHUB_TOKEN",
            "API_KEY",
            "STRIPE_APIKEY",
            "AWS_SECRET_ACCESS_KEY",
            "PRIVATE_KEY",
            "OAUTH_CLIENT_SECRET",
            "DJANGO_SECRET_KEY",
            "REDIS_PASSWD",
        ] {
            assert!(is_secret_name(n), "{n}");
        }
    }

    #[test]
    fn not_secret_names() {
        for n in [
            "GPG_KEY",
            "PWD",
            "PATH",
            "AWS_ACCESS_KEY_ID",
            "PASSWORD_FILE",
            "DB_PASSWORD_SECRET_ARN",
            "TOKENIZERS_PARALLELISM",
            "SECRETS_DIR",
            "KEYCLOAK_URL",
            "JWT_TOKEN_TTL",
            "",
        ] {
            assert!(!is_secret_name(n), "{n}");
        }
    }
}
