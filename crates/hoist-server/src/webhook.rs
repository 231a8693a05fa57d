//! Push webhooks: GitHub's (`X-Hub-Signature-256`, an HMAC-SHA256 of the body,
//! checked in constant time) and GitLab's (`X-Gitlab-Token`, the shared secret,
//! compared in constant time), and the one thing hoist takes from either: a push
//! of a commit to a branch of a repository.

use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Whether `header` (`sha256=<hex>`) is GitHub's signature of `body` with `secret`.
pub fn github_signature_ok(secret: &[u8], body: &[u8], header: Option<&str>) -> bool {
    let Some(hex_sig) = header.and_then(|h| h.trim().strip_prefix("sha256=")) else {
        return false;
    };
    let Ok(sig) = hex::decode(hex_sig) else {
        return false;
    };
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret) else {
        return false;
    };
    mac.update(body);
    // verify_slice compares in constant time.
    mac.verify_slice(&sig).is_ok()
}

/// Whether `header` is the shared secret, compared in constant time (hashed
/// first, so that its length does not show either).
pub fn gitlab_token_ok(secret: &[u8], header: Option<&str>) -> bool {
    let Some(given) = header else {
        return false;
    };
    let a = Sha256::digest(secret);
    let b = Sha256::digest(given.as_bytes());
    bool::from(a.ct_eq(&b))
}

/// A push, as both forges describe it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Push {
    /// Names the repository goes by (`hello`, `acme/hello`).
    pub names: Vec<String>,
    /// URLs it is cloned from (HTTPS, SSH, git).
    pub urls: Vec<String>,
    /// The branch pushed to; `None` for a tag or another ref.
    pub branch: Option<String>,
    /// The commit the branch now points at.
    pub after: String,
    /// The branch was deleted (nothing to build).
    pub deleted: bool,
    /// Author of the head commit, `Name <email>`.
    pub author: Option<String>,
    /// First line of the head commit's message.
    pub message: Option<String>,
}

/// Why a webhook body is not a push hoist can act on.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct PayloadError(pub String);

fn text(v: &Value, path: &[&str]) -> Option<String> {
    let mut v = v;
    for p in path {
        v = v.get(p)?;
    }
    v.as_str().map(str::to_owned)
}

fn head(commit: Option<&Value>) -> (Option<String>, Option<String>) {
    let Some(c) = commit else {
        return (None, None);
    };
    let author = match (text(c, &["author", "name"]), text(c, &["author", "email"])) {
        (Some(n), Some(e)) => Some(format!("{n} <{e}>")),
        (n, _) => n,
    };
    let message = text(c, &["message"]).and_then(|m| m.lines().next().map(str::to_owned));
    (author, message)
}

fn is_zero(sha: &str) -> bool {
    !sha.is_empty() && sha.bytes().all(|b| b == b'0')
}

fn common(v: &Value, names: Vec<String>, urls: Vec<String>) -> Result<Push, PayloadError> {
    let git_ref = text(v, &["ref"]).ok_or_else(|| PayloadError("no \"ref\" in the push".into()))?;
    let after =
        text(v, &["after"]).ok_or_else(|| PayloadError("no \"after\" in the push".into()))?;
    if !is_zero(&after) && (after.len() < 40 || !after.bytes().all(|b| b.is_ascii_hexdigit())) {
        return Err(PayloadError(format!(
            "\"after\": {after:?} is not a commit id"
        )));
    }
    Ok(Push {
        names: names.into_iter().filter(|n| !n.is_empty()).collect(),
        urls: urls.into_iter().filter(|u| !u.is_empty()).collect(),
        branch: git_ref.strip_prefix("refs/heads/").map(str::to_owned),
        deleted: is_zero(&after) || v.get("deleted").and_then(Value::as_bool) == Some(true),
        after,
        author: None,
        message: None,
    })
}

/// GitHub's `push` event.
pub fn github_push(body: &[u8]) -> Result<Push, PayloadError> {
    let v: Value = serde_json::from_slice(body)
        .map_err(|e| PayloadError(format!("the body is not JSON: {e}")))?;
    let repo = v
        .get("repository")
        .ok_or_else(|| PayloadError("no \"repository\" in the push".into()))?;
    let field = |k: &str| text(repo, &[k]).unwrap_or_default();
    let mut push = common(
        &v,
        vec![field("name"), field("full_name")],
        vec![
            field("clone_url"),
            field("ssh_url"),
            field("git_url"),
            field("html_url"),
        ],
    )?;
    (push.author, push.message) = head(v.get("head_commit"));
    Ok(push)
}

/// GitLab's `Push Hook`.
pub fn gitlab_push(body: &[u8]) -> Result<Push, PayloadError> {
    let v: Value = serde_json::from_slice(body)
        .map_err(|e| PayloadError(format!("the body is not JSON: {e}")))?;
    let kind = text(&v, &["object_kind"]).unwrap_or_default();
    if kind != "push" {
        return Err(PayloadError(format!(
            "object_kind {kind:?}: only push events start runs"
        )));
    }
    let project = v
        .get("project")
        .ok_or_else(|| PayloadError("no \"project\" in the push".into()))?;
    let field = |k: &str| text(project, &[k]).unwrap_or_default();
    let mut push = common(
        &v,
        vec![field("name"), field("path_with_namespace")],
        vec![
            field("git_http_url"),
            field("git_ssh_url"),
            field("web_url"),
        ],
    )?;
    // GitLab lists the commits pushed, oldest first; the head is the last.
    let commits = v.get("commits").and_then(Value::as_array);
    let last = commits.and_then(|c| {
        c.iter()
            .find(|c| text(c, &["id"]).as_deref() == Some(&push.after))
    });
    (push.author, push.message) = head(last.or_else(|| commits.and_then(|c| c.last())));
    Ok(push)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn githubs_published_example_signature_is_accepted_and_nothing_else() {
        // The example of GitHub's "Validating webhook deliveries" page.
        let secret = b"It's a Secret to Everybody";
        let body = b"Hello, World!";
        let sig = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
        assert!(github_signature_ok(secret, body, Some(sig)));
        assert!(!github_signature_ok(secret, b"Hello, World?", Some(sig)));
        assert!(!github_signature_ok(b"another secret", body, Some(sig)));
        assert!(!github_signature_ok(secret, body, None));
        assert!(!github_signature_ok(secret, body, Some(&sig[7..])));
        assert!(!github_signature_ok(secret, body, Some("sha256=zz")));
        assert!(!github_signature_ok(
            secret,
            body,
            Some(&sig[..sig.len() - 2])
        ));
    }

    #[test]
    fn gitlab_tokens_must_match_exactly() {
        assert!(gitlab_token_ok(b"s3cret", Some("s3cret")));
        assert!(!gitlab_token_ok(b"s3cret", Some("s3cret ")));
        assert!(!gitlab_token_ok(b"s3cret", Some("")));
        assert!(!gitlab_token_ok(b"s3cret", None));
    }

    const SHA: &str = "6113728f27ae82c7b1a177c8d03f9e96e0adf246";

    #[test]
    fn a_github_push_names_the_repository_branch_and_head_commit() {
        let body = serde_json::json!({
            "ref": "refs/heads/main",
            "before": "0000000000000000000000000000000000000000",
            "after": SHA,
            "repository": {"name": "hello", "full_name": "acme/hello",
                "clone_url": "https://github.com/acme/hello.git",
                "ssh_url": "git@github.com:acme/hello.git"},
            "head_commit": {"id": SHA, "message": "Fix it\n\nLonger text",
                "author": {"name": "Ann", "email": "ann@example.com"}}
        });
        let push = github_push(body.to_string().as_bytes()).unwrap();
        assert_eq!(push.names, ["hello", "acme/hello"]);
        assert_eq!(push.branch.as_deref(), Some("main"));
        assert_eq!(push.after, SHA);
        assert!(!push.deleted);
        assert_eq!(push.author.as_deref(), Some("Ann <ann@example.com>"));
        assert_eq!(push.message.as_deref(), Some("Fix it"));
        assert!(push
            .urls
            .contains(&"git@github.com:acme/hello.git".to_owned()));

        let tag = serde_json::json!({"ref": "refs/tags/v1", "after": SHA,
            "repository": {"name": "hello"}});
        assert_eq!(
            github_push(tag.to_string().as_bytes()).unwrap().branch,
            None
        );
        let gone = serde_json::json!({"ref": "refs/heads/old", "deleted": true,
            "after": "0000000000000000000000000000000000000000", "repository": {"name": "hello"}});
        assert!(github_push(gone.to_string().as_bytes()).unwrap().deleted);
        let bad = serde_json::json!({"ref": "refs/heads/main", "after": "HEAD; rm -rf /",
            "repository": {"name": "hello"}});
        let err = github_push(bad.to_string().as_bytes())
            .unwrap_err()
            .to_string();
        assert!(err.contains("not a commit id"), "{err}");
        assert!(github_push(b"{").is_err());
    }

    #[test]
    fn a_gitlab_push_takes_the_head_commit_from_its_commit_list() {
        let body = serde_json::json!({
            "object_kind": "push",
            "ref": "refs/heads/main",
            "after": SHA,
            "project": {"name": "hello", "path_with_namespace": "acme/hello",
                "git_http_url": "https://gitlab.example.com/acme/hello.git"},
            "commits": [
                {"id": SHA, "message": "Second\n", "author": {"name": "Bo", "email": "bo@example.com"}},
                {"id": "1111111111111111111111111111111111111111", "message": "First"}
            ]
        });
        let push = gitlab_push(body.to_string().as_bytes()).unwrap();
        assert_eq!(push.names, ["hello", "acme/hello"]);
        assert_eq!(push.message.as_deref(), Some("Second"));
        assert_eq!(push.author.as_deref(), Some("Bo <bo@example.com>"));
        let tag = serde_json::json!({"object_kind": "tag_push"});
        assert!(gitlab_push(tag.to_string().as_bytes()).is_err());
    }
}
