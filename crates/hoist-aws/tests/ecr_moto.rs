//! ECR credentials, repositories and scan findings through the real AWS SDK against
//! moto in server mode (`pip install 'moto[server]'`), pointed at it with
//! `AWS_ENDPOINT_URL_ECR`. One test per process under nextest, so each test's
//! environment is its own.
#![allow(clippy::unwrap_used)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

mod moto;
use moto::Moto;

use hoist_aws::ecr::repository::{
    describe_repository, ensure_repository, Concern, Encryption, Ensured, RepositorySettings,
};
use hoist_aws::ecr::scan::{scan_findings, EcrFinding};
use hoist_aws::ecr::{AwsError, EcrCredentials, EcrRegistry};

/// The test's own SDK client (eu-west-2, the environment's endpoint), to set up and
/// read back what hoist-aws did, and a runtime to run its calls on.
fn sdk() -> (tokio::runtime::Runtime, aws_sdk_ecr::Client) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let config = rt.block_on(moto::sdk_config(Some("eu-west-2")));
    (rt, aws_sdk_ecr::Client::new(&config))
}

const HOST: &str = "123456789012.dkr.ecr.eu-west-2.amazonaws.com";

/// A clock the test sets.
fn clock(at: &Arc<AtomicU64>) -> hoist_aws::ecr::Clock {
    let at = at.clone();
    Arc::new(move || UNIX_EPOCH + Duration::from_secs(at.load(Ordering::SeqCst)))
}

fn secs(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).unwrap().as_secs()
}

#[test]
fn ecr_tokens_come_from_aws_and_are_cached_until_just_before_they_expire() {
    // The host names the region, whatever the environment says.
    moto::isolate_aws_environment("us-east-1");

    let moto = Moto::start();
    moto.point_sdk_here();
    let cache = tempfile::tempdir().unwrap();
    let host = "123456789012.dkr.ecr.eu-west-2.amazonaws.com";
    let registry = EcrRegistry::parse(host).unwrap();
    // moto's tokens expire at 2015-01-01 (local time); the clock starts a day before.
    let now = Arc::new(AtomicU64::new(1_419_984_000));
    let creds = EcrCredentials::new(Some(cache.path().to_owned())).with_clock(clock(&now));

    let token = creds.token(host).unwrap();
    assert_eq!(token.username, "AWS");
    assert_eq!(token.password, "123456789012-auth-token");
    assert_eq!(
        token.proxy_endpoint,
        "https://123456789012.dkr.ecr.eu-west-2.amazonaws.com"
    );
    let expiry = secs(token.expires_at);
    assert!(
        expiry.abs_diff(1_420_070_400) <= 14 * 3600,
        "moto's expiry is 2015-01-01, got {expiry}"
    );
    // Another account's registry: the registry ID goes to AWS.
    let other = creds
        .token("210987654321.dkr.ecr.eu-west-2.amazonaws.com")
        .unwrap();
    assert_eq!(other.password, "210987654321-auth-token");

    // Cached on disk, for this account and host, readable by its owner only.
    let file = creds.cache_path(&registry).unwrap();
    assert_eq!(
        file,
        cache
            .path()
            .join("123456789012")
            .join(format!("{host}.json"))
    );
    let mode = std::fs::metadata(&file).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "{mode:o}");

    // With AWS gone, both caches still answer: memory, then disk for a new process.
    drop(moto);
    assert_eq!(creds.token(host).unwrap(), token);
    let fresh = EcrCredentials::new(Some(cache.path().to_owned())).with_clock(clock(&now));
    assert_eq!(fresh.token(host).unwrap(), token);

    // Four minutes before expiry the token counts as expired: AWS is asked (and,
    // being down, the call fails rather than handing out a dying token).
    now.store(expiry - 240, Ordering::SeqCst);
    let err = creds.token(host).unwrap_err();
    assert!(matches!(err, AwsError::Api { .. }), "{err}");
    assert!(err.to_string().contains("123456789012"), "{err}");

    // AWS back: the stale entry (marked, to see it replaced) is refreshed.
    let moto = Moto::start();
    moto.point_sdk_here();
    let stale = std::fs::read_to_string(&file)
        .unwrap()
        .replace("123456789012-auth-token", "stale");
    std::fs::write(&file, stale).unwrap();
    let again = EcrCredentials::new(Some(cache.path().to_owned())).with_clock(clock(&now));
    let refreshed = again.token(host).unwrap();
    assert_eq!(refreshed.password, "123456789012-auth-token");
    assert!(!std::fs::read_to_string(&file).unwrap().contains("stale"));
    // A non-ECR host is refused before any call.
    assert!(matches!(again.token("ghcr.io"), Err(AwsError::NotEcr(_))));
}

#[test]
fn missing_repositories_are_created_immutable_with_scan_on_push_and_existing_ones_left_alone() {
    // The host names the region, whatever the environment says.
    moto::isolate_aws_environment("us-east-1");
    let moto = Moto::start();
    moto.point_sdk_here();
    let registry = EcrRegistry::parse(HOST).unwrap();
    let (rt, sdk) = sdk();
    let read_back = |name: &str| {
        rt.block_on(sdk.describe_repositories().repository_names(name).send())
            .unwrap()
            .repositories()[0]
            .clone()
    };

    assert_eq!(describe_repository(&registry, "team/app").unwrap(), None);
    let created = ensure_repository(&registry, "team/app", &RepositorySettings::default()).unwrap();
    let Ensured::Created(repo) = &created else {
        panic!("{created:?}");
    };
    assert_eq!(repo.name, "team/app");
    assert_eq!(repo.uri, format!("{HOST}/team/app"));
    assert_eq!(repo.concerns(), vec![]);
    let sdk_view = read_back("team/app");
    assert_eq!(
        sdk_view.image_tag_mutability().unwrap().as_str(),
        "IMMUTABLE"
    );
    assert!(sdk_view
        .image_scanning_configuration()
        .unwrap()
        .scan_on_push());
    assert_eq!(
        sdk_view
            .encryption_configuration()
            .unwrap()
            .encryption_type()
            .as_str(),
        "AES256"
    );

    // Again: it exists, as created.
    let again = ensure_repository(&registry, "team/app", &RepositorySettings::default()).unwrap();
    assert_eq!(again, Ensured::Existed(repo.clone()));
    assert_eq!(
        describe_repository(&registry, "team/app").unwrap().as_ref(),
        Some(repo)
    );

    // KMS with a named key.
    let key = "arn:aws:kms:eu-west-2:123456789012:key/0b9f2c3e-0000-4000-8000-000000000001";
    let kms = RepositorySettings {
        encryption: Encryption::Kms {
            key: Some(key.to_owned()),
        },
    };
    let Ensured::Created(repo) = ensure_repository(&registry, "team/secret", &kms).unwrap() else {
        panic!("not created");
    };
    assert_eq!(
        (repo.encryption.as_str(), repo.kms_key.as_deref()),
        ("KMS", Some(key))
    );
    let enc = read_back("team/secret")
        .encryption_configuration()
        .unwrap()
        .clone();
    assert_eq!(
        (enc.encryption_type().as_str(), enc.kms_key()),
        ("KMS", Some(key))
    );

    // Someone else's repository, mutable and not scanning: reported, not changed.
    rt.block_on(
        sdk.create_repository()
            .repository_name("legacy")
            .image_tag_mutability(aws_sdk_ecr::types::ImageTagMutability::Mutable)
            .send(),
    )
    .unwrap();
    let legacy = ensure_repository(&registry, "legacy", &RepositorySettings::default()).unwrap();
    let Ensured::Existed(repo) = &legacy else {
        panic!("{legacy:?}");
    };
    assert_eq!(
        repo.concerns(),
        vec![
            Concern::MutableTags("MUTABLE".into()),
            Concern::NoScanOnPush
        ]
    );
    let sdk_view = read_back("legacy");
    assert_eq!(sdk_view.image_tag_mutability().unwrap().as_str(), "MUTABLE");
    assert!(!sdk_view
        .image_scanning_configuration()
        .unwrap()
        .scan_on_push());

    // Errors name the operation and the account.
    drop(moto);
    let err = describe_repository(&registry, "team/app").unwrap_err();
    assert!(matches!(err, AwsError::Api { .. }), "{err}");
    let text = err.to_string();
    assert!(
        text.starts_with("ECR DescribeRepositories for account 123456789012 in eu-west-2"),
        "{text}"
    );
}

/// `POST` a JSON body to moto's control API.
fn moto_post(port: u16, path: &str, body: &str) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        s,
        "POST {path} HTTP/1.0\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).unwrap();
    let status = answer.split_whitespace().nth(1).unwrap_or_default();
    assert!(status.starts_with('2'), "{answer}");
}

/// Put an image manifest as `app:tag`, with a layer of its own (moto derives the
/// image's digest from the layers'); its digest.
fn put_image(rt: &tokio::runtime::Runtime, sdk: &aws_sdk_ecr::Client, tag: &str) -> String {
    let hex: String = tag.bytes().map(|b| format!("{b:02x}")).collect();
    let layer = format!("sha256:{hex:0>64}");
    let manifest = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","size":2,"digest":"sha256:{:064}"}},"layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","size":2,"digest":"{layer}"}}]}}"#,
        0
    );
    let out = rt
        .block_on(
            sdk.put_image()
                .repository_name("app")
                .image_manifest(manifest)
                .image_tag(tag)
                .send(),
        )
        .unwrap();
    out.image()
        .unwrap()
        .image_id()
        .unwrap()
        .image_digest()
        .unwrap()
        .to_owned()
}

fn start_scan(rt: &tokio::runtime::Runtime, sdk: &aws_sdk_ecr::Client, digest: &str) {
    rt.block_on(
        sdk.start_image_scan()
            .repository_name("app")
            .image_id(
                aws_sdk_ecr::types::ImageIdentifier::builder()
                    .image_digest(digest)
                    .build(),
            )
            .send(),
    )
    .unwrap();
}

#[test]
fn scan_findings_come_from_describe_image_scan_findings_once_the_scan_exists() {
    // The host names the region, whatever the environment says.
    moto::isolate_aws_environment("us-east-1");
    let moto = Moto::start();
    moto.point_sdk_here();
    let registry = EcrRegistry::parse(HOST).unwrap();
    let (rt, sdk) = sdk();
    ensure_repository(&registry, "app", &RepositorySettings::default()).unwrap();
    let digest = put_image(&rt, &sdk, "v1");

    // moto does not scan on push: ScanNotFoundException until StartImageScan, so the
    // wait ends after its grace period (the whole, short, timeout) with that reason.
    let err = scan_findings(&registry, "app", &digest, Duration::from_secs(1)).unwrap_err();
    assert!(matches!(err, AwsError::ScanNotFound { .. }), "{err}");
    assert!(err.to_string().contains(&format!("app@{digest}")), "{err}");

    // Once started, moto answers COMPLETE with its one canned basic finding.
    start_scan(&rt, &sdk, &digest);
    let scan = scan_findings(&registry, "app", &digest, Duration::from_secs(60)).unwrap();
    assert_eq!(scan.status, "COMPLETE");
    assert!(scan.completed_at.is_some());
    assert_eq!(scan.severity_counts.get("HIGH"), Some(&1));
    assert_eq!(
        scan.findings,
        vec![EcrFinding {
            name: "CVE-9999-9999".into(),
            severity: "HIGH".into(),
            package: Some("moto_fake".into()),
            version: Some("9.9.9".into()),
            fixed_in: None,
            uri: Some("https://cve.mitre.org/cgi-bin/cvename.cgi?name=CVE-9999-9999".into()),
            description: None,
        }]
    );

    // Answers configured through moto's API, as ECR documents them: a failed scan...
    let failed = put_image(&rt, &sdk, "v2");
    let enhanced = put_image(&rt, &sdk, "v3");
    let results = format!(
        r#"{{"region":"eu-west-2","results":[
        {{"registryId":"123456789012","repositoryName":"app","imageId":{{"imageDigest":"{failed}"}},
          "imageScanStatus":{{"status":"UNSUPPORTED_IMAGE","description":"UnsupportedImageError: The operating system and/or package manager are not supported."}}}},
        {{"registryId":"123456789012","repositoryName":"app","imageId":{{"imageDigest":"{enhanced}"}},
          "imageScanStatus":{{"status":"ACTIVE","description":"Continuous scan is selected for image."}},
          "imageScanFindings":{{"findingSeverityCounts":{{"CRITICAL":1}},"enhancedFindings":[
            {{"awsAccountId":"123456789012","severity":"CRITICAL","title":"CVE-2023-38545 - curl","status":"ACTIVE","type":"PACKAGE_VULNERABILITY",
              "packageVulnerabilityDetails":{{"vulnerabilityId":"CVE-2023-38545","sourceUrl":"https://nvd.nist.gov/vuln/detail/CVE-2023-38545",
                "vulnerablePackages":[{{"name":"curl","version":"8.3.0","fixedInVersion":"8.4.0","packageManager":"OS"}}]}}}}]}}}}]}}"#
    );
    moto_post(
        moto.port,
        "/moto-api/static/ecr/scan-finding-results",
        &results,
    );
    start_scan(&rt, &sdk, &failed);
    let err = scan_findings(&registry, "app", &failed, Duration::from_secs(60)).unwrap_err();
    let AwsError::ScanFailed {
        status,
        description,
        ..
    } = &err
    else {
        panic!("{err}");
    };
    assert_eq!(status, "UNSUPPORTED_IMAGE");
    assert!(
        description.as_deref().unwrap().contains("not supported"),
        "{err}"
    );

    // ...and an enhanced (Inspector) scan's findings.
    start_scan(&rt, &sdk, &enhanced);
    let scan = scan_findings(&registry, "app", &enhanced, Duration::from_secs(60)).unwrap();
    assert_eq!(scan.status, "ACTIVE");
    assert_eq!(
        scan.findings,
        vec![EcrFinding {
            name: "CVE-2023-38545".into(),
            severity: "CRITICAL".into(),
            package: Some("curl".into()),
            version: Some("8.3.0".into()),
            fixed_in: Some("8.4.0".into()),
            uri: Some("https://nvd.nist.gov/vuln/detail/CVE-2023-38545".into()),
            description: None,
        }]
    );
}
