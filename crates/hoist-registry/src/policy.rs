//! Per-repository policies, as ECR has them: tag mutability (with exclusion filters),
//! a lifecycle policy and scan-on-push.
//!
//! ```toml
//! [[repository]]
//! pattern = "team/*"                     # globset: `*` within a component, `**` across
//! tag_mutability = "IMMUTABLE_WITH_EXCLUSION"
//! tag_mutability_exclusions = ["dev-*", "latest"]
//! lifecycle_policy = "team-lifecycle.json" # a file (relative to the config file) ...
//! scan_on_push = true
//!
//! [[repository]]
//! pattern = "**"
//! lifecycle_policy = '''                 # ... or the JSON inline: a string starting with `{`
//! {"rules": [{"rulePriority": 1, "selection": {"tagStatus": "untagged",
//!   "countType": "imageCountMoreThan", "countNumber": 5}, "action": {"type": "expire"}}]}
//! '''
//! ```
//!
//! Entries are tried in file order and the first whose `pattern` matches the
//! repository name applies; a repository no entry matches is `MUTABLE`, has no
//! lifecycle policy and is not scanned.
//!
//! Tag mutability takes ECR's four values. The exclusions are ECR's
//! `imageTagMutabilityExclusionFilters` of type `WILDCARD`: `*` matches any run of
//! characters and everything else itself, against the whole tag. Overwriting an
//! immutable tag with another digest is refused with ECR's registry answer (400,
//! `TAG_INVALID`); pushing the digest the tag already holds succeeds, so retries are
//! idempotent. Deleting a tag (`DELETE /v2/<name>/manifests/<tag>`) is allowed on an
//! immutable repository, as ECR's `BatchDeleteImage` is; the tag can then be pushed
//! afresh.
//!
//! Scan-on-push calls the hooks installed with [`Registry::on_push`] after a manifest
//! is stored, on a blocking thread the push response never waits for.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use hoist_oci::Digest;
use serde::{Deserialize, Deserializer};

use crate::lifecycle::{LifecycleError, LifecyclePolicy};
use crate::storage::Registry;

/// One `[[repository]]` entry of the configuration file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RepositoryPolicy {
    /// Repository names this entry applies to (`*` matches within a path component,
    /// `**` across components).
    #[serde(deserialize_with = "de_pattern")]
    pub pattern: String,
    /// Whether tags may be moved to another manifest.
    #[serde(default)]
    pub tag_mutability: TagMutability,
    /// Wildcard filters for the tags excepted from `tag_mutability` (only with the
    /// `*_WITH_EXCLUSION` values, which require at least one).
    #[serde(default, deserialize_with = "de_filters")]
    pub tag_mutability_exclusions: Vec<String>,
    /// The lifecycle policy in ECR's JSON: inline (a string starting with `{`) or a
    /// file.
    #[serde(default, deserialize_with = "de_lifecycle")]
    pub lifecycle_policy: Option<Lifecycle>,
    /// Call the scanner hooks when a manifest is pushed.
    #[serde(default)]
    pub scan_on_push: bool,
}

/// ECR's `imageTagMutability`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TagMutability {
    /// Tags may be overwritten.
    #[default]
    Mutable,
    /// No tag may be overwritten.
    Immutable,
    /// No tag may be overwritten, except those matching an exclusion filter.
    ImmutableWithExclusion,
    /// Tags may be overwritten, except those matching an exclusion filter.
    MutableWithExclusion,
}

impl TagMutability {
    /// ECR's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            TagMutability::Mutable => "MUTABLE",
            TagMutability::Immutable => "IMMUTABLE",
            TagMutability::ImmutableWithExclusion => "IMMUTABLE_WITH_EXCLUSION",
            TagMutability::MutableWithExclusion => "MUTABLE_WITH_EXCLUSION",
        }
    }
}

/// Where a repository's lifecycle policy comes from.
#[derive(Debug, Clone)]
pub enum Lifecycle {
    /// A JSON file, read when the registry's policies are built
    /// ([`Registry::with_policies`]); `Config::load` makes a relative path relative
    /// to the configuration file and reads it.
    File(PathBuf),
    /// A parsed and validated policy.
    Policy(LifecyclePolicy),
}

/// A policy that is not valid.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PolicyError {
    /// A repository pattern that is not a valid glob.
    #[error("pattern {pattern:?}: {message}")]
    Pattern {
        /// The pattern.
        pattern: String,
        /// Why it is invalid.
        message: String,
    },
    /// Tag mutability settings that do not fit together.
    #[error("[[repository]] {pattern:?}: {message}")]
    Mutability {
        /// The entry's pattern.
        pattern: String,
        /// What is wrong.
        message: String,
    },
    /// A lifecycle policy file that could not be read.
    #[error("[[repository]] {pattern:?}: reading lifecycle policy {path}: {source}")]
    ReadLifecycle {
        /// The entry's pattern.
        pattern: String,
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// An invalid lifecycle policy.
    #[error("[[repository]] {pattern:?}: lifecycle policy{}: {source}", file.as_ref().map(|f| format!(" {}", f.display())).unwrap_or_default())]
    Lifecycle {
        /// The entry's pattern.
        pattern: String,
        /// The file it came from, when not inline.
        file: Option<PathBuf>,
        /// What is wrong, naming the rule and field.
        source: LifecycleError,
    },
}

fn de_pattern<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let s = String::deserialize(d)?;
    compile_pattern(&s).map_err(serde::de::Error::custom)?;
    Ok(s)
}

fn de_filters<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    let v = Vec::<String>::deserialize(d)?;
    for f in &v {
        check_filter(f).map_err(serde::de::Error::custom)?;
    }
    Ok(v)
}

fn de_lifecycle<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Lifecycle>, D::Error> {
    let s = String::deserialize(d)?;
    if s.trim_start().starts_with('{') {
        LifecyclePolicy::from_json(&s)
            .map(|p| Some(Lifecycle::Policy(p)))
            .map_err(|e| serde::de::Error::custom(format!("lifecycle_policy: {e}")))
    } else {
        Ok(Some(Lifecycle::File(PathBuf::from(s))))
    }
}

/// A repository pattern as a globset matcher (`*` stays within a component).
fn compile_pattern(pattern: &str) -> Result<globset::GlobMatcher, PolicyError> {
    globset::GlobBuilder::new(pattern)
        .literal_separator(true)
        .build()
        .map(|g| g.compile_matcher())
        .map_err(|e| PolicyError::Pattern {
            pattern: pattern.to_owned(),
            message: e.kind().to_string(),
        })
}

/// ECR's rule for a wildcard filter: 1 to 128 of `[0-9a-zA-Z._*-]`.
fn check_filter(f: &str) -> Result<(), String> {
    if f.is_empty() || f.len() > 128 {
        return Err(format!("tag filter {f:?} must be 1 to 128 characters long"));
    }
    if let Some(c) = f
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '*' | '-')))
    {
        return Err(format!(
            "tag filter {f:?}: {c:?} is not allowed (only letters, digits, '.', '_', '-' and the wildcard '*')"
        ));
    }
    Ok(())
}

/// Whether `tag` matches the wildcard `filter` whole: `*` matches any run of
/// characters (also none), every other character itself (case-sensitive).
pub fn wildcard_match(filter: &str, tag: &str) -> bool {
    let (f, t) = (filter.as_bytes(), tag.as_bytes());
    let (mut fi, mut ti) = (0, 0);
    // Where the last `*` was, and where in the tag it started matching.
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if fi < f.len() && f[fi] == b'*' {
            star = Some((fi, ti));
            fi += 1;
        } else if fi < f.len() && f[fi] == t[ti] {
            fi += 1;
            ti += 1;
        } else if let Some((sf, st)) = star {
            fi = sf + 1;
            ti = st + 1;
            star = Some((sf, st + 1));
        } else {
            return false;
        }
    }
    f[fi..].iter().all(|&c| c == b'*')
}

impl RepositoryPolicy {
    /// A `MUTABLE` policy with nothing else, for `pattern`.
    pub fn new(pattern: impl Into<String>) -> RepositoryPolicy {
        RepositoryPolicy {
            pattern: pattern.into(),
            tag_mutability: TagMutability::Mutable,
            tag_mutability_exclusions: Vec::new(),
            lifecycle_policy: None,
            scan_on_push: false,
        }
    }

    /// Whether `tag` may not be moved to another manifest under this policy.
    pub fn tag_is_immutable(&self, tag: &str) -> bool {
        let excluded = || {
            self.tag_mutability_exclusions
                .iter()
                .any(|f| wildcard_match(f, tag))
        };
        match self.tag_mutability {
            TagMutability::Mutable => false,
            TagMutability::Immutable => true,
            TagMutability::ImmutableWithExclusion => !excluded(),
            TagMutability::MutableWithExclusion => excluded(),
        }
    }

    /// The lifecycle policy, when one is given and parsed.
    pub fn lifecycle(&self) -> Option<&LifecyclePolicy> {
        match &self.lifecycle_policy {
            Some(Lifecycle::Policy(p)) => Some(p),
            _ => None,
        }
    }

    /// Check the entry and read its lifecycle policy file, if any; a relative file
    /// path is taken relative to `base`.
    pub fn resolve(&mut self, base: &Path) -> Result<(), PolicyError> {
        compile_pattern(&self.pattern)?;
        let with_exclusion = matches!(
            self.tag_mutability,
            TagMutability::ImmutableWithExclusion | TagMutability::MutableWithExclusion
        );
        let mutability_error = |message: String| PolicyError::Mutability {
            pattern: self.pattern.clone(),
            message,
        };
        if with_exclusion && self.tag_mutability_exclusions.is_empty() {
            return Err(mutability_error(format!(
                "tag_mutability {} needs at least one tag_mutability_exclusions filter",
                self.tag_mutability.as_str()
            )));
        }
        if !with_exclusion && !self.tag_mutability_exclusions.is_empty() {
            return Err(mutability_error(format!(
                "tag_mutability_exclusions are only allowed with IMMUTABLE_WITH_EXCLUSION or MUTABLE_WITH_EXCLUSION, not {}",
                self.tag_mutability.as_str()
            )));
        }
        for f in &self.tag_mutability_exclusions {
            check_filter(f).map_err(mutability_error)?;
        }
        if let Some(Lifecycle::File(path)) = &self.lifecycle_policy {
            let path = base.join(path);
            let text =
                std::fs::read_to_string(&path).map_err(|source| PolicyError::ReadLifecycle {
                    pattern: self.pattern.clone(),
                    path: path.clone(),
                    source,
                })?;
            let policy =
                LifecyclePolicy::from_json(&text).map_err(|source| PolicyError::Lifecycle {
                    pattern: self.pattern.clone(),
                    file: Some(path.clone()),
                    source,
                })?;
            self.lifecycle_policy = Some(Lifecycle::Policy(policy));
        }
        Ok(())
    }
}

/// A manifest just stored in a repository whose policy asks for scan-on-push.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushedManifest {
    /// The repository.
    pub repository: String,
    /// The manifest's digest.
    pub digest: Digest,
    /// Its media type.
    pub media_type: String,
    /// The tag it was pushed with (`None` for a push by digest).
    pub tag: Option<String>,
}

/// A function called after each scan-on-push manifest is stored.
pub type PushHook = Arc<dyn Fn(&PushedManifest) + Send + Sync>;

/// The compiled policies and hooks a [`Registry`] carries.
#[derive(Default)]
pub(crate) struct PolicyState {
    entries: Vec<(globset::GlobMatcher, RepositoryPolicy)>,
    hooks: Vec<PushHook>,
}

impl Clone for PolicyState {
    fn clone(&self) -> PolicyState {
        PolicyState {
            entries: self.entries.clone(),
            hooks: self.hooks.clone(),
        }
    }
}

impl fmt::Debug for PolicyState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PolicyState")
            .field(
                "policies",
                &self.entries.iter().map(|(_, p)| p).collect::<Vec<_>>(),
            )
            .field("hooks", &self.hooks.len())
            .finish()
    }
}

impl Registry {
    /// This registry with `policies` (first match wins). Lifecycle policy files not
    /// read yet are read now (relative paths against the working directory).
    pub fn with_policies(
        mut self,
        policies: Vec<RepositoryPolicy>,
    ) -> Result<Registry, PolicyError> {
        let mut entries = Vec::with_capacity(policies.len());
        for mut p in policies {
            p.resolve(Path::new("."))?;
            entries.push((compile_pattern(&p.pattern)?, p));
        }
        Arc::make_mut(&mut self.policy).entries = entries;
        Ok(self)
    }

    /// This registry, calling `hook` after every manifest stored in a repository whose
    /// policy has `scan_on_push = true`. The hook runs on a blocking thread after the
    /// push is answered; it should hand long work elsewhere.
    pub fn on_push(mut self, hook: PushHook) -> Registry {
        Arc::make_mut(&mut self.policy).hooks.push(hook);
        self
    }

    /// The policies, in matching order.
    pub fn policies(&self) -> impl Iterator<Item = &RepositoryPolicy> {
        self.policy.entries.iter().map(|(_, p)| p)
    }

    /// The policy for repository `name`: the first entry whose pattern matches.
    pub fn policy_for(&self, name: &str) -> Option<&RepositoryPolicy> {
        self.policy
            .entries
            .iter()
            .find(|(m, _)| m.is_match(name))
            .map(|(_, p)| p)
    }

    /// Whether `tag` in repository `name` may not be overwritten.
    pub fn tag_is_immutable(&self, name: &str, tag: &str) -> bool {
        self.policy_for(name)
            .is_some_and(|p| p.tag_is_immutable(tag))
    }

    /// Call the push hooks for `pushed` when its repository's policy scans on push,
    /// without waiting for them (on tokio's blocking pool inside a runtime, else on a
    /// new thread). Returns whether any hook was started.
    pub(crate) fn notify_push(&self, pushed: PushedManifest) -> bool {
        let scan = self
            .policy_for(&pushed.repository)
            .is_some_and(|p| p.scan_on_push);
        if !scan || self.policy.hooks.is_empty() {
            return false;
        }
        let hooks = self.policy.hooks.clone();
        let run = move || {
            for hook in &hooks {
                hook(&pushed);
            }
        };
        match tokio::runtime::Handle::try_current() {
            Ok(handle) => {
                handle.spawn_blocking(run);
            }
            Err(_) => {
                std::thread::spawn(run);
            }
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policies(toml_text: &str) -> Registry {
        let config = crate::Config::parse(toml_text).unwrap();
        let dir = tempfile::tempdir().unwrap();
        Registry::open(dir.path())
            .unwrap()
            .with_policies(config.repositories)
            .unwrap()
    }

    #[test]
    fn patterns_first_match_wins() {
        let reg = policies(
            r#"
            [[repository]]
            pattern = "team/app"
            tag_mutability = "IMMUTABLE"
            [[repository]]
            pattern = "team/*"
            scan_on_push = true
            [[repository]]
            pattern = "prod/**"
            tag_mutability = "IMMUTABLE"
            "#,
        );
        // (repository, which entry applies by its pattern, or none)
        let table: &[(&str, Option<&str>)] = &[
            ("team/app", Some("team/app")),
            ("team/web", Some("team/*")),
            ("team/app/sub", None), // `*` does not cross '/'
            ("team", None),
            ("prod/a", Some("prod/**")),
            ("prod/a/b/c", Some("prod/**")),
            ("production/a", None),
            ("other", None),
        ];
        for (name, want) in table {
            let got = reg.policy_for(name).map(|p| p.pattern.as_str());
            assert_eq!(got, *want, "{name}");
        }
        assert!(reg.tag_is_immutable("team/app", "v1"));
        assert!(!reg.tag_is_immutable("team/web", "v1"));
        assert!(!reg.tag_is_immutable("unmatched", "v1"));
    }

    #[test]
    fn invalid_pattern_names_line_and_column() {
        let (line, _, message) =
            crate::Config::parse("[[repository]]\npattern = \"team/[\"\n").unwrap_err();
        assert_eq!(line, 2, "{message}");
        assert!(message.contains("team/["), "{message}");
    }

    #[test]
    fn wildcards() {
        let table = [
            ("dev-*", "dev-1", true),
            ("dev-*", "dev-", true),
            ("dev-*", "xdev-1", false),
            ("latest", "latest", true),
            ("latest", "latest2", false),
            ("*", "anything", true),
            ("*-rc*", "v1-rc2", true),
            ("*-rc*", "v1", false),
            ("v*.*.*", "v1.2.3", true),
            ("v*.*.*", "v1.2", false),
            ("a*b*c", "aXbYbZc", true),
            ("a*b*c", "aXbYbZ", false),
            ("Prod*", "prod1", false),
        ];
        for (filter, tag, want) in table {
            assert_eq!(wildcard_match(filter, tag), want, "{filter} vs {tag}");
        }
    }

    #[test]
    fn mutability_table() {
        let mk = |m: TagMutability, ex: &[&str]| RepositoryPolicy {
            tag_mutability: m,
            tag_mutability_exclusions: ex.iter().map(|s| s.to_string()).collect(),
            ..RepositoryPolicy::new("x")
        };
        use TagMutability::*;
        // (mutability, exclusions, tag, immutable?)
        let table: &[(TagMutability, &[&str], &str, bool)] = &[
            (Mutable, &[], "v1", false),
            (Immutable, &[], "v1", true),
            (Immutable, &[], "latest", true),
            (
                ImmutableWithExclusion,
                &["latest", "dev-*"],
                "latest",
                false,
            ),
            (
                ImmutableWithExclusion,
                &["latest", "dev-*"],
                "dev-42",
                false,
            ),
            (ImmutableWithExclusion, &["latest", "dev-*"], "v1.0", true),
            (MutableWithExclusion, &["release-*"], "release-1", true),
            (MutableWithExclusion, &["release-*"], "latest", false),
        ];
        for (m, ex, tag, want) in table {
            assert_eq!(
                mk(*m, ex).tag_is_immutable(tag),
                *want,
                "{m:?} {ex:?} {tag}"
            );
        }
    }

    #[test]
    fn mutability_settings_are_checked() {
        let dir = tempfile::tempdir().unwrap();
        let reg = Registry::open(dir.path()).unwrap();
        let mut p = RepositoryPolicy::new("a");
        p.tag_mutability = TagMutability::ImmutableWithExclusion;
        let e = reg.clone().with_policies(vec![p]).unwrap_err().to_string();
        assert!(e.contains("needs at least one"), "{e}");
        let mut p = RepositoryPolicy::new("a");
        p.tag_mutability_exclusions = vec!["x".into()];
        let e = reg.clone().with_policies(vec![p]).unwrap_err().to_string();
        assert!(e.contains("only allowed with"), "{e}");
        let e = crate::Config::parse(
            "[[repository]]\npattern = \"a\"\ntag_mutability = \"IMMUTABLE_WITH_EXCLUSION\"\ntag_mutability_exclusions = [\"a/b\"]\n",
        )
        .unwrap_err()
        .2;
        assert!(e.contains("not allowed"), "{e}");
        let e =
            crate::Config::parse("[[repository]]\npattern = \"a\"\ntag_mutability = \"FROZEN\"\n")
                .unwrap_err()
                .2;
        assert!(e.contains("IMMUTABLE_WITH_EXCLUSION"), "{e}");
    }

    #[test]
    fn hooks_fire_only_for_scan_on_push_repositories() {
        let (tx, rx) = std::sync::mpsc::channel();
        let tx = std::sync::Mutex::new(tx);
        let reg = policies("[[repository]]\npattern = \"scanned/*\"\nscan_on_push = true\n")
            .on_push(Arc::new(move |p: &PushedManifest| {
                tx.lock().unwrap().send(p.clone()).unwrap();
            }));
        let pushed = |repo: &str| PushedManifest {
            repository: repo.into(),
            digest: Digest::sha256_of(b"x"),
            media_type: "m".into(),
            tag: Some("t".into()),
        };
        assert!(!reg.notify_push(pushed("other/a")));
        assert!(reg.notify_push(pushed("scanned/a")));
        let got = rx.recv_timeout(std::time::Duration::from_secs(30)).unwrap();
        assert_eq!(got, pushed("scanned/a"));
        assert!(rx.try_recv().is_err());
    }
}
