//! Lifecycle policies in ECR's JSON format, validated and evaluated as ECR documents
//! them. A pure core: [`LifecyclePolicy::evaluate`] takes the images of one repository
//! and the current time and returns what expires; garbage collection (module `gc`)
//! does the deleting.
//!
//! ```json
//! {"rules": [{
//!     "rulePriority": 1,
//!     "description": "keep the last 10 release images",
//!     "selection": {"tagStatus": "tagged", "tagPatternList": ["v*"],
//!                   "countType": "imageCountMoreThan", "countNumber": 10},
//!     "action": {"type": "expire"}
//! }]}
//! ```
//!
//! Evaluation (ECR's "lifecycle policy evaluation rules"):
//!
//! - Every rule *identifies* the images its selection's tag part matches (`tagged`
//!   with a prefix or wildcard list, `untagged`, `any`) and picks, among those, the
//!   ones its count part expires: with `imageCountMoreThan` all but the
//!   `countNumber` most recently pushed, with `sinceImagePushed` those pushed more
//!   than `countNumber` days ago. Rules identify images as if nothing had been
//!   expired yet, so counts include images a higher-priority rule marks.
//! - Rules are then applied from the lowest `rulePriority` up. A rule never marks an
//!   image a higher-priority rule marked (an image is expired by one rule or none),
//!   nor an image that matches the tag selection of a higher-priority rule.
//! - A prefix or pattern list matches an image when *every* entry matches at least
//!   one of its tags; a pattern's `*` matches any run of characters.
//! - Ties in push time are broken by digest, so evaluation is deterministic.
//!
//! What ECR's rules do not cover, for images built of several manifests:
//!
//! - A manifest that an index kept in the repository lists is not expired ("an
//!   image referenced by a manifest list cannot be expired without the manifest list
//!   being deleted first"). Children count as images for the rules (usually
//!   untagged ones); when the index expires, the children a rule marked expire with
//!   it and the others stay.
//! - A referrer (a manifest whose `subject` is in the repository: signatures, SBOMs)
//!   is kept while its subject is kept, and expires with its subject, as ECR cleans
//!   up reference artifacts after their subject image is deleted.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::time::{Duration, SystemTime};

use hoist_oci::Digest;
use serde::Deserialize;

/// A validated lifecycle policy: its rules in priority order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LifecyclePolicy {
    /// The rules, lowest `rulePriority` first.
    pub rules: Vec<LifecycleRule>,
}

/// One rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LifecycleRule {
    /// `rulePriority`: lower applies first.
    pub priority: u32,
    /// `description`.
    pub description: Option<String>,
    /// `selection.tagStatus` with its prefix or pattern list.
    pub tags: TagSelection,
    /// `selection.countType` and its number.
    pub count: CountRule,
}

/// Which images a rule identifies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TagSelection {
    /// `tagged` with a `tagPrefixList`: every prefix starts some tag.
    TaggedPrefixes(Vec<String>),
    /// `tagged` with a `tagPatternList`: every pattern matches some tag.
    TaggedPatterns(Vec<String>),
    /// `untagged`: images without tags.
    Untagged,
    /// `any`: every image.
    Any,
}

/// Which identified images a rule expires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CountRule {
    /// `imageCountMoreThan`: keep this many, newest first.
    ImageCountMoreThan(u32),
    /// `sinceImagePushed` with `countUnit` `days`: expire older than this many days.
    SinceImagePushedDays(u32),
}

/// An image as lifecycle rules see it: a manifest revision in a repository.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Image {
    /// The manifest digest.
    pub digest: Digest,
    /// The tags pointing at it (empty: untagged).
    pub tags: Vec<String>,
    /// When it was pushed.
    pub pushed_at: SystemTime,
    /// For an index, the manifests it lists.
    pub children: Vec<Digest>,
    /// For a referrer, the manifest its `subject` names.
    pub subject: Option<Digest>,
}

/// Why an image expires.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExpiryReason {
    /// The rule with this `rulePriority` marked it.
    Rule(u32),
    /// It refers to (`subject`) this manifest, which expires.
    SubjectExpired(Digest),
}

impl fmt::Display for ExpiryReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExpiryReason::Rule(p) => write!(f, "rulePriority {p}"),
            ExpiryReason::SubjectExpired(d) => write!(f, "its subject {d} expires"),
        }
    }
}

/// A problem in a lifecycle policy, naming the rule and field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleProblem {
    /// Index of the rule in `rules` (`None` for the policy as a whole).
    pub index: Option<usize>,
    /// Its `rulePriority`, when it has a usable one.
    pub priority: Option<i64>,
    /// The field, as a JSON path inside the rule (`selection.countUnit`).
    pub field: String,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for RuleProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.index, self.priority) {
            (Some(i), Some(p)) => write!(f, "rules[{i}] (rulePriority {p}): ")?,
            (Some(i), None) => write!(f, "rules[{i}]: ")?,
            (None, _) => {}
        }
        write!(f, "{}: {}", self.field, self.message)
    }
}

/// Why a lifecycle policy was rejected.
#[derive(Debug, thiserror::Error)]
pub enum LifecycleError {
    /// Not JSON, or not of the policy's shape (unknown field, wrong type).
    #[error("not a valid lifecycle policy document: {0}")]
    Json(#[from] serde_json::Error),
    /// Valid JSON that breaks ECR's rules; every problem found is listed.
    #[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    Invalid(Vec<RuleProblem>),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPolicy {
    rules: Option<Vec<RawRule>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawRule {
    rule_priority: Option<i64>,
    description: Option<String>,
    selection: Option<RawSelection>,
    action: Option<RawAction>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawSelection {
    tag_status: Option<String>,
    tag_prefix_list: Option<Vec<String>>,
    tag_pattern_list: Option<Vec<String>>,
    count_type: Option<String>,
    count_unit: Option<String>,
    count_number: Option<i64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAction {
    #[serde(rename = "type")]
    kind: Option<String>,
}

/// Whether `c` may appear in a tag or tag prefix.
fn tag_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')
}

impl LifecyclePolicy {
    /// Parse and validate ECR's JSON; every rule problem found is reported.
    pub fn from_json(text: &str) -> Result<LifecyclePolicy, LifecycleError> {
        let raw: RawPolicy = serde_json::from_str(text)?;
        let mut problems = Vec::new();
        let Some(raw_rules) = raw.rules.filter(|r| !r.is_empty()) else {
            return Err(LifecycleError::Invalid(vec![RuleProblem {
                index: None,
                priority: None,
                field: "rules".into(),
                message: "at least one rule is required".into(),
            }]));
        };
        let mut rules = Vec::new();
        for (index, raw) in raw_rules.into_iter().enumerate() {
            if let Some(rule) = validate_rule(index, raw, &mut problems) {
                rules.push((index, rule));
            }
        }
        // Checks across rules.
        let mut by_priority: BTreeMap<u32, usize> = BTreeMap::new();
        for (index, rule) in &rules {
            if let Some(first) = by_priority.insert(rule.priority, *index) {
                problems.push(problem(
                    *index,
                    Some(rule.priority.into()),
                    "rulePriority",
                    format!("must be unique, but rules[{first}] has it too"),
                ));
            }
        }
        let max_priority = rules.iter().map(|(_, r)| r.priority).max();
        let mut untagged_seen: Option<u32> = None;
        let mut tag_sets: Vec<(u32, &TagSelection)> = Vec::new();
        for (index, rule) in &rules {
            let prio = Some(i64::from(rule.priority));
            match &rule.tags {
                TagSelection::Any if Some(rule.priority) != max_priority => {
                    problems.push(problem(
                        *index,
                        prio,
                        "selection.tagStatus",
                        "a rule with tagStatus \"any\" must have the highest rulePriority".into(),
                    ));
                }
                TagSelection::Untagged => {
                    if let Some(other) = untagged_seen {
                        problems.push(problem(
                            *index,
                            prio,
                            "selection.tagStatus",
                            format!(
                                "only one rule may select untagged images, and rulePriority {other} does"
                            ),
                        ));
                    }
                    untagged_seen = Some(rule.priority);
                }
                tags @ (TagSelection::TaggedPrefixes(_) | TagSelection::TaggedPatterns(_)) => {
                    let norm = normalized(tags);
                    if let Some((other, _)) = tag_sets.iter().find(|(_, t)| normalized(t) == norm) {
                        let field = match tags {
                            TagSelection::TaggedPrefixes(_) => "selection.tagPrefixList",
                            _ => "selection.tagPatternList",
                        };
                        problems.push(problem(
                            *index,
                            prio,
                            field,
                            format!(
                                "rules must have unique tag lists, and rulePriority {other} has the same one"
                            ),
                        ));
                    }
                    tag_sets.push((rule.priority, tags));
                }
                TagSelection::Any => {}
            }
        }
        if !problems.is_empty() {
            return Err(LifecycleError::Invalid(problems));
        }
        let mut rules: Vec<LifecycleRule> = rules.into_iter().map(|(_, r)| r).collect();
        rules.sort_by_key(|r| r.priority);
        Ok(LifecyclePolicy { rules })
    }

    /// What expires among `images` (one repository's) at time `now`, oldest first.
    pub fn evaluate(&self, images: &[Image], now: SystemTime) -> Vec<(Digest, ExpiryReason)> {
        // Oldest first; ties by digest.
        let mut order: Vec<&Image> = images.iter().collect();
        order.sort_by(|a, b| a.pushed_at.cmp(&b.pushed_at).then(a.digest.cmp(&b.digest)));

        let mut expired: BTreeMap<Digest, ExpiryReason> = BTreeMap::new();
        for (ri, rule) in self.rules.iter().enumerate() {
            let identified: Vec<&Image> = order
                .iter()
                .copied()
                .filter(|img| rule.tags.selects(&img.tags))
                .collect();
            let candidates: Vec<&Image> = match rule.count {
                CountRule::ImageCountMoreThan(n) => {
                    let keep = (n as usize).min(identified.len());
                    identified[..identified.len() - keep].to_vec()
                }
                CountRule::SinceImagePushedDays(days) => {
                    let limit = Duration::from_secs(u64::from(days) * 86_400);
                    identified
                        .into_iter()
                        .filter(|img| {
                            now.duration_since(img.pushed_at)
                                .is_ok_and(|age| age > limit)
                        })
                        .collect()
                }
            };
            for img in candidates {
                if expired.contains_key(&img.digest) {
                    continue; // marked by a higher-priority rule
                }
                if self.rules[..ri].iter().any(|r| r.tags.selects(&img.tags)) {
                    continue; // a higher-priority rule's tag selection protects it
                }
                expired.insert(img.digest.clone(), ExpiryReason::Rule(rule.priority));
            }
        }

        // Referrers go with their subject (transitively).
        loop {
            let mut changed = false;
            for img in &order {
                if let Some(subject) = &img.subject {
                    if expired.contains_key(subject) && !expired.contains_key(&img.digest) {
                        expired.insert(
                            img.digest.clone(),
                            ExpiryReason::SubjectExpired(subject.clone()),
                        );
                        changed = true;
                    }
                }
            }
            if !changed {
                break;
            }
        }
        // What a kept index lists, and what refers to a kept manifest, is kept.
        loop {
            let mut changed = false;
            for img in &order {
                if expired.contains_key(&img.digest) {
                    continue;
                }
                for child in &img.children {
                    changed |= expired.remove(child).is_some();
                }
                for other in &order {
                    if other.subject.as_ref() == Some(&img.digest) {
                        changed |= expired.remove(&other.digest).is_some();
                    }
                }
            }
            if !changed {
                break;
            }
        }
        order
            .iter()
            .filter_map(|img| {
                expired
                    .get(&img.digest)
                    .map(|r| (img.digest.clone(), r.clone()))
            })
            .collect()
    }
}

fn normalized(t: &TagSelection) -> (u8, BTreeSet<&str>) {
    match t {
        TagSelection::TaggedPrefixes(v) => (0, v.iter().map(String::as_str).collect()),
        TagSelection::TaggedPatterns(v) => (1, v.iter().map(String::as_str).collect()),
        TagSelection::Untagged => (2, BTreeSet::new()),
        TagSelection::Any => (3, BTreeSet::new()),
    }
}

impl TagSelection {
    /// Whether an image with `tags` meets this selection.
    pub fn selects(&self, tags: &[String]) -> bool {
        match self {
            TagSelection::Any => true,
            TagSelection::Untagged => tags.is_empty(),
            TagSelection::TaggedPrefixes(prefixes) => {
                !tags.is_empty()
                    && prefixes
                        .iter()
                        .all(|p| tags.iter().any(|t| t.starts_with(p.as_str())))
            }
            TagSelection::TaggedPatterns(patterns) => {
                !tags.is_empty()
                    && patterns
                        .iter()
                        .all(|p| tags.iter().any(|t| crate::policy::wildcard_match(p, t)))
            }
        }
    }
}

fn problem(index: usize, priority: Option<i64>, field: &str, message: String) -> RuleProblem {
    RuleProblem {
        index: Some(index),
        priority,
        field: field.into(),
        message,
    }
}

/// Check one rule, pushing its problems; `None` when it is unusable.
fn validate_rule(
    index: usize,
    raw: RawRule,
    problems: &mut Vec<RuleProblem>,
) -> Option<LifecycleRule> {
    let before = problems.len();
    let prio = raw.rule_priority;
    let mut p = |field: &str, message: String| problems.push(problem(index, prio, field, message));
    let priority = match raw.rule_priority {
        None => {
            p("rulePriority", "is required".into());
            None
        }
        Some(n) => match u32::try_from(n) {
            Ok(n) if n >= 1 => Some(n),
            _ => {
                p(
                    "rulePriority",
                    format!("must be a positive integer, not {n}"),
                );
                None
            }
        },
    };
    let Some(sel) = raw.selection else {
        p("selection", "is required".into());
        return None;
    };
    let prefixes = sel.tag_prefix_list;
    let patterns = sel.tag_pattern_list;
    let tags = match sel.tag_status.as_deref() {
        None => {
            p(
                "selection.tagStatus",
                "is required (tagged, untagged or any)".into(),
            );
            None
        }
        Some("tagged") => {
            match (prefixes, patterns) {
                (Some(_), Some(_)) => {
                    p(
                        "selection.tagPatternList",
                        "tagPrefixList and tagPatternList cannot both be given".into(),
                    );
                    None
                }
                (None, None) => {
                    p(
                        "selection.tagStatus",
                        "\"tagged\" needs a tagPrefixList or a tagPatternList".into(),
                    );
                    None
                }
                (Some(list), None) if list.is_empty() => {
                    p("selection.tagPrefixList", "must not be empty".into());
                    None
                }
                (None, Some(list)) if list.is_empty() => {
                    p("selection.tagPatternList", "must not be empty".into());
                    None
                }
                (Some(list), None) => {
                    let mut ok = true;
                    for prefix in &list {
                        if prefix.is_empty() || !prefix.chars().all(tag_char) {
                            p(
                            "selection.tagPrefixList",
                            format!("{prefix:?} is not a tag prefix (letters, digits, '.', '_', '-')"),
                        );
                            ok = false;
                        }
                    }
                    ok.then_some(TagSelection::TaggedPrefixes(list))
                }
                (None, Some(list)) => {
                    let mut ok = true;
                    for pattern in &list {
                        let stars = pattern.matches('*').count();
                        if pattern.is_empty() || !pattern.chars().all(|c| c == '*' || tag_char(c)) {
                            p(
                            "selection.tagPatternList",
                            format!("{pattern:?} is not a tag pattern (letters, digits, '.', '_', '-' and '*')"),
                        );
                            ok = false;
                        } else if stars > 4 {
                            p(
                                "selection.tagPatternList",
                                format!("{pattern:?} has {stars} wildcards; at most 4 are allowed"),
                            );
                            ok = false;
                        }
                    }
                    ok.then_some(TagSelection::TaggedPatterns(list))
                }
            }
        }
        Some(status @ ("untagged" | "any")) => {
            if prefixes.is_some() {
                p(
                    "selection.tagPrefixList",
                    format!("only allowed with tagStatus \"tagged\", not {status:?}"),
                );
            }
            if patterns.is_some() {
                p(
                    "selection.tagPatternList",
                    format!("only allowed with tagStatus \"tagged\", not {status:?}"),
                );
            }
            Some(if status == "any" {
                TagSelection::Any
            } else {
                TagSelection::Untagged
            })
        }
        Some(other) => {
            p(
                "selection.tagStatus",
                format!("must be tagged, untagged or any, not {other:?}"),
            );
            None
        }
    };
    let number = match sel.count_number {
        None => {
            p("selection.countNumber", "is required".into());
            None
        }
        Some(n) => match u32::try_from(n) {
            Ok(n) if n >= 1 => Some(n),
            _ => {
                p(
                    "selection.countNumber",
                    format!("must be a positive integer, not {n}"),
                );
                None
            }
        },
    };
    let count = match (sel.count_type.as_deref(), sel.count_unit.as_deref()) {
        (None, _) => {
            p(
                "selection.countType",
                "is required (imageCountMoreThan or sinceImagePushed)".into(),
            );
            None
        }
        (Some("imageCountMoreThan"), None) => number.map(CountRule::ImageCountMoreThan),
        (Some("imageCountMoreThan"), Some(_)) => {
            p(
                "selection.countUnit",
                "only allowed with countType \"sinceImagePushed\"".into(),
            );
            None
        }
        (Some("sinceImagePushed"), Some("days")) => number.map(CountRule::SinceImagePushedDays),
        (Some("sinceImagePushed"), None) => {
            p(
                "selection.countUnit",
                "is required with countType \"sinceImagePushed\" (\"days\")".into(),
            );
            None
        }
        (Some("sinceImagePushed"), Some(unit)) => {
            p(
                "selection.countUnit",
                format!("must be \"days\", not {unit:?}"),
            );
            None
        }
        (Some(other), _) => {
            p(
                "selection.countType",
                format!("must be imageCountMoreThan or sinceImagePushed, not {other:?}"),
            );
            None
        }
    };
    match raw.action.and_then(|a| a.kind) {
        Some(kind) if kind == "expire" => {}
        Some(kind) => p("action.type", format!("must be \"expire\", not {kind:?}")),
        None => p("action.type", "is required (\"expire\")".into()),
    }
    if problems.len() > before {
        return None;
    }
    Some(LifecycleRule {
        priority: priority?,
        description: raw.description,
        tags: tags?,
        count: count?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: u64 = 86_400;

    fn rule(priority: u32, selection: &str) -> String {
        format!(
            r#"{{"rulePriority": {priority}, "description": "Rule {priority}", "selection": {selection}, "action": {{"type": "expire"}}}}"#
        )
    }

    fn policy(rules: &[String]) -> LifecyclePolicy {
        let text = format!(r#"{{"rules": [{}]}}"#, rules.join(","));
        LifecyclePolicy::from_json(&text).unwrap_or_else(|e| panic!("{e}\n{text}"))
    }

    fn problems(rules: &[String]) -> String {
        let text = format!(r#"{{"rules": [{}]}}"#, rules.join(","));
        match LifecyclePolicy::from_json(&text) {
            Ok(_) => panic!("accepted: {text}"),
            Err(e) => e.to_string(),
        }
    }

    /// Images named by a letter; digests are made from the name.
    fn images(now: SystemTime, spec: &[(&str, &[&str], u64)]) -> Vec<Image> {
        spec.iter()
            .map(|(name, tags, days_ago)| Image {
                digest: Digest::sha256_of(name.as_bytes()),
                tags: tags.iter().map(|t| t.to_string()).collect(),
                pushed_at: now - Duration::from_secs(days_ago * DAY),
                children: Vec::new(),
                subject: None,
            })
            .collect()
    }

    fn names(imgs: &[Image], expired: &[(Digest, ExpiryReason)]) -> Vec<String> {
        let mut out: Vec<String> = expired
            .iter()
            .map(|(d, _)| {
                let i = imgs.iter().position(|i| &i.digest == d).unwrap();
                format!("{}", (b'A' + i as u8) as char)
            })
            .collect();
        out.sort();
        out
    }

    fn prefix_count(prefixes: &str, n: u32) -> String {
        format!(
            r#"{{"tagStatus": "tagged", "tagPrefixList": {prefixes}, "countType": "imageCountMoreThan", "countNumber": {n}}}"#
        )
    }

    fn pattern_count(patterns: &str, n: u32) -> String {
        format!(
            r#"{{"tagStatus": "tagged", "tagPatternList": {patterns}, "countType": "imageCountMoreThan", "countNumber": {n}}}"#
        )
    }

    fn status_count(status: &str, n: u32) -> String {
        format!(
            r#"{{"tagStatus": "{status}", "countType": "imageCountMoreThan", "countNumber": {n}}}"#
        )
    }

    fn status_days(status: &str, days: u32) -> String {
        format!(
            r#"{{"tagStatus": "{status}", "countType": "sinceImagePushed", "countUnit": "days", "countNumber": {days}}}"#
        )
    }

    /// ECR's documented examples, restated: (policy rules, repository, expired).
    #[test]
    fn ecr_examples() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1000 * DAY);
        let ab_c: &[(&str, &[&str], u64)] = &[
            ("A", &["beta-1", "prod-1"], 10),
            ("B", &["beta-2", "prod-2"], 9),
            ("C", &["beta-3"], 8),
        ];
        type Case<'a> = (
            &'a str,
            Vec<String>,
            &'a [(&'a str, &'a [&'a str], u64)],
            &'a [&'a str],
        );
        let cases: Vec<Case> = vec![
            (
                // Rule 2 would mark A and B; A is marked already and B matches rule 1.
                "multiple rules, example A",
                vec![
                    rule(1, &prefix_count(r#"["prod"]"#, 1)),
                    rule(2, &prefix_count(r#"["beta"]"#, 1)),
                ],
                ab_c,
                &["A"],
            ),
            (
                "multiple rules, example B (priorities swapped)",
                vec![
                    rule(1, &prefix_count(r#"["beta"]"#, 1)),
                    rule(2, &prefix_count(r#"["prod"]"#, 1)),
                ],
                ab_c,
                &["A", "B"],
            ),
            (
                "same with wildcard patterns",
                vec![
                    rule(1, &pattern_count(r#"["prod*"]"#, 1)),
                    rule(2, &pattern_count(r#"["beta*"]"#, 1)),
                ],
                ab_c,
                &["A"],
            ),
            (
                // Only images carrying both tags are identified; C is older than 5 days.
                "multiple tags in one rule, example A",
                vec![rule(
                    1,
                    r#"{"tagStatus": "tagged", "tagPrefixList": ["alpha", "beta"], "countType": "sinceImagePushed", "countUnit": "days", "countNumber": 5}"#,
                )],
                &[
                    ("A", &["alpha-1"], 12),
                    ("B", &["beta-1"], 11),
                    ("C", &["alpha-2", "beta-2"], 10),
                    ("D", &["alpha-3"], 4),
                    ("E", &["beta-3"], 3),
                    ("F", &["alpha-4", "beta-4"], 2),
                ],
                &["C"],
            ),
            (
                "multiple tags in one rule, example B (tags are not exclusive)",
                vec![rule(1, &pattern_count(r#"["alpha*", "beta*"]"#, 1))],
                &[
                    ("A", &["alpha-1", "beta-1", "gamma-1"], 10),
                    ("B", &["alpha-2", "beta-2"], 9),
                    ("C", &["alpha-3", "beta-3", "gamma-2"], 8),
                ],
                &["A", "B"],
            ),
            (
                "untagged older than 14 days",
                vec![rule(1, &status_days("untagged", 14))],
                &[
                    ("A", &[], 20),
                    ("B", &[], 14),
                    ("C", &["v1"], 30),
                    ("D", &[], 1),
                ],
                &["A"],
            ),
            (
                "keep only one untagged image",
                vec![rule(1, &status_count("untagged", 1))],
                &[
                    ("A", &[], 3),
                    ("B", &[], 2),
                    ("C", &[], 1),
                    ("D", &["v1"], 9),
                ],
                &["A", "B"],
            ),
            (
                // An image a higher rule's tag selection covers is safe from "any".
                "any rule last cannot expire what a tagged rule covers",
                vec![
                    rule(1, &pattern_count(r#"["release-*"]"#, 5)),
                    rule(2, &status_count("any", 1)),
                ],
                &[
                    ("A", &["release-1"], 9),
                    ("B", &[], 8),
                    ("C", &["dev"], 7),
                    ("D", &["latest"], 1),
                ],
                &["B", "C"],
            ),
            (
                // Counting includes images a higher rule marked ("identify them as if
                // they haven't been expired"): rule 2 sees A, B, C and keeps only C.
                "counts include images marked by a higher rule",
                vec![
                    rule(1, &status_days("untagged", 5)),
                    rule(2, &status_count("any", 1)),
                ],
                &[("A", &[], 10), ("B", &["x"], 9), ("C", &["y"], 1)],
                &["A", "B"],
            ),
        ];
        for (what, rules, repo, want) in cases {
            let p = policy(&rules);
            let imgs = images(now, repo);
            let got = names(&imgs, &p.evaluate(&imgs, now));
            assert_eq!(got, want.to_vec(), "{what}");
        }
    }

    #[test]
    fn index_children_and_referrers() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1000 * DAY);
        // A: tagged index listing B and C (untagged); D: untagged referrer of A;
        // E: old untagged leftover; F: a referrer of E (tagged, so no rule marks it).
        let mut imgs = images(
            now,
            &[
                ("A", &["v1"], 1),
                ("B", &[], 1),
                ("C", &[], 1),
                ("D", &[], 1),
                ("E", &[], 5),
                ("F", &["sig"], 5),
            ],
        );
        imgs[0].children = vec![imgs[1].digest.clone(), imgs[2].digest.clone()];
        imgs[3].subject = Some(imgs[0].digest.clone());
        imgs[5].subject = Some(imgs[4].digest.clone());
        // Every untagged image but the newest is marked; the index keeps its
        // children and its referrer; E's referrer goes with it.
        let p = policy(&[rule(1, &status_count("untagged", 1))]);
        let got = p.evaluate(&imgs, now);
        assert_eq!(names(&imgs, &got), vec!["E", "F"]);
        assert!(got.contains(&(
            imgs[5].digest.clone(),
            ExpiryReason::SubjectExpired(imgs[4].digest.clone())
        )));
        // When the index itself expires, its referrer goes with it; its children go
        // only if a rule marked them too.
        let p = policy(&[rule(
            1,
            r#"{"tagStatus": "tagged", "tagPatternList": ["v*"], "countType": "sinceImagePushed", "countUnit": "days", "countNumber": 2}"#,
        )]);
        let later = now + Duration::from_secs(10 * DAY);
        assert_eq!(names(&imgs, &p.evaluate(&imgs, later)), vec!["A", "D"]);
        let p = policy(&[rule(1, &status_days("any", 2))]);
        assert_eq!(
            names(&imgs, &p.evaluate(&imgs, later)),
            vec!["A", "B", "C", "D", "E", "F"]
        );
    }

    #[test]
    fn validation_names_rule_and_field() {
        let ok_sel = status_count("untagged", 1);
        // (rules, expected fragment of the error)
        let table: Vec<(Vec<String>, &str)> = vec![
            (vec![], "rules: at least one rule is required"),
            (
                vec![rule(1, r#"{"tagStatus": "tagged", "tagPrefixList": ["a"], "tagPatternList": ["a*"], "countType": "imageCountMoreThan", "countNumber": 1}"#)],
                "rules[0] (rulePriority 1): selection.tagPatternList: tagPrefixList and tagPatternList cannot both be given",
            ),
            (
                vec![rule(3, r#"{"tagStatus": "tagged", "countType": "imageCountMoreThan", "countNumber": 1}"#)],
                "rules[0] (rulePriority 3): selection.tagStatus: \"tagged\" needs a tagPrefixList or a tagPatternList",
            ),
            (
                vec![rule(1, r#"{"tagStatus": "untagged", "tagPrefixList": ["a"], "countType": "imageCountMoreThan", "countNumber": 1}"#)],
                "rules[0] (rulePriority 1): selection.tagPrefixList: only allowed with tagStatus \"tagged\"",
            ),
            (
                vec![rule(2, &ok_sel), rule(2, &prefix_count(r#"["v"]"#, 1))],
                "rules[1] (rulePriority 2): rulePriority: must be unique, but rules[0] has it too",
            ),
            (
                vec![rule(5, &status_count("any", 1)), rule(6, &ok_sel)],
                "rules[0] (rulePriority 5): selection.tagStatus: a rule with tagStatus \"any\" must have the highest rulePriority",
            ),
            (
                vec![rule(1, &ok_sel), rule(2, &status_days("untagged", 3))],
                "rules[1] (rulePriority 2): selection.tagStatus: only one rule may select untagged images",
            ),
            (
                vec![rule(1, &prefix_count(r#"["a", "b"]"#, 1)), rule(2, &prefix_count(r#"["b", "a"]"#, 2))],
                "rules[1] (rulePriority 2): selection.tagPrefixList: rules must have unique tag lists",
            ),
            (
                vec![rule(1, &pattern_count(r#"["*a*b*c*d*"]"#, 1))],
                "selection.tagPatternList: \"*a*b*c*d*\" has 5 wildcards; at most 4 are allowed",
            ),
            (
                vec![rule(1, r#"{"tagStatus": "any", "countType": "sinceImagePushed", "countNumber": 1}"#)],
                "rules[0] (rulePriority 1): selection.countUnit: is required",
            ),
            (
                vec![rule(1, r#"{"tagStatus": "any", "countType": "sinceImagePushed", "countUnit": "hours", "countNumber": 1}"#)],
                "selection.countUnit: must be \"days\", not \"hours\"",
            ),
            (
                vec![rule(1, r#"{"tagStatus": "any", "countType": "imageCountMoreThan", "countUnit": "days", "countNumber": 1}"#)],
                "selection.countUnit: only allowed with countType \"sinceImagePushed\"",
            ),
            (
                vec![rule(1, &status_count("any", 0))],
                "rules[0] (rulePriority 1): selection.countNumber: must be a positive integer, not 0",
            ),
            (
                vec![rule(0, &ok_sel)],
                "rules[0] (rulePriority 0): rulePriority: must be a positive integer, not 0",
            ),
            (
                vec![r#"{"rulePriority": 1, "selection": {"tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": 1}, "action": {"type": "archive"}}"#.to_string()],
                "action.type: must be \"expire\", not \"archive\"",
            ),
        ];
        for (rules, want) in table {
            let got = problems(&rules);
            assert!(got.contains(want), "want {want:?}\n got {got:?}");
        }
        // Every problem is reported, not only the first.
        let got = problems(&[rule(
            1,
            r#"{"tagStatus": "sometimes", "countType": "never", "countNumber": -1}"#,
        )]);
        for want in [
            "selection.tagStatus",
            "selection.countType",
            "selection.countNumber",
        ] {
            assert!(got.contains(want), "{want} missing from {got}");
        }
        // Unknown fields (ECR's newer archive features included) are refused.
        let e = LifecyclePolicy::from_json(
            r#"{"rules": [{"rulePriority": 1, "selection": {"tagStatus": "any", "storageClass": "archive", "countType": "imageCountMoreThan", "countNumber": 1}, "action": {"type": "expire"}}]}"#,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("storageClass"), "{e}");
    }

    #[test]
    fn rules_are_sorted_by_priority() {
        let p = policy(&[
            rule(20, &status_count("any", 3)),
            rule(10, &status_count("untagged", 1)),
        ]);
        assert_eq!(
            p.rules.iter().map(|r| r.priority).collect::<Vec<_>>(),
            vec![10, 20]
        );
    }
}
