//! Errors that name the file, the line (and column) and the field path, and the two
//! ways they are found: serde's first syntax or type error while a file is read
//! (through `serde_path_to_error`, taken apart by `hoist_deploy`'s [`YamlProblem`]),
//! and the checks that run on the typed value afterwards, whose field paths are
//! looked up in the text again (`locate`) so that every one of them is reported.
//!
//! Unknown fields and values get a did-you-mean from the names serde expected.

use std::fmt;

use hoist_deploy::spec::YamlProblem;
use serde::de::{
    DeserializeOwned, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor,
};

/// One problem in an input file.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct SpecError {
    /// The file, as named by the caller.
    pub file: String,
    /// Line, from 1 (1 when only the document as a whole is known).
    pub line: usize,
    /// Column, from 1, when known.
    pub column: Option<usize>,
    /// The field path (`environments[1].service.listener.addr`); empty for the
    /// document itself.
    pub path: String,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for SpecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.file, self.line)?;
        if let Some(c) = self.column {
            write!(f, ":{c}")?;
        }
        if !self.path.is_empty() {
            write!(f, ": {}", self.path)?;
        }
        write!(f, ": {}", self.message)
    }
}

/// Every problem found in a file, in the order of their lines; shown one a line.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct SpecErrors(pub Vec<SpecError>);

impl SpecErrors {
    /// The problems.
    pub fn errors(&self) -> &[SpecError] {
        &self.0
    }
}

impl fmt::Display for SpecErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl From<SpecError> for SpecErrors {
    fn from(e: SpecError) -> SpecErrors {
        SpecErrors(vec![e])
    }
}

/// Reads `text` as YAML into `T`; the first syntax or type error is returned with
/// its path and location, unknown names with a suggestion.
pub(crate) fn parse_yaml<T: DeserializeOwned>(file: &str, text: &str) -> Result<T, SpecError> {
    let de = serde_yaml_ng::Deserializer::from_str(text);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let problem = YamlProblem::new(text, e);
        let (line, column) = match problem.location {
            Some((l, c)) => (l, Some(c)),
            None => (1, None),
        };
        let (path, message) = explain_unknown(problem.path, problem.message);
        SpecError {
            file: file.to_owned(),
            line,
            column,
            path,
            message,
        }
    })
}

/// Rewrites serde's "unknown field `x`, expected one of ..." (and "unknown variant")
/// into a did-you-mean when one of the expected names is close.
fn explain_unknown(mut path: String, message: String) -> (String, String) {
    for (prefix, what) in [("unknown field `", "field"), ("unknown variant `", "value")] {
        let Some(rest) = message.strip_prefix(prefix) else {
            continue;
        };
        let Some((word, expected)) = rest.split_once('`') else {
            continue;
        };
        let candidates: Vec<&str> = expected.split('`').skip(1).step_by(2).collect();
        if what == "field" && !path.ends_with(word) {
            if !path.is_empty() {
                path.push('.');
            }
            path.push_str(word);
        }
        let message = match suggest(word, candidates.iter().copied()) {
            Some(s) if what == "field" => format!("unknown field, did you mean `{s}`?"),
            Some(s) => format!("unknown value `{word}`, did you mean `{s}`?"),
            None if what == "field" => format!("unknown field{expected}"),
            None => message,
        };
        return (path, message);
    }
    (path, message)
}

/// The candidate closest to `word`, when it is close enough to be a typo
/// (optimal string alignment distance, so a swap of two letters counts one).
pub(crate) fn suggest<'a>(
    word: &str,
    candidates: impl Iterator<Item = &'a str>,
) -> Option<&'a str> {
    let limit = 1 + word.chars().count() / 4;
    candidates
        .map(|c| (strsim::osa_distance(&word.to_ascii_lowercase(), c), c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// Makes located errors for problems found after parsing, whose paths are looked
/// up in the text.
pub(crate) struct Locator<'a> {
    pub file: &'a str,
    pub text: &'a str,
}

impl Locator<'_> {
    /// An error at the line of `path`, or of its nearest ancestor the text has.
    pub fn error(&self, path: &str, message: impl Into<String>) -> SpecError {
        let (line, column) = locate(self.text, path);
        SpecError {
            file: self.file.to_owned(),
            line,
            column: Some(column),
            path: path.to_owned(),
            message: message.into(),
        }
    }

    /// The line of `path` (see [`locate`]).
    pub fn line(&self, path: &str) -> usize {
        locate(self.text, path).0
    }

    /// All of `problems` (path, message) as errors sorted by line.
    pub fn errors(&self, problems: Vec<(String, String)>) -> SpecErrors {
        let mut errors: Vec<SpecError> = problems
            .into_iter()
            .map(|(path, message)| self.error(&path, message))
            .collect();
        errors.sort_by_key(|e| (e.line, e.column));
        SpecErrors(errors)
    }
}

/// The line and column of a field path (`environments[1].service.listener.addr`)
/// in YAML text: of its key when the last step is a key, of the item when it is an
/// index. When the text lacks the field (a default), the nearest ancestor it has;
/// (1, 1) at worst.
///
/// The YAML parser is asked, not a second one: a probe walks the document along
/// the path and fails on purpose at the field's value, and serde_yaml_ng's error
/// carries the value's position; the key is then found on the text between the
/// start of the mapping holding it and its value.
pub(crate) fn locate(text: &str, path: &str) -> (usize, usize) {
    let steps = split_path(path);
    for n in (0..=steps.len()).rev() {
        let steps = &steps[..n];
        let Some(value) = probe(text, steps) else {
            continue;
        };
        let Some((Step::Key(key), parent)) = steps.split_last() else {
            return value;
        };
        let from = probe(text, parent).unwrap_or((1, 1));
        return find_key(text, key, from, value).unwrap_or(value);
    }
    (1, 1)
}

#[derive(Clone, Debug, PartialEq)]
enum Step {
    Key(String),
    Index(usize),
}

fn split_path(path: &str) -> Vec<Step> {
    let mut steps = Vec::new();
    for part in path.split('.').filter(|p| !p.is_empty()) {
        let (key, mut indexes) = match part.find('[') {
            Some(i) => (&part[..i], &part[i..]),
            None => (part, ""),
        };
        if !key.is_empty() {
            steps.push(Step::Key(key.to_owned()));
        }
        while let Some(rest) = indexes.strip_prefix('[') {
            let Some((n, tail)) = rest.split_once(']') else {
                break;
            };
            if let Ok(n) = n.parse() {
                steps.push(Step::Index(n));
            }
            indexes = tail;
        }
    }
    steps
}

/// The last `key:` at or after `from` and before `to` (line, column).
fn find_key(
    text: &str,
    key: &str,
    from: (usize, usize),
    to: (usize, usize),
) -> Option<(usize, usize)> {
    let mut found = None;
    for (n, line) in text.lines().enumerate() {
        let ln = n + 1;
        if ln < from.0 || ln > to.0 {
            continue;
        }
        let mut start = 0;
        while let Some(i) = line[start..].find(key) {
            let at = start + i;
            start = at + key.len();
            let col = at + 1;
            if (ln == from.0 && col < from.1) || (ln == to.0 && col > to.1) {
                continue;
            }
            let before = at.checked_sub(1).map(|b| line.as_bytes()[b]);
            let before_ok = before.is_none_or(|b| !is_key_char(b));
            let after = line[at + key.len()..].trim_start_matches(['"', '\'']);
            if before_ok && after.trim_start().starts_with(':') {
                found = Some((ln, col));
            }
        }
    }
    found
}

fn is_key_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'-'
}

/// The error text the probe fails with at its target.
const HERE: &str = "\u{0}hoist-locate-here";

/// The position of the value at `steps`, if the document has it.
fn probe(text: &str, steps: &[Step]) -> Option<(usize, usize)> {
    let de = serde_yaml_ng::Deserializer::from_str(text);
    match Probe(steps).deserialize(de) {
        Ok(()) => None,
        Err(e) if e.to_string().contains(HERE) => e.location().map(|l| (l.line(), l.column())),
        Err(_) => None,
    }
}

struct Probe<'a>(&'a [Step]);

impl<'de> DeserializeSeed<'de> for Probe<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        if self.0.is_empty() {
            d.deserialize_any(Here)
        } else {
            d.deserialize_any(self)
        }
    }
}

impl<'de> Visitor<'de> for Probe<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any YAML value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let want = match self.0.first() {
            Some(Step::Key(k)) => Some(k.as_str()),
            _ => None,
        };
        while let Some(key) = map.next_key::<String>()? {
            if want == Some(key.as_str()) {
                map.next_value_seed(Probe(&self.0[1..]))?;
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let want = match self.0.first() {
            Some(Step::Index(i)) => Some(*i),
            _ => None,
        };
        let mut i = 0;
        loop {
            let more = if want == Some(i) {
                seq.next_element_seed(Probe(&self.0[1..]))?.is_some()
            } else {
                seq.next_element::<IgnoredAny>()?.is_some()
            };
            if !more {
                return Ok(());
            }
            i += 1;
        }
    }

    fn visit_bool<E: serde::de::Error>(self, _: bool) -> Result<(), E> {
        Ok(())
    }

    fn visit_i64<E: serde::de::Error>(self, _: i64) -> Result<(), E> {
        Ok(())
    }

    fn visit_u64<E: serde::de::Error>(self, _: u64) -> Result<(), E> {
        Ok(())
    }

    fn visit_f64<E: serde::de::Error>(self, _: f64) -> Result<(), E> {
        Ok(())
    }

    fn visit_str<E: serde::de::Error>(self, _: &str) -> Result<(), E> {
        Ok(())
    }

    fn visit_unit<E: serde::de::Error>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_none<E: serde::de::Error>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }

    fn visit_enum<A: serde::de::EnumAccess<'de>>(self, _: A) -> Result<(), A::Error> {
        Ok(())
    }
}

/// Fails, whatever the value, so that the parser tells where the value is.
struct Here;

impl<'de> Visitor<'de> for Here {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any YAML value")
    }

    fn visit_map<A: MapAccess<'de>>(self, _: A) -> Result<(), A::Error> {
        Err(serde::de::Error::custom(HERE))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, _: A) -> Result<(), A::Error> {
        Err(serde::de::Error::custom(HERE))
    }

    fn visit_bool<E: serde::de::Error>(self, _: bool) -> Result<(), E> {
        Err(E::custom(HERE))
    }

    fn visit_i64<E: serde::de::Error>(self, _: i64) -> Result<(), E> {
        Err(E::custom(HERE))
    }

    fn visit_u64<E: serde::de::Error>(self, _: u64) -> Result<(), E> {
        Err(E::custom(HERE))
    }

    fn visit_f64<E: serde::de::Error>(self, _: f64) -> Result<(), E> {
        Err(E::custom(HERE))
    }

    fn visit_str<E: serde::de::Error>(self, _: &str) -> Result<(), E> {
        Err(E::custom(HERE))
    }

    fn visit_unit<E: serde::de::Error>(self) -> Result<(), E> {
        Err(E::custom(HERE))
    }

    fn visit_none<E: serde::de::Error>(self) -> Result<(), E> {
        Err(E::custom(HERE))
    }

    fn visit_some<D: Deserializer<'de>>(self, _: D) -> Result<(), D::Error> {
        Err(serde::de::Error::custom(HERE))
    }

    fn visit_enum<A: serde::de::EnumAccess<'de>>(self, _: A) -> Result<(), A::Error> {
        Err(serde::de::Error::custom(HERE))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const TEXT: &str = "# a comment\napp: web\nenvironments:\n  - name: dev\n    service:\n      count: 2\n      listener:\n        addr: 127.0.0.1:1\n  - name: prod\n    approval: manual\n    service: {count: 3,\n       listener: {addr: \"127.0.0.1:2\", path: /a}}\n";

    #[test]
    fn paths_are_found_in_block_and_flow_style() {
        let at = |p: &str| locate(TEXT, p);
        assert_eq!(at("app"), (2, 1));
        assert_eq!(at("environments"), (3, 1));
        assert_eq!(at("environments[0]"), (4, 5));
        assert_eq!(at("environments[1].name"), (9, 5));
        assert_eq!(at("environments[1].approval"), (10, 5));
        assert_eq!(at("environments[0].service"), (5, 5));
        assert_eq!(at("environments[0].service.listener.addr"), (8, 9));
        assert_eq!(at("environments[1].service.count"), (11, 15));
        assert_eq!(at("environments[1].service.listener.path"), (12, 40));
        // Absent fields: the nearest ancestor the file has.
        assert_eq!(at("environments[0].service.listener.path"), (7, 7));
        assert_eq!(at("environments[0].strategy"), (4, 5));
        assert_eq!(at("environments[7].name"), (3, 1));
        // Not there at all: the document.
        assert_eq!(at("notifications"), (2, 1));
    }

    #[test]
    fn close_names_are_suggested() {
        let names = ["name", "approval", "environments", "env", "pre_build"];
        let s = |w: &str| suggest(w, names.iter().copied());
        assert_eq!(s("aproval"), Some("approval"));
        assert_eq!(s("enviroments"), Some("environments"));
        assert_eq!(s("evn"), Some("env"));
        assert_eq!(s("prebuild"), Some("pre_build"));
        assert_eq!(s("colour"), None);
    }
}
