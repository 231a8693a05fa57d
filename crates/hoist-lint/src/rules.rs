//! The rule table: every rule `hoist lint` knows, with its ID, severity, reason and
//! fix. IDs are `HL-<area>-<nnn>`: `DF` Dockerfile, `TF` Terraform, `ECS` task
//! definitions (checked both in task definition JSON and in Terraform's
//! `aws_ecs_task_definition`). An ID never changes meaning once published.

use std::fmt;

/// How bad a finding is, ordered from least to most severe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    /// Hygiene: larger images, slower builds, deprecated syntax.
    Low,
    /// A weakness that needs another mistake to be exploited.
    Medium,
    /// A direct weakness (root, wildcard permissions, pipe to shell).
    High,
    /// Exposure as it stands (secrets in clear, admin ports open to the world).
    Critical,
}

impl Severity {
    /// Lower-case name (`high`), as the CLI and JSON output spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }

    /// Every severity, least severe first.
    pub const ALL: [Severity; 4] = [
        Severity::Low,
        Severity::Medium,
        Severity::High,
        Severity::Critical,
    ];
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Severity {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Severity::ALL
            .into_iter()
            .find(|v| v.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| format!("unknown severity {s:?} (critical, high, medium or low)"))
    }
}

/// One misconfiguration rule.
#[derive(Debug, PartialEq, Eq)]
pub struct Rule {
    /// Stable ID, e.g. `HL-DF-001`.
    pub id: &'static str,
    /// How bad a finding of this rule is.
    pub severity: Severity,
    /// Short title.
    pub title: &'static str,
    /// Why it matters, one line.
    pub why: &'static str,
    /// How to fix it, one line.
    pub fix: &'static str,
}

macro_rules! rules {
    ($($name:ident = $id:literal, $sev:ident, $title:literal, $why:literal, $fix:literal;)*) => {
        $(
            #[doc = concat!("`", $id, "`: ", $title, ".")]
            pub static $name: Rule = Rule {
                id: $id,
                severity: Severity::$sev,
                title: $title,
                why: $why,
                fix: $fix,
            };
        )*
        /// Every rule, in ID order.
        pub static RULES: &[&Rule] = &[$(&$name),*];
    };
}

rules! {
    DF_ROOT = "HL-DF-001", High, "Image runs as root",
        "The final stage's last USER is root (or there is none), so the process runs as uid 0 and a breakout starts as root",
        "Add `USER <non-root uid>` (e.g. `USER 10001`) after the last step that needs root";
    DF_LATEST = "HL-DF-002", Medium, "Base image not pinned",
        "A base image tagged `latest` or untagged changes under you: builds are not reproducible and can pull in regressions",
        "Pin a version tag (`debian:12.5`) or a digest (`debian@sha256:...`)";
    DF_ADD_LOCAL = "HL-DF-003", Low, "ADD used to copy local files",
        "ADD also fetches URLs and unpacks archives, so a local copy with ADD hides what it does",
        "Use COPY for local files and directories";
    DF_ADD_URL = "HL-DF-004", Medium, "ADD fetches a URL without a checksum",
        "A remote file fetched without verification can change or be tampered with between builds",
        "Use `ADD --checksum=sha256:...` or `RUN curl -fsSLO ... && sha256sum -c`";
    DF_NO_HEALTHCHECK = "HL-DF-005", Low, "No HEALTHCHECK",
        "Without a health check the runtime cannot tell a hung container from a healthy one",
        "Add `HEALTHCHECK CMD ...` (or `HEALTHCHECK NONE` when the orchestrator checks health itself)";
    DF_SECRET_LITERAL = "HL-DF-006", Critical, "Secret in ENV or ARG",
        "ENV and ARG values are stored in the image config and history: anyone who can pull the image can read them",
        "Remove the value; pass it at run time or use `RUN --mount=type=secret`";
    DF_SECRET_ARG = "HL-DF-007", Medium, "Secret passed as a build argument",
        "A value given with --build-arg (or copied into ENV) is recorded in the image history",
        "Use `RUN --mount=type=secret,id=...` and `hoist build --secret`";
    DF_APT_NO_YES = "HL-DF-008", Medium, "apt-get install without -y",
        "Without -y apt-get asks for confirmation and the non-interactive build fails or hangs",
        "Use `apt-get install -y`";
    DF_APT_RECOMMENDS = "HL-DF-009", Low, "apt-get install without --no-install-recommends",
        "Recommended packages add size and attack surface the image does not need",
        "Add `--no-install-recommends`";
    DF_APT_UPDATE_ALONE = "HL-DF-010", Medium, "apt-get update alone in a RUN",
        "A cached `apt-get update` layer goes stale: later installs use old package lists and fail or install old versions",
        "Run `apt-get update && apt-get install -y ...` in the same RUN";
    DF_SUDO = "HL-DF-011", High, "sudo in RUN",
        "sudo in an image means a setuid root helper ships with it, and build steps already run as the USER in effect",
        "Drop sudo: switch with `USER root` for the steps that need it";
    DF_RUN_CD = "HL-DF-012", Low, "RUN cd",
        "A `cd` in RUN lasts only for that RUN, which makes later steps' directory easy to get wrong",
        "Use WORKDIR";
    DF_RELATIVE_WORKDIR = "HL-DF-013", Medium, "Relative WORKDIR",
        "A relative WORKDIR depends on every earlier WORKDIR and on the base image's",
        "Use an absolute path";
    DF_EXPOSE_SSH = "HL-DF-014", Medium, "Port 22 exposed",
        "Running SSH inside a container adds a remote login and credentials to manage",
        "Remove `EXPOSE 22`; use `docker exec` or `aws ecs execute-command` for a shell";
    DF_MULTI_CMD = "HL-DF-015", Medium, "Several CMD in one stage",
        "Only the last CMD takes effect; the others are dead code that misleads readers",
        "Keep one CMD per stage";
    DF_MULTI_ENTRYPOINT = "HL-DF-016", Medium, "Several ENTRYPOINT in one stage",
        "Only the last ENTRYPOINT takes effect; the others are dead code that misleads readers",
        "Keep one ENTRYPOINT per stage";
    DF_APK_CACHE = "HL-DF-017", Low, "apk add without --no-cache",
        "The apk index cache stays in the layer and bloats the image",
        "Use `apk add --no-cache`";
    DF_PIP_CACHE = "HL-DF-018", Low, "pip install without --no-cache-dir",
        "pip's download cache stays in the layer and bloats the image",
        "Use `pip install --no-cache-dir` (or a cache mount)";
    DF_PIPE_SHELL = "HL-DF-019", High, "Download piped to a shell",
        "`curl ... | sh` runs whatever the server returns, unverified",
        "Download to a file, verify its checksum or signature, then run it";
    DF_MAINTAINER = "HL-DF-020", Low, "MAINTAINER is deprecated",
        "MAINTAINER is deprecated and not shown by most tools",
        "Use `LABEL org.opencontainers.image.authors=...`";
    DF_CHMOD_777 = "HL-DF-021", High, "World-writable permissions",
        "Mode 777 lets any user in the container (or a compromised process) modify the files",
        "Grant the least permissions needed (e.g. 755 for directories, 644 for files) and chown to the user";

    ECS_PRIVILEGED = "HL-ECS-001", High, "Privileged container",
        "A privileged container has every capability and the host's devices: escaping it is trivial",
        "Remove `privileged`; add only the capabilities needed with linuxParameters.capabilities";
    ECS_ROOT_USER = "HL-ECS-002", Medium, "Container runs as root",
        "A container with user root/0 (or none set, leaving the image's default, often root) runs as uid 0",
        "Set `user` to a non-root uid (e.g. \"10001\")";
    ECS_WRITABLE_ROOT = "HL-ECS-003", Medium, "Root file system writable",
        "A writable root file system lets an attacker change binaries and persist in the container",
        "Set `readonlyRootFilesystem = true` and mount volumes for the paths that need writes";
    ECS_ENV_SECRET = "HL-ECS-004", Critical, "Secret in plain environment variable",
        "Values in `environment` are stored in clear in the task definition and shown by describe-task-definition",
        "Move it to `secrets` with a valueFrom of an SSM parameter or a Secrets Manager ARN";

    TF_ECR_MUTABLE = "HL-TF-001", Medium, "ECR tags are mutable",
        "With mutable tags a push can replace what a tag deploys, so a tag no longer names one image",
        "Set `image_tag_mutability = \"IMMUTABLE\"`";
    TF_ECR_SCAN = "HL-TF-002", Medium, "ECR scan on push disabled",
        "Images pushed to the repository are not scanned for known vulnerabilities",
        "Add `image_scanning_configuration { scan_on_push = true }` (or registry-wide enhanced scanning)";
    TF_ECR_KMS = "HL-TF-003", Low, "ECR not encrypted with KMS",
        "The default AES256 encryption uses an AWS-owned key you cannot audit, rotate or revoke",
        "Add `encryption_configuration { encryption_type = \"KMS\" kms_key = ... }`";
    TF_ECR_PUBLIC_POLICY = "HL-TF-004", High, "ECR repository policy allows any principal",
        "A statement allowing Principal `*` without a condition opens the repository to every AWS account",
        "Name the accounts or roles as principals, or add a condition such as aws:PrincipalOrgID";
    TF_IAM_WILDCARD_ACTION = "HL-TF-005", High, "IAM policy allows every action",
        "An Allow on `*` (or `service:*`) actions grants far more than the workload needs",
        "List the actions the workload uses";
    TF_IAM_WILDCARD_RESOURCE = "HL-TF-006", Medium, "IAM policy allows on every resource",
        "An Allow on Resource `*` reaches every resource of that type in the account",
        "Name the resource ARNs (Resource `*` is only needed for actions without resource-level permissions)";
    TF_SG_OPEN_ADMIN = "HL-TF-007", Critical, "Admin or database port open to the internet",
        "Ingress from 0.0.0.0/0 or ::/0 to SSH, RDP, a database port or every port invites brute force and exploits",
        "Restrict the source to known CIDRs or security groups, or reach the host through SSM/a bastion";

}

/// The rule with this ID (case-insensitive), if there is one.
pub fn rule(id: &str) -> Option<&'static Rule> {
    RULES
        .iter()
        .copied()
        .find(|r| r.id.eq_ignore_ascii_case(id))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_unique_sorted_and_well_formed() {
        let ids: Vec<_> = RULES.iter().map(|r| r.id).collect();
        let mut sorted = ids.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(ids, sorted);
        for r in RULES {
            assert!(r.id.starts_with("HL-"), "{}", r.id);
            assert!(!r.why.contains('\n') && !r.fix.contains('\n'), "{}", r.id);
        }
        assert_eq!(rule("hl-df-001"), Some(&DF_ROOT));
    }

    #[test]
    fn severities_order_and_parse() {
        assert!(Severity::Critical > Severity::High && Severity::Medium > Severity::Low);
        assert_eq!("HIGH".parse::<Severity>(), Ok(Severity::High));
        assert!("urgent".parse::<Severity>().is_err());
    }
}
