//! [`Val`]: a JSON-like value where every node knows its 1-based line, built from
//! JSON text (via `jsonc-parser`, which keeps byte ranges) or from an HCL
//! expression (via `hcl-edit` spans). The ECS and IAM rules read this one shape,
//! whether the policy was written as `jsonencode({...})`, a heredoc or a file.

use hcl::edit::expr::{Expression, ObjectKey};
use hcl::edit::Span;
use jsonc_parser::ast::{ObjectPropName, Value as JsonValue};

use crate::line_of;

/// A value with its line.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Val {
    /// 1-based line where the value starts.
    pub line: usize,
    /// The value.
    pub kind: Kind,
}

/// What a [`Val`] holds.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Kind {
    Null,
    Bool(bool),
    /// A number, as written.
    Num(String),
    Str(String),
    Arr(Vec<Val>),
    /// Entries in order: key, the key's line, value.
    Obj(Vec<(String, usize, Val)>),
    /// An expression that is not a literal (a variable, a reference, a function
    /// other than `jsonencode`...): never judged.
    Unknown,
}

impl Val {
    pub fn get(&self, key: &str) -> Option<&Val> {
        self.entry(key).map(|(_, v)| v)
    }

    /// The key's line and the value.
    pub fn entry(&self, key: &str) -> Option<(usize, &Val)> {
        match &self.kind {
            Kind::Obj(entries) => entries
                .iter()
                .find(|(k, _, _)| k == key)
                .map(|(_, l, v)| (*l, v)),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match &self.kind {
            Kind::Str(s) => Some(s),
            _ => None,
        }
    }

    /// The value as a boolean, accepting `"true"`/`"false"` strings as Terraform
    /// converts them.
    pub fn as_bool(&self) -> Option<bool> {
        match &self.kind {
            Kind::Bool(b) => Some(*b),
            Kind::Str(s) if s == "true" => Some(true),
            Kind::Str(s) if s == "false" => Some(false),
            _ => None,
        }
    }

    /// The value as a number, accepting numeric strings.
    pub fn as_i64(&self) -> Option<i64> {
        match &self.kind {
            Kind::Num(n) | Kind::Str(n) => n.trim().parse().ok(),
            _ => None,
        }
    }

    pub fn as_array(&self) -> Option<&[Val]> {
        match &self.kind {
            Kind::Arr(v) => Some(v),
            _ => None,
        }
    }

    /// A string or the strings of an array (IAM's `"Action": "x"` or `["x", ...]`),
    /// each with its line; non-strings are skipped.
    pub fn strings(&self) -> Vec<(&str, usize)> {
        match &self.kind {
            Kind::Str(s) => vec![(s.as_str(), self.line)],
            Kind::Arr(v) => v
                .iter()
                .filter_map(|e| e.as_str().map(|s| (s, e.line)))
                .collect(),
            _ => Vec::new(),
        }
    }

    /// The value, or the JSON it encodes when it is a string (a policy or
    /// container definitions passed as a JSON string). `None` for a string that
    /// is not JSON. Lines inside a string are those of the string itself.
    pub fn decoded(&self) -> Option<Val> {
        match &self.kind {
            Kind::Str(s) => {
                let mut v = parse_json(s, 0).ok()?;
                v.set_line(self.line);
                Some(v)
            }
            _ => Some(self.clone()),
        }
    }

    fn set_line(&mut self, line: usize) {
        self.line = line;
        match &mut self.kind {
            Kind::Arr(v) => v.iter_mut().for_each(|e| e.set_line(line)),
            Kind::Obj(v) => v.iter_mut().for_each(|(_, l, e)| {
                *l = line;
                e.set_line(line)
            }),
            _ => {}
        }
    }
}

/// A JSON syntax error with its 1-based position in the text parsed.
#[derive(Debug)]
pub(crate) struct JsonError {
    pub line: usize,
    pub column: usize,
    pub message: String,
}

/// Parses strict JSON; lines count from the start of `text` plus `first_line - 1`
/// (`first_line` 0 or 1 means the text starts the file).
pub(crate) fn parse_json(text: &str, first_line: usize) -> Result<Val, JsonError> {
    let options = jsonc_parser::ParseOptions {
        allow_comments: false,
        allow_loose_object_property_names: false,
        allow_trailing_commas: false,
    };
    let base = first_line.saturating_sub(1);
    let result = jsonc_parser::parse_to_ast(text, &Default::default(), &options).map_err(|e| {
        let range = e.range();
        let line = line_of(text, range.start);
        let line_start = text[..range.start.min(text.len())]
            .rfind('\n')
            .map_or(0, |i| i + 1);
        JsonError {
            line: base + line,
            column: text[line_start..range.start.min(text.len())]
                .chars()
                .count()
                + 1,
            message: e.kind().to_string(),
        }
    })?;
    let Some(value) = result.value else {
        return Err(JsonError {
            line: base + 1,
            column: 1,
            message: "no JSON value".into(),
        });
    };
    Ok(from_json(&value, text, base))
}

fn from_json(v: &JsonValue, text: &str, base: usize) -> Val {
    let line = |start: usize| base + line_of(text, start);
    match v {
        JsonValue::StringLit(s) => Val {
            line: line(s.range.start),
            kind: Kind::Str(s.value.to_string()),
        },
        JsonValue::NumberLit(n) => Val {
            line: line(n.range.start),
            kind: Kind::Num(n.value.to_string()),
        },
        JsonValue::BooleanLit(b) => Val {
            line: line(b.range.start),
            kind: Kind::Bool(b.value),
        },
        JsonValue::NullKeyword(n) => Val {
            line: line(n.range.start),
            kind: Kind::Null,
        },
        JsonValue::Array(a) => Val {
            line: line(a.range.start),
            kind: Kind::Arr(
                a.elements
                    .iter()
                    .map(|e| from_json(e, text, base))
                    .collect(),
            ),
        },
        JsonValue::Object(o) => Val {
            line: line(o.range.start),
            kind: Kind::Obj(
                o.properties
                    .iter()
                    .map(|p| {
                        let key = match &p.name {
                            ObjectPropName::String(s) => s.value.to_string(),
                            ObjectPropName::Word(w) => w.value.to_string(),
                        };
                        (key, line(p.range.start), from_json(&p.value, text, base))
                    })
                    .collect(),
            ),
        },
    }
}

/// Converts an HCL expression; `src` is the whole file (spans index into it).
pub(crate) fn from_hcl(expr: &Expression, src: &str) -> Val {
    let line = expr.span().map_or(0, |s| line_of(src, s.start));
    let kind = match expr {
        Expression::Null(_) => Kind::Null,
        Expression::Bool(b) => Kind::Bool(*b.value()),
        Expression::Number(n) => Kind::Num(n.value().to_string()),
        Expression::String(s) => Kind::Str(s.value().to_string()),
        Expression::Parenthesis(p) => return from_hcl(p.inner(), src),
        Expression::Array(a) => Kind::Arr(a.iter().map(|e| from_hcl(e, src)).collect()),
        Expression::Object(o) => Kind::Obj(
            o.iter()
                .filter_map(|(k, v)| {
                    let (name, span) = match k {
                        ObjectKey::Ident(i) => (i.value().to_string(), i.span()),
                        ObjectKey::Expression(e) => match e {
                            Expression::String(s) => (s.value().to_string(), s.span()),
                            _ => return None,
                        },
                    };
                    let kline = span.map_or(line, |s| line_of(src, s.start));
                    Some((name, kline, from_hcl(v.expr(), src)))
                })
                .collect(),
        ),
        Expression::FuncCall(f) if f.name.name.value().as_str() == "jsonencode" => {
            match f.args.iter().next() {
                Some(arg) => return from_hcl(arg, src),
                None => Kind::Unknown,
            }
        }
        Expression::HeredocTemplate(h) => match h.template.span() {
            Some(span) => {
                let body = blank_interpolations(&src[span.clone()]);
                match parse_json(&body, line_of(src, span.start)) {
                    Ok(v) => return v,
                    // Not JSON: keep the text (with interpolations blanked).
                    Err(_) => Kind::Str(body),
                }
            }
            None => Kind::Unknown,
        },
        Expression::StringTemplate(_) => Kind::Unknown,
        _ => Kind::Unknown,
    };
    Val { line, kind }
}

/// Replaces each `${...}` outside JSON strings with `null` padded with spaces
/// (newlines kept), so interpolated heredoc JSON parses and keeps its offsets.
/// Inside JSON strings an interpolation is plain text and left alone.
fn blank_interpolations(body: &str) -> String {
    let bytes = body.as_bytes();
    let mut out = String::with_capacity(body.len());
    let mut in_string = false;
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        if in_string {
            if c == b'\\' && i + 1 < bytes.len() {
                out.push_str(&body[i..i + 2]);
                i += 2;
                continue;
            }
            if c == b'"' {
                in_string = false;
            }
        } else if c == b'"' {
            in_string = true;
        } else if c == b'$' && bytes.get(i + 1) == Some(&b'{') {
            let mut depth = 0;
            let mut j = i + 1;
            while j < bytes.len() {
                match bytes[j] {
                    b'{' => depth += 1,
                    b'}' => {
                        depth -= 1;
                        if depth == 0 {
                            break;
                        }
                    }
                    _ => {}
                }
                j += 1;
            }
            let end = (j + 1).min(bytes.len());
            let blanked: String = body[i..end]
                .chars()
                .enumerate()
                .map(|(n, ch)| match (n, ch) {
                    (_, '\n') => '\n',
                    (0, _) => 'n',
                    (1, _) => 'u',
                    (2, _) => 'l',
                    (3, _) => 'l',
                    _ => ' ',
                })
                .collect();
            out.push_str(&blanked);
            i = end;
            continue;
        }
        let ch_len = body[i..].chars().next().map_or(1, char::len_utf8);
        out.push_str(&body[i..i + ch_len]);
        i += ch_len;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_lines() {
        let v = parse_json(
            "{\n  \"a\": [\n    {\"b\": true}\n  ],\n  \"c\": \"x\"\n}",
            10,
        )
        .unwrap();
        assert_eq!(v.line, 10);
        assert_eq!(v.entry("c").map(|(l, _)| l), Some(14));
        let a = v.get("a").unwrap().as_array().unwrap();
        assert_eq!(
            a[0].entry("b").map(|(l, b)| (l, b.as_bool())),
            Some((12, Some(true)))
        );
    }

    #[test]
    fn json_errors_have_positions() {
        let e = parse_json("{\n  \"a\": 1,\n}", 1).unwrap_err();
        assert_eq!((e.line, e.column), (2, 9), "{e:?}");
    }

    #[test]
    fn interpolations_blanked_outside_strings() {
        assert_eq!(
            blank_interpolations("{\"cpu\": ${var.cpu}, \"img\": \"${var.i}\"}"),
            "{\"cpu\": null      , \"img\": \"${var.i}\"}"
        );
        let v = parse_json(&blank_interpolations("[${x}]"), 1).unwrap();
        assert_eq!(v.as_array().unwrap()[0].kind, Kind::Null);
    }

    #[test]
    fn hcl_expressions() {
        let src = "a = jsonencode({\n  Version = \"1\"\n  \"Statement\" = [{ Effect = \"Allow\" }]\n})\nb = <<EOF\n{\n  \"x\": ${var.y}\n}\nEOF\nc = var.z\n";
        let body = hcl::edit::parser::parse_body(src).unwrap();
        let get = |k: &str| from_hcl(&body.get_attribute(k).unwrap().value, src);
        let a = get("a");
        assert_eq!(a.entry("Version").map(|(l, _)| l), Some(2));
        assert_eq!(a.get("Statement").unwrap().line, 3);
        let b = get("b");
        assert_eq!(b.line, 6);
        assert_eq!(
            b.entry("x").map(|(l, v)| (l, v.kind.clone())),
            Some((7, Kind::Null))
        );
        assert_eq!(get("c").kind, Kind::Unknown);
    }
}
