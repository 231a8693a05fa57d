//! Ruby gems: installed specifications (`specifications/*.gemspec`) and
//! `Gemfile.lock`.
//!
//! Gemspecs are Ruby; this reads the assignments RubyGems writes when it installs a
//! gem (`s.name = "rake".freeze`, `s.version = "13.0.6"`, `s.licenses = ["MIT".freeze]`,
//! and the `%q{...}` quoting of older RubyGems), whatever the block variable is
//! called, with the `# stub: name version` comment as a fallback. It does not run
//! Ruby: a hand-written gemspec that computes its version is not understood.

use std::path::Path;

use super::{fail, package, text, LangError};
use crate::package::{Package, PackageKind};

/// Parse a `Gemfile.lock` (by file name) or else an installed gemspec.
pub fn parse(path: &Path, data: &[u8]) -> Result<Vec<Package>, LangError> {
    match path.file_name().and_then(|n| n.to_str()) {
        Some("Gemfile.lock") => parse_gemfile_lock(path, data),
        _ => parse_gemspec(path, data),
    }
}

/// The first string literal in `s`: `"x"`, `'x'`, `%q{x}`, `%q(x)`, `%q[x]`, `%q<x>`
/// (a `Gem::Version.new(...)` wrapper is looked through).
fn string_literal(s: &str) -> Option<&str> {
    let s = s.trim_start();
    let s = s
        .strip_prefix("Gem::Version.new(")
        .map(str::trim_start)
        .unwrap_or(s);
    if let Some(rest) = s.strip_prefix(['%']) {
        let rest = rest.strip_prefix(['q', 'Q']).unwrap_or(rest);
        let mut chars = rest.chars();
        let open = chars.next()?;
        let close = match open {
            '{' => '}',
            '(' => ')',
            '[' => ']',
            '<' => '>',
            c => c,
        };
        let body = rest.get(open.len_utf8()..)?;
        return body.get(..body.find(close)?);
    }
    let quote = s.chars().next().filter(|c| *c == '"' || *c == '\'')?;
    let body = s.get(1..)?;
    body.get(..body.find(quote)?)
}

/// All string literals in `s` (for `licenses = ["MIT".freeze, "Ruby".freeze]`).
fn string_literals(mut s: &str) -> Vec<String> {
    let mut out = Vec::new();
    while let Some(i) = s.find(['"', '\'']) {
        let Some(rest) = s.get(i..) else { break };
        let Some(lit) = string_literal(rest) else {
            break;
        };
        out.push(lit.to_string());
        s = rest.get(lit.len() + 2..).unwrap_or("");
    }
    out
}

/// The value assigned to `<var>.<field>` on this line, if the line is one.
fn assignment<'a>(line: &'a str, field: &str) -> Option<&'a str> {
    let line = line.trim_start();
    let dot = line.find('.')?;
    let (var, rest) = (line.get(..dot)?, line.get(dot + 1..)?);
    if var.is_empty() || !var.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return None;
    }
    let rest = rest.strip_prefix(field)?.trim_start();
    let value = rest.strip_prefix('=')?;
    (!value.starts_with('=')).then_some(value)
}

/// An installed gemspec: name, version and licenses.
pub fn parse_gemspec(path: &Path, data: &[u8]) -> Result<Vec<Package>, LangError> {
    let s = String::from_utf8_lossy(data);
    let mut name = None;
    let mut version = None;
    let mut licenses = Vec::new();
    let mut stub = None;
    for line in s.lines() {
        if let Some(rest) = line.trim_start().strip_prefix("# stub:") {
            let mut words = rest.split_whitespace();
            if let (Some(n), Some(v)) = (words.next(), words.next()) {
                stub = Some((n.to_string(), v.to_string()));
            }
        }
        if name.is_none() {
            name = assignment(line, "name")
                .and_then(string_literal)
                .map(str::to_string);
        }
        if version.is_none() {
            version = assignment(line, "version")
                .and_then(string_literal)
                .map(str::to_string);
        }
        if licenses.is_empty() {
            if let Some(v) = assignment(line, "licenses").or_else(|| assignment(line, "license")) {
                licenses = string_literals(v);
            }
        }
    }
    let (name, version) = match (name, version, stub) {
        (Some(n), Some(v), _) => (n, v),
        (_, _, Some((n, v))) => (n, v),
        _ => {
            return Err(fail(
                path,
                None,
                "gemspec has no name or version assignment",
            ))
        }
    };
    if name.is_empty() || version.is_empty() {
        return Err(fail(path, None, "gemspec has an empty name or version"));
    }
    Ok(vec![package(
        PackageKind::Gem,
        name,
        version,
        licenses,
        path,
    )])
}

/// `Gemfile.lock`: the gems under `specs:` in the `GEM` and `GIT` sections (not
/// `PATH`, the project's own). A platform suffix (`1.13.10-x86_64-linux`) is dropped
/// from the version.
pub fn parse_gemfile_lock(path: &Path, data: &[u8]) -> Result<Vec<Package>, LangError> {
    let s = text(path, data)?;
    let mut out = Vec::new();
    let mut section = "";
    let mut in_specs = false;
    for (i, line) in s.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        if !line.starts_with(' ') {
            section = line.trim();
            in_specs = false;
            continue;
        }
        if line.trim() == "specs:" {
            in_specs = true;
            continue;
        }
        if !in_specs || !matches!(section, "GEM" | "GIT") {
            continue;
        }
        // Gems at four spaces; their dependencies at six.
        let indent = line.len() - line.trim_start().len();
        if indent != 4 {
            continue;
        }
        let spec = line.trim();
        let (name, rest) = spec
            .split_once(' ')
            .ok_or_else(|| fail(path, Some(i + 1), "expected 'name (version)'"))?;
        let version = rest
            .trim()
            .strip_prefix('(')
            .and_then(|v| v.strip_suffix(')'))
            .ok_or_else(|| fail(path, Some(i + 1), "expected 'name (version)'"))?;
        let version = version.split('-').next().unwrap_or(version);
        if name.is_empty() || version.is_empty() {
            return Err(fail(path, Some(i + 1), "empty gem name or version"));
        }
        out.push(package(PackageKind::Gem, name, version, Vec::new(), path));
    }
    Ok(super::dedupe(out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lang::test_support::nv;

    #[test]
    fn installed_gemspec() {
        let data = br#"# -*- encoding: utf-8 -*-
# stub: rake 13.0.6 ruby lib

Gem::Specification.new do |s|
  s.name = "rake".freeze
  s.version = "13.0.6"

  s.required_rubygems_version = Gem::Requirement.new(">= 1.3.2".freeze) if s.respond_to? :required_rubygems_version=
  s.metadata = { "bug_tracker_uri" => "https://github.com/ruby/rake/issues" } if s.respond_to? :metadata=
  s.require_paths = ["lib".freeze]
  s.authors = ["Hiroshi SHIBATA".freeze, "Eric Hodel".freeze]
  s.licenses = ["MIT".freeze]
  s.rubygems_version = "3.3.5".freeze
end
"#;
        let p = parse_gemspec(
            Path::new("usr/lib/ruby/gems/3.1.0/specifications/rake-13.0.6.gemspec"),
            data,
        )
        .unwrap();
        assert_eq!(nv(&p), [("rake", "13.0.6")]);
        assert_eq!(p[0].licenses, ["MIT"]);
    }

    #[test]
    fn old_gemspec_forms() {
        let data = b"Gem::Specification.new do |spec|\n  spec.name = %q{json}\n  spec.version = Gem::Version.new('2.1.0')\n  spec.license = 'Ruby'\nend\n";
        let p = parse_gemspec(Path::new("specifications/json.gemspec"), data).unwrap();
        assert_eq!(nv(&p), [("json", "2.1.0")]);
        assert_eq!(p[0].licenses, ["Ruby"]);
        // Only the stub comment.
        let p = parse_gemspec(Path::new("s"), b"# stub: bundler 2.4.10 ruby lib\nGem::Specification.new do |s|\n  s.name = NAME\nend\n").unwrap();
        assert_eq!(nv(&p), [("bundler", "2.4.10")]);
        assert!(parse_gemspec(Path::new("s"), b"nothing here").is_err());
    }

    #[test]
    fn gemfile_lock_specs() {
        let data = b"GIT\n  remote: https://example.org/forked.git\n  revision: abc\n  specs:\n    forked (0.2.0)\n\nPATH\n  remote: .\n  specs:\n    myapp (1.0.0)\n\nGEM\n  remote: https://rubygems.org/\n  specs:\n    actioncable (7.0.4)\n      actionpack (= 7.0.4)\n    nokogiri (1.13.10-x86_64-linux)\n      racc (~> 1.4)\n    racc (1.6.2)\n\nPLATFORMS\n  x86_64-linux\n\nDEPENDENCIES\n  nokogiri\n\nBUNDLED WITH\n   2.4.10\n";
        let p = parse_gemfile_lock(Path::new("Gemfile.lock"), data).unwrap();
        assert_eq!(
            nv(&p),
            [
                ("forked", "0.2.0"),
                ("actioncable", "7.0.4"),
                ("nokogiri", "1.13.10"),
                ("racc", "1.6.2")
            ]
        );
        let err = parse_gemfile_lock(Path::new("Gemfile.lock"), b"GEM\n  specs:\n    broken\n")
            .unwrap_err();
        assert!(
            matches!(err, LangError::Parse { line: Some(3), .. }),
            "{err}"
        );
    }
}
