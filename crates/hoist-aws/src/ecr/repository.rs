//! ECR repositories: look one up, and create it on first push with safe settings.
//!
//! [`ensure_repository`] creates a missing repository with immutable tags, scan on
//! push and encryption at rest (`AES256`, or `KMS` with an optional key). It never
//! modifies a repository that exists; it reads its settings back so the caller can
//! warn about the ones it would not have chosen ([`Repository::concerns`]).

use aws_sdk_ecr::types::{
    EncryptionConfiguration, EncryptionType, ImageScanningConfiguration, ImageTagMutability,
};

use super::{block_on, client, AwsError, EcrRegistry};

/// How a new repository's images are encrypted at rest.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Encryption {
    /// Amazon S3-managed keys (`AES256`).
    #[default]
    Aes256,
    /// AWS KMS (`KMS`): the given key (ARN, ID or alias), or ECR's AWS-managed key.
    Kms {
        /// The key, or `None` for the AWS-managed `aws/ecr` key.
        key: Option<String>,
    },
}

/// Settings of a repository [`ensure_repository`] creates.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RepositorySettings {
    /// Encryption at rest.
    pub encryption: Encryption,
}

/// A repository as ECR describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Repository {
    /// The repository's name (`team/app`).
    pub name: String,
    /// Its URI (`<account>.dkr.ecr.<region>.amazonaws.com/team/app`).
    pub uri: String,
    /// `imageTagMutability` as ECR spells it (`IMMUTABLE`, `MUTABLE`,
    /// `IMMUTABLE_WITH_EXCLUSION`...).
    pub tag_mutability: String,
    /// Whether images are scanned when pushed (the repository's own setting).
    pub scan_on_push: bool,
    /// The encryption type (`AES256`, `KMS`, `KMS_DSSE`).
    pub encryption: String,
    /// The KMS key, for KMS encryption.
    pub kms_key: Option<String>,
}

/// A setting of an existing repository that differs from what hoist creates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Concern {
    /// Tags can be overwritten (the mutability, as ECR spells it).
    MutableTags(String),
    /// Images are not scanned on push.
    NoScanOnPush,
}

impl std::fmt::Display for Concern {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Concern::MutableTags(m) => write!(f, "its tags are {m}, so a tag can be overwritten"),
            Concern::NoScanOnPush => f.write_str("it does not scan images on push"),
        }
    }
}

impl Repository {
    /// Where it differs from the settings hoist creates repositories with (tags
    /// `IMMUTABLE`, scan on push).
    pub fn concerns(&self) -> Vec<Concern> {
        let mut out = Vec::new();
        if self.tag_mutability != ImageTagMutability::Immutable.as_str() {
            out.push(Concern::MutableTags(self.tag_mutability.clone()));
        }
        if !self.scan_on_push {
            out.push(Concern::NoScanOnPush);
        }
        out
    }

    fn from_sdk(r: &aws_sdk_ecr::types::Repository) -> Repository {
        let encryption = r.encryption_configuration();
        Repository {
            name: r.repository_name().unwrap_or_default().to_owned(),
            uri: r.repository_uri().unwrap_or_default().to_owned(),
            // ECR's default when the answer leaves it out.
            tag_mutability: r
                .image_tag_mutability()
                .map_or("MUTABLE", |m| m.as_str())
                .to_owned(),
            scan_on_push: r
                .image_scanning_configuration()
                .is_some_and(|c| c.scan_on_push()),
            encryption: encryption
                .map_or("AES256", |e| e.encryption_type().as_str())
                .to_owned(),
            kms_key: encryption.and_then(|e| e.kms_key()).map(str::to_owned),
        }
    }
}

/// What [`ensure_repository`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ensured {
    /// It did not exist and was created.
    Created(Repository),
    /// It existed (or another client created it at the same moment); unchanged.
    Existed(Repository),
}

impl Ensured {
    /// The repository, either way.
    pub fn repository(&self) -> &Repository {
        match self {
            Ensured::Created(r) | Ensured::Existed(r) => r,
        }
    }
}

/// The repository `name` in `registry`, or `None` if there is none
/// (`DescribeRepositories`).
pub fn describe_repository(
    registry: &EcrRegistry,
    name: &str,
) -> Result<Option<Repository>, AwsError> {
    block_on(async {
        let client = client(registry).await;
        describe(&client, registry, name).await
    })
}

/// The repository `name` in `registry`, created with `settings` (tags immutable,
/// scan on push) if it does not exist. An existing repository is left as it is.
pub fn ensure_repository(
    registry: &EcrRegistry,
    name: &str,
    settings: &RepositorySettings,
) -> Result<Ensured, AwsError> {
    block_on(async {
        let client = client(registry).await;
        if let Some(existing) = describe(&client, registry, name).await? {
            return Ok(Ensured::Existed(existing));
        }
        let encryption = match &settings.encryption {
            Encryption::Aes256 => EncryptionConfiguration::builder()
                .encryption_type(EncryptionType::Aes256)
                .build(),
            Encryption::Kms { key } => EncryptionConfiguration::builder()
                .encryption_type(EncryptionType::Kms)
                .set_kms_key(key.clone())
                .build(),
        }
        .map_err(|e| AwsError::api("CreateRepository", registry, &e))?;
        let created = client
            .create_repository()
            .registry_id(&registry.account)
            .repository_name(name)
            .image_tag_mutability(ImageTagMutability::Immutable)
            .image_scanning_configuration(
                ImageScanningConfiguration::builder()
                    .scan_on_push(true)
                    .build(),
            )
            .encryption_configuration(encryption)
            .send()
            .await;
        match created {
            Ok(out) => {
                let repo = out.repository().ok_or_else(|| AwsError::BadAnswer {
                    operation: "CreateRepository",
                    account: registry.account.clone(),
                    message: "the answer has no repository".to_owned(),
                })?;
                Ok(Ensured::Created(Repository::from_sdk(repo)))
            }
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_repository_already_exists_exception()) =>
            {
                // Another client created it between our two calls.
                match describe(&client, registry, name).await? {
                    Some(r) => Ok(Ensured::Existed(r)),
                    None => Err(AwsError::api("CreateRepository", registry, &e)),
                }
            }
            Err(e) => Err(AwsError::api("CreateRepository", registry, &e)),
        }
    })
}

async fn describe(
    client: &aws_sdk_ecr::Client,
    registry: &EcrRegistry,
    name: &str,
) -> Result<Option<Repository>, AwsError> {
    let answer = client
        .describe_repositories()
        .registry_id(&registry.account)
        .repository_names(name)
        .send()
        .await;
    match answer {
        Ok(out) => Ok(out
            .repositories()
            .iter()
            .find(|r| r.repository_name() == Some(name))
            .map(Repository::from_sdk)),
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_repository_not_found_exception()) =>
        {
            Ok(None)
        }
        Err(e) => Err(AwsError::api("DescribeRepositories", registry, &e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn concerns_name_mutable_tags_and_missing_scan_on_push() {
        let mut r = Repository {
            name: "app".into(),
            uri: String::new(),
            tag_mutability: "IMMUTABLE".into(),
            scan_on_push: true,
            encryption: "AES256".into(),
            kms_key: None,
        };
        assert_eq!(r.concerns(), vec![]);
        r.tag_mutability = "MUTABLE_WITH_EXCLUSION".into();
        r.scan_on_push = false;
        assert_eq!(
            r.concerns(),
            vec![
                Concern::MutableTags("MUTABLE_WITH_EXCLUSION".into()),
                Concern::NoScanOnPush
            ]
        );
        // Read back from ECR's answer; left-out settings are ECR's defaults.
        let bare = aws_sdk_ecr::types::Repository::builder()
            .repository_name("app")
            .build();
        let r = Repository::from_sdk(&bare);
        assert_eq!(
            (
                r.tag_mutability.as_str(),
                r.scan_on_push,
                r.encryption.as_str()
            ),
            ("MUTABLE", false, "AES256")
        );
    }
}
