//! The rules that still apply to a built image, read from its config (what Trivy
//! calls image config checks): root user, no HEALTHCHECK, secrets in the
//! environment, SSH exposed. They carry the IDs of the Dockerfile rules they mirror,
//! so one `.hoistignore` entry covers a finding in both places. The input is a plain
//! view of the config, so this crate needs no image model.

use crate::rules::{Rule, DF_EXPOSE_SSH, DF_NO_HEALTHCHECK, DF_ROOT, DF_SECRET_LITERAL};

/// What the rules read from an image config.
#[derive(Debug, Clone, Copy, Default)]
pub struct ImageSettings<'a> {
    /// `User` (empty when unset: root).
    pub user: &'a str,
    /// `Env`, as `KEY=VALUE`.
    pub env: &'a [String],
    /// `ExposedPorts` keys, e.g. `22/tcp`.
    pub exposed_ports: &'a [&'a str],
    /// `Healthcheck.Test`; `None` when the image has none.
    pub healthcheck: Option<&'a [String]>,
}

/// A finding about an image config: the rule and what exactly was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageFinding {
    /// The rule.
    pub rule: &'static Rule,
    /// What was found.
    pub message: String,
}

/// Check an image config.
pub fn lint_image(image: &ImageSettings<'_>) -> Vec<ImageFinding> {
    let mut out = Vec::new();
    let mut flag = |rule: &'static Rule, message: String| out.push(ImageFinding { rule, message });
    let user = image.user.trim();
    if user.is_empty() {
        flag(
            &DF_ROOT,
            "the image config sets no User: the container runs as root".into(),
        );
    } else if crate::dockerfile::is_root_user(user) {
        flag(
            &DF_ROOT,
            format!("the image config's User is {user:?}: the container runs as root"),
        );
    }
    match image.healthcheck {
        None => flag(&DF_NO_HEALTHCHECK, "the image has no HEALTHCHECK".into()),
        Some(test) if test.first().is_none_or(|t| t == "NONE") => flag(
            &DF_NO_HEALTHCHECK,
            "the image's HEALTHCHECK is disabled (NONE)".into(),
        ),
        Some(_) => {}
    }
    for entry in image.env {
        let Some((key, value)) = entry.split_once('=') else {
            continue;
        };
        if crate::is_secret_name(key) && !value.trim().is_empty() {
            flag(
                &DF_SECRET_LITERAL,
                format!("the image's environment sets {key} in clear"),
            );
        }
    }
    for port in image.exposed_ports {
        let (number, proto) = port.split_once('/').unwrap_or((port, "tcp"));
        if number.trim() == "22" && !proto.eq_ignore_ascii_case("udp") {
            flag(&DF_EXPOSE_SSH, format!("the image exposes {port} (SSH)"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(image: &ImageSettings<'_>) -> Vec<&'static str> {
        lint_image(image).iter().map(|f| f.rule.id).collect()
    }

    #[test]
    fn a_root_image_without_healthcheck_with_a_secret_and_ssh() {
        let env = vec![
            "PATH=/usr/bin".to_owned(),
            "DB_PASSWORD=hunter2".to_owned(),
            "API_TOKEN=".to_owned(),
        ];
        let found = ids(&ImageSettings {
            user: "",
            env: &env,
            exposed_ports: &["22/tcp", "80/tcp", "22/udp"],
            healthcheck: None,
        });
        assert_eq!(found, ["HL-DF-001", "HL-DF-005", "HL-DF-006", "HL-DF-014"]);
        let root = lint_image(&ImageSettings {
            user: "0:0",
            healthcheck: Some(&["NONE".to_owned()]),
            ..ImageSettings::default()
        });
        assert_eq!(root.len(), 2);
        assert!(root[0].message.contains("\"0:0\""), "{root:?}");
        assert!(root[1].message.contains("disabled"), "{root:?}");
    }

    #[test]
    fn a_well_made_image_has_no_findings() {
        let env = vec![
            "PORT=8080".to_owned(),
            "TOKEN_FILE=/run/secrets/t".to_owned(),
        ];
        let test = vec!["CMD".to_owned(), "wget".to_owned(), "-q".to_owned()];
        let found = ids(&ImageSettings {
            user: "app:app",
            env: &env,
            exposed_ports: &["8080/tcp"],
            healthcheck: Some(&test),
        });
        assert!(found.is_empty(), "{found:?}");
    }
}
