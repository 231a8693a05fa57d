//! Terraform rules (`HL-TF-*`, and `HL-ECS-*` for `aws_ecs_task_definition`).
//!
//! The file is parsed with `hcl::edit` (hcl-rs's own parser), which keeps a byte
//! span for every block, attribute and expression; a finding's line is the line
//! of the attribute, list element or object key it is about, or the block header
//! when something is missing. Only top-level `resource` and `data` blocks are
//! read, and only literal values are judged: `var.*`, `local.*` and resource
//! references are unknown and never flagged. A policy given as
//! `data.aws_iam_policy_document.<name>.json` is looked up in the same file.
//! `dynamic` blocks and modules are not expanded.

use std::collections::HashMap;
use std::path::Path;

use hcl::edit::expr::Expression;
use hcl::edit::structure::{Block, Body};
use hcl::edit::Span;

use crate::ecs;
use crate::located::{from_hcl, Kind, Val};
use crate::rules::*;
use crate::{line_of, LintError, Raw};

/// Ports that must not be open to the internet: remote administration and
/// databases/caches.
const ADMIN_PORTS: &[(u16, &str)] = &[
    (22, "SSH"),
    (23, "Telnet"),
    (1433, "SQL Server"),
    (1521, "Oracle"),
    (2375, "Docker API"),
    (2376, "Docker API"),
    (3306, "MySQL"),
    (3389, "RDP"),
    (5432, "PostgreSQL"),
    (5900, "VNC"),
    (5984, "CouchDB"),
    (6379, "Redis"),
    (9042, "Cassandra"),
    (9200, "Elasticsearch"),
    (11211, "Memcached"),
    (27017, "MongoDB"),
];

pub(crate) fn check(path: &Path, text: &str) -> Result<Vec<Raw>, LintError> {
    let body = hcl::edit::parser::parse_body(text).map_err(|e| LintError::Syntax {
        path: path.to_path_buf(),
        line: e.location().line(),
        column: e.location().column(),
        message: e.message().to_string(),
    })?;
    let mut data: HashMap<(String, String), &Block> = HashMap::new();
    for b in body.blocks() {
        if let ("data", [t, n]) = (b.ident.value().as_str(), b.labels.as_slice()) {
            data.insert((t.as_str().to_string(), n.as_str().to_string()), b);
        }
    }
    let mut c = Checker {
        src: text,
        data,
        out: Vec::new(),
    };
    for b in body.blocks() {
        let (kind, ty) = match (b.ident.value().as_str(), b.labels.first()) {
            (k @ ("resource" | "data"), Some(t)) => (k, t.as_str()),
            _ => continue,
        };
        let start = c.out.len();
        c.block(kind, ty, b);
        let header = c.line(b.span());
        for r in &mut c.out[start..] {
            r.block_line = Some(header);
        }
    }
    Ok(c.out)
}

struct Checker<'a> {
    src: &'a str,
    data: HashMap<(String, String), &'a Block>,
    out: Vec<Raw>,
}

impl<'a> Checker<'a> {
    fn line(&self, span: Option<std::ops::Range<usize>>) -> usize {
        span.map_or(1, |s| line_of(self.src, s.start))
    }

    /// An attribute's line and value.
    fn attr(&self, body: &Body, key: &str) -> Option<(usize, Val)> {
        body.get_attribute(key)
            .map(|a| (self.line(a.span()), from_hcl(&a.value, self.src)))
    }

    fn flag(&mut self, rule: &'static Rule, line: usize, message: impl Into<String>) {
        self.out.push(Raw::new(rule, line, message));
    }

    fn block(&mut self, kind: &str, ty: &str, b: &'a Block) {
        let name = b.labels.get(1).map_or("?", |l| l.as_str());
        let what = format!("{ty}.{name}");
        let header = self.line(b.span());
        match (kind, ty) {
            ("resource", "aws_ecr_repository") => self.ecr_repository(&what, header, &b.body),
            ("resource", "aws_ecr_repository_policy") => {
                if let Some((_, policy)) = self.attr(&b.body, "policy") {
                    self.public_principal(&what, &policy, &b.body);
                }
            }
            (
                "resource",
                "aws_iam_policy"
                | "aws_iam_role_policy"
                | "aws_iam_user_policy"
                | "aws_iam_group_policy",
            ) => {
                if let Some((_, policy)) = self.attr(&b.body, "policy") {
                    self.iam_json(&what, &policy);
                }
            }
            ("resource", "aws_iam_role") => {
                for inline in b.body.get_blocks("inline_policy") {
                    if let Some((_, policy)) = self.attr(&inline.body, "policy") {
                        self.iam_json(&what, &policy);
                    }
                }
            }
            ("data", "aws_iam_policy_document") => self.iam_document(&what, &b.body),
            ("resource", "aws_ecs_task_definition") => {
                if let Some((_, defs)) = self.attr(&b.body, "container_definitions") {
                    if let Some(defs) = defs.decoded() {
                        ecs::check_containers(&defs, &mut self.out);
                    }
                }
            }
            ("resource", "aws_security_group") => {
                for ingress in b.body.get_blocks("ingress") {
                    self.ingress(
                        &what,
                        &ingress.body,
                        "protocol",
                        &["cidr_blocks", "ipv6_cidr_blocks"],
                    );
                }
            }
            ("resource", "aws_security_group_rule")
                if self
                    .attr(&b.body, "type")
                    .is_some_and(|(_, t)| t.as_str() == Some("ingress")) =>
            {
                self.ingress(
                    &what,
                    &b.body,
                    "protocol",
                    &["cidr_blocks", "ipv6_cidr_blocks"],
                );
            }
            ("resource", "aws_vpc_security_group_ingress_rule") => {
                self.ingress(&what, &b.body, "ip_protocol", &["cidr_ipv4", "cidr_ipv6"]);
            }
            _ => {}
        }
    }

    fn ecr_repository(&mut self, what: &str, header: usize, body: &Body) {
        match self.attr(body, "image_tag_mutability") {
            None => self.flag(
                &TF_ECR_MUTABLE,
                header,
                format!("{what} does not set image_tag_mutability (default MUTABLE)"),
            ),
            Some((line, v)) => {
                if let Some(m) = v.as_str() {
                    if !m.starts_with("IMMUTABLE") {
                        self.flag(
                            &TF_ECR_MUTABLE,
                            line,
                            format!("{what} has image_tag_mutability {m:?}"),
                        );
                    }
                }
            }
        }

        match body.get_blocks("image_scanning_configuration").next() {
            None => self.flag(
                &TF_ECR_SCAN,
                header,
                format!("{what} has no image_scanning_configuration (scan on push off)"),
            ),
            Some(scan) => match self.attr(&scan.body, "scan_on_push") {
                None => self.flag(
                    &TF_ECR_SCAN,
                    self.line(scan.span()),
                    format!("{what} does not set scan_on_push"),
                ),
                Some((line, v)) if v.as_bool() == Some(false) => {
                    self.flag(&TF_ECR_SCAN, line, format!("{what} has scan_on_push false"))
                }
                Some(_) => {}
            },
        }

        match body.get_blocks("encryption_configuration").next() {
            None => self.flag(
                &TF_ECR_KMS,
                header,
                format!("{what} has no encryption_configuration (AES256 with an AWS-owned key)"),
            ),
            Some(enc) => match self.attr(&enc.body, "encryption_type") {
                None => self.flag(
                    &TF_ECR_KMS,
                    self.line(enc.span()),
                    format!("{what} does not set encryption_type (default AES256)"),
                ),
                Some((line, v)) => {
                    if let Some(t) = v.as_str() {
                        if !t.starts_with("KMS") {
                            self.flag(
                                &TF_ECR_KMS,
                                line,
                                format!("{what} has encryption_type {t:?}"),
                            );
                        }
                    }
                }
            },
        }
    }

    /// The data source a `data.aws_iam_policy_document.<name>.json` reference names.
    fn referenced_document(&self, body: &Body, key: &str) -> Option<&'a Block> {
        let attr = body.get_attribute(key)?;
        let Expression::Traversal(t) = &attr.value else {
            return None;
        };
        let root = t.expr.as_variable()?;
        if root.as_str() != "data" {
            return None;
        }
        let names: Vec<&str> = t
            .operators
            .iter()
            .filter_map(|op| match op.value() {
                hcl::edit::expr::TraversalOperator::GetAttr(i) => Some(i.value().as_str()),
                _ => None,
            })
            .collect();
        match names.as_slice() {
            [ty, name, "json"] => self.data.get(&(ty.to_string(), name.to_string())).copied(),
            _ => None,
        }
    }

    fn public_principal(&mut self, what: &str, policy: &Val, body: &Body) {
        if let Some(doc) = self.referenced_document(body, "policy") {
            for st in doc.body.get_blocks("statement") {
                let allow = self
                    .attr(&st.body, "effect")
                    .is_none_or(|(_, e)| e.as_str() == Some("Allow"));
                if !allow || st.body.get_blocks("condition").next().is_some() {
                    continue;
                }
                for p in st.body.get_blocks("principals") {
                    if let Some((_, ids)) = self.attr(&p.body, "identifiers") {
                        if let Some((_, line)) = ids.strings().into_iter().find(|(s, _)| *s == "*")
                        {
                            self.flag(
                                &TF_ECR_PUBLIC_POLICY,
                                line,
                                format!("{what} allows principal \"*\" (via {})", doc_name(doc)),
                            );
                        }
                    }
                }
            }
            return;
        }
        for st in &statements(policy) {
            if !is_allow(st) || st.get("Condition").is_some() {
                continue;
            }
            let Some((line, p)) = st.entry("Principal") else {
                continue;
            };
            let star = match &p.kind {
                Kind::Str(s) => s == "*",
                Kind::Obj(entries) => entries
                    .iter()
                    .any(|(_, _, v)| v.strings().iter().any(|(s, _)| *s == "*")),
                _ => false,
            };
            if star {
                self.flag(
                    &TF_ECR_PUBLIC_POLICY,
                    line,
                    format!("{what} allows principal \"*\" without a condition"),
                );
            }
        }
    }

    /// IAM JSON policy (`jsonencode`, heredoc or string).
    fn iam_json(&mut self, what: &str, policy: &Val) {
        for st in &statements(policy) {
            if !is_allow(st) {
                continue;
            }
            if let Some(a) = st.get("Action") {
                self.wildcard_actions(what, a);
            }
            if let Some(r) = st.get("Resource") {
                self.wildcard_resources(what, r);
            }
        }
    }

    fn iam_document(&mut self, what: &str, body: &Body) {
        for st in body.get_blocks("statement") {
            let allow = self
                .attr(&st.body, "effect")
                .is_none_or(|(_, e)| e.as_str() == Some("Allow"));
            if !allow {
                continue;
            }
            if let Some((_, a)) = self.attr(&st.body, "actions") {
                self.wildcard_actions(what, &a);
            }
            if let Some((_, r)) = self.attr(&st.body, "resources") {
                self.wildcard_resources(what, &r);
            }
        }
    }

    fn wildcard_actions(&mut self, what: &str, actions: &Val) {
        for (a, line) in actions.strings() {
            if a == "*" || a.split_once(':').is_some_and(|(_, verb)| verb == "*") {
                self.flag(
                    &TF_IAM_WILDCARD_ACTION,
                    line,
                    format!("{what} allows action {a:?}"),
                );
            }
        }
    }

    fn wildcard_resources(&mut self, what: &str, resources: &Val) {
        for (r, line) in resources.strings() {
            if r == "*" {
                self.flag(
                    &TF_IAM_WILDCARD_RESOURCE,
                    line,
                    format!("{what} allows on resource \"*\""),
                );
            }
        }
    }

    fn ingress(&mut self, what: &str, body: &Body, protocol_key: &str, cidr_keys: &[&str]) {
        let open: Vec<(String, usize)> = cidr_keys
            .iter()
            .filter_map(|k| self.attr(body, k))
            .flat_map(|(_, v)| {
                v.strings()
                    .into_iter()
                    .filter(|(s, _)| *s == "0.0.0.0/0" || *s == "::/0")
                    .map(|(s, l)| (s.to_string(), l))
                    .collect::<Vec<_>>()
            })
            .collect();
        if open.is_empty() {
            return;
        }
        let Some(protocol) = self
            .attr(body, protocol_key)
            .and_then(|(_, p)| match p.kind {
                Kind::Str(s) | Kind::Num(s) => Some(s.to_ascii_lowercase()),
                _ => None,
            })
        else {
            return;
        };
        let ports = match protocol.as_str() {
            "-1" | "all" => "all ports".to_string(),
            "tcp" | "6" => {
                let port = |k: &str| self.attr(body, k).and_then(|(_, v)| v.as_i64());
                let (Some(from), Some(to)) = (port("from_port"), port("to_port")) else {
                    return;
                };
                if from <= 0 && to >= 65535 || from == -1 {
                    "all ports".to_string()
                } else {
                    let hit: Vec<String> = ADMIN_PORTS
                        .iter()
                        .filter(|(p, _)| from <= i64::from(*p) && i64::from(*p) <= to)
                        .map(|(p, n)| format!("{p} ({n})"))
                        .collect();
                    if hit.is_empty() {
                        return;
                    }
                    format!("port {}", hit.join(", "))
                }
            }
            _ => return,
        };
        for (cidr, line) in open {
            self.flag(
                &TF_SG_OPEN_ADMIN,
                line,
                format!("{what} allows ingress from {cidr} to {ports}"),
            );
        }
    }
}

fn doc_name(b: &Block) -> String {
    format!(
        "data.aws_iam_policy_document.{}",
        b.labels.get(1).map_or("?", |l| l.as_str())
    )
}

fn is_allow(statement: &Val) -> bool {
    statement.get("Effect").and_then(Val::as_str) == Some("Allow")
}

/// A policy document's statements (`Statement` may be one object or a list).
fn statements(policy: &Val) -> Vec<Val> {
    let Some(doc) = policy.decoded() else {
        return Vec::new();
    };
    match doc.get("Statement") {
        Some(Val {
            kind: Kind::Arr(v), ..
        }) => v.clone(),
        Some(
            v @ Val {
                kind: Kind::Obj(_), ..
            },
        ) => vec![v.clone()],
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(text: &str) -> Vec<(&'static str, usize)> {
        let mut v: Vec<_> = check(Path::new("main.tf"), text)
            .unwrap()
            .iter()
            .map(|r| (r.rule.id, r.line))
            .collect();
        v.sort();
        v
    }

    #[test]
    fn syntax_errors_have_a_line() {
        let e = check(Path::new("x.tf"), "resource \"a\" \"b\" {\n  x = \n}\n").unwrap_err();
        assert!(matches!(e, LintError::Syntax { .. }), "{e}");
    }

    #[test]
    fn unknown_values_are_not_judged() {
        let t = r#"
resource "aws_ecr_repository" "r" {
  image_tag_mutability = var.mutability
  image_scanning_configuration { scan_on_push = var.scan }
  encryption_configuration { encryption_type = local.enc }
}
resource "aws_security_group_rule" "r" {
  type        = "ingress"
  from_port   = var.port
  to_port     = var.port
  protocol    = "tcp"
  cidr_blocks = ["0.0.0.0/0"]
}
"#;
        assert_eq!(ids(t), vec![]);
    }

    #[test]
    fn port_ranges() {
        let t = r#"
resource "aws_security_group" "web" {
  ingress {
    from_port   = 80
    to_port     = 443
    protocol    = "tcp"
    cidr_blocks = ["0.0.0.0/0"]
  }
  ingress {
    from_port        = 3000
    to_port          = 3400
    protocol         = "tcp"
    ipv6_cidr_blocks = ["::/0"]
  }
  ingress {
    from_port   = 0
    to_port     = 0
    protocol    = "-1"
    cidr_blocks = ["10.0.0.0/8", "0.0.0.0/0"]
  }
}
"#;
        assert_eq!(ids(t), vec![("HL-TF-007", 13), ("HL-TF-007", 19)]);
    }
}
