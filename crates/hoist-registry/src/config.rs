//! The registry's configuration file (`hoist registry serve --config FILE`), in TOML.
//!
//! ```toml
//! [tls]                       # optional: serve HTTPS
//! cert = "cert.pem"
//! key = "key.pem"
//!
//! [auth]                      # see auth::AuthConfig
//!
//! [gc]                        # see gc::GcConfig
//!
//! [[repository]]              # see policy::RepositoryPolicy; the first matching entry wins
//! pattern = "team/*"
//! ```
//!
//! Relative paths in the file are relative to the file's directory. Unknown keys are
//! errors, and every error names the file, line and column.

use std::path::{Path, PathBuf};

use serde::Deserialize;

pub use crate::auth::AuthConfig;
pub use crate::gc::GcConfig;
pub use crate::policy::{PolicyError, RepositoryPolicy};

/// Everything `hoist registry serve` reads from its configuration file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Serve HTTPS with this certificate chain and key instead of plain HTTP.
    pub tls: Option<TlsConfig>,
    /// Who may pull and push.
    #[serde(default)]
    pub auth: AuthConfig,
    /// Scheduled garbage collection and lifecycle rules.
    #[serde(default)]
    pub gc: GcConfig,
    /// Per-repository policies, matched against repository names in order.
    #[serde(default, rename = "repository")]
    pub repositories: Vec<RepositoryPolicy>,
}

/// PEM files for HTTPS.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// The certificate chain, leaf first (PEM).
    pub cert: PathBuf,
    /// The private key (PEM: PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
}

/// A configuration file that could not be read or is invalid.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("reading {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not valid TOML or does not match the schema.
    #[error("{path}:{line}:{column}: {message}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// 1-based line of the offending value (0 when unknown).
        line: usize,
        /// 1-based column (0 when unknown).
        column: usize,
        /// What was wrong, naming the field.
        message: String,
    },
    /// A `[[repository]]` entry that is invalid once resolved: its lifecycle policy
    /// file is unreadable or breaks ECR's rules, or its mutability settings clash.
    #[error("{path}: {source}")]
    Policy {
        /// The configuration file.
        path: PathBuf,
        /// What was wrong, naming the entry (and the rule and field).
        source: PolicyError,
    },
}

impl Config {
    /// Read and validate `path`; relative paths inside are resolved against its
    /// directory, and lifecycle policy files are read and validated.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        let mut config =
            Config::parse(&text).map_err(|(line, column, message)| ConfigError::Invalid {
                path: path.to_owned(),
                line,
                column,
                message,
            })?;
        let base = path.parent().unwrap_or(Path::new("."));
        if let Some(tls) = &mut config.tls {
            tls.cert = base.join(&tls.cert);
            tls.key = base.join(&tls.key);
        }
        for repository in &mut config.repositories {
            repository
                .resolve(base)
                .map_err(|source| ConfigError::Policy {
                    path: path.to_owned(),
                    source,
                })?;
        }
        config.auth.resolve_paths(base);
        Ok(config)
    }

    /// Parse the text of a configuration file; an error is (line, column, message).
    pub fn parse(text: &str) -> Result<Config, (usize, usize, String)> {
        toml::from_str(text).map_err(|e| {
            let (line, column) = e.span().map(|s| line_col(text, s.start)).unwrap_or((0, 0));
            (line, column, e.message().to_owned())
        })
    }
}

/// 1-based line and column of byte `offset` in `text`.
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
    (line, column)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_file_is_the_default() {
        let c = Config::parse("").unwrap();
        assert!(c.tls.is_none() && c.repositories.is_empty());
    }

    #[test]
    fn unknown_key_names_line_and_column() {
        let (line, column, message) =
            Config::parse("\n[tls]\ncert = \"a\"\nkey = \"b\"\nkeys = 1\n").unwrap_err();
        assert_eq!((line, column), (5, 1), "{message}");
        assert!(message.contains("keys"), "{message}");
    }
}
