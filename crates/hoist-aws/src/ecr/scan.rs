//! ECR's own image scan: wait for `DescribeImageScanFindings` to finish and collect
//! the findings.
//!
//! [`scan_findings`] polls while the scan is `IN_PROGRESS` or `PENDING` (or not
//! there yet, for a short grace period after the push), and fails on `FAILED`,
//! `UNSUPPORTED_IMAGE` and ECR's other terminal states and on the timeout. The
//! decisions are a pure function of what ECR answered ([`observe`]) and how long
//! hoist has waited ([`wait_for`]); only [`scan_findings`] talks to AWS. Both basic
//! findings (name, severity, `package_name` / `package_version` attributes, URI) and
//! enhanced (Amazon Inspector) findings become [`EcrFinding`]s. Judging them is the
//! caller's business: this crate has no severity policy.

use std::collections::BTreeMap;
use std::time::{Duration, Instant, SystemTime};

use aws_sdk_ecr::operation::describe_image_scan_findings::DescribeImageScanFindingsOutput;
use aws_sdk_ecr::types::{EnhancedImageScanFinding, ImageIdentifier, ImageScanFinding, ScanStatus};

use super::{client, with_runtime, AwsError, EcrRegistry};

/// One vulnerability ECR found.
#[derive(Debug, Clone, PartialEq)]
pub struct EcrFinding {
    /// The vulnerability (`CVE-2024-1234`).
    pub name: String,
    /// Severity as ECR spells it (`CRITICAL`, `HIGH`, `MEDIUM`, `LOW`,
    /// `INFORMATIONAL`, `UNDEFINED`; enhanced scanning also `UNTRIAGED`).
    pub severity: String,
    /// The affected package, when ECR names it.
    pub package: Option<String>,
    /// Its installed version.
    pub version: Option<String>,
    /// A version that fixes it (enhanced scanning only).
    pub fixed_in: Option<String>,
    /// A page about the vulnerability.
    pub uri: Option<String>,
    /// ECR's description.
    pub description: Option<String>,
}

/// A finished scan.
#[derive(Debug, Clone, PartialEq)]
pub struct EcrScan {
    /// `COMPLETE` (basic scanning) or `ACTIVE` (enhanced, continuous scanning).
    pub status: String,
    /// When the scan finished, if ECR says.
    pub completed_at: Option<SystemTime>,
    /// ECR's count of findings per severity.
    pub severity_counts: BTreeMap<String, u32>,
    /// Every finding, basic and enhanced.
    pub findings: Vec<EcrFinding>,
}

/// What one `DescribeImageScanFindings` answer says about the scan.
#[derive(Debug, Clone, PartialEq)]
pub enum Observation {
    /// No scan of the image (yet): `ScanNotFoundException`.
    NotFound,
    /// Still running (`IN_PROGRESS`, `PENDING`).
    Pending {
        /// The status.
        status: String,
    },
    /// Finished with findings (possibly none).
    Finished(EcrScan),
    /// Finished without findings (`FAILED`, `UNSUPPORTED_IMAGE`,
    /// `FINDINGS_UNAVAILABLE`...).
    Failed {
        /// The status.
        status: String,
        /// ECR's explanation.
        description: Option<String>,
    },
}

/// Read one answer (a page: [`scan_findings`] adds the findings of later pages).
pub fn observe(out: &DescribeImageScanFindingsOutput) -> Observation {
    let status = out.image_scan_status();
    let description = status.and_then(|s| s.description()).map(str::to_owned);
    match status.and_then(|s| s.status()) {
        // Not said yet: as good as pending.
        None => Observation::Pending {
            status: "UNKNOWN".to_owned(),
        },
        Some(ScanStatus::InProgress | ScanStatus::Pending) => Observation::Pending {
            status: status_name(status.and_then(|s| s.status())),
        },
        Some(s @ (ScanStatus::Complete | ScanStatus::Active)) => {
            let findings = out.image_scan_findings();
            Observation::Finished(EcrScan {
                status: s.as_str().to_owned(),
                completed_at: findings
                    .and_then(|f| f.image_scan_completed_at())
                    .and_then(|t| SystemTime::try_from(*t).ok()),
                severity_counts: findings
                    .and_then(|f| f.finding_severity_counts())
                    .map(|counts| {
                        counts
                            .iter()
                            .map(|(s, n)| (s.as_str().to_owned(), u32::try_from(*n).unwrap_or(0)))
                            .collect()
                    })
                    .unwrap_or_default(),
                findings: findings_of(out),
            })
        }
        Some(other) => Observation::Failed {
            status: other.as_str().to_owned(),
            description,
        },
    }
}

fn status_name(s: Option<&ScanStatus>) -> String {
    s.map_or("UNKNOWN", |s| s.as_str()).to_owned()
}

/// The findings of one page, basic then enhanced.
fn findings_of(out: &DescribeImageScanFindingsOutput) -> Vec<EcrFinding> {
    let Some(f) = out.image_scan_findings() else {
        return Vec::new();
    };
    f.findings()
        .iter()
        .map(basic)
        .chain(f.enhanced_findings().iter().map(enhanced))
        .collect()
}

fn basic(f: &ImageScanFinding) -> EcrFinding {
    let attribute = |key: &str| {
        f.attributes()
            .iter()
            .find(|a| a.key() == key)
            .and_then(|a| a.value())
            .map(str::to_owned)
    };
    EcrFinding {
        name: f.name().unwrap_or_default().to_owned(),
        severity: f.severity().map_or("UNDEFINED", |s| s.as_str()).to_owned(),
        package: attribute("package_name"),
        version: attribute("package_version"),
        fixed_in: None,
        uri: f.uri().map(str::to_owned),
        description: f.description().map(str::to_owned),
    }
}

fn enhanced(f: &EnhancedImageScanFinding) -> EcrFinding {
    let details = f.package_vulnerability_details();
    let package = details.and_then(|d| d.vulnerable_packages().first());
    EcrFinding {
        name: details
            .and_then(|d| d.vulnerability_id())
            .or(f.title())
            .unwrap_or_default()
            .to_owned(),
        severity: f.severity().unwrap_or("UNDEFINED").to_owned(),
        package: package.and_then(|p| p.name()).map(str::to_owned),
        version: package.and_then(|p| p.version()).map(str::to_owned),
        fixed_in: package
            .and_then(|p| p.fixed_in_version())
            .filter(|v| !v.is_empty() && *v != "NotAvailable")
            .map(str::to_owned),
        uri: details.and_then(|d| d.source_url()).map(str::to_owned),
        description: f.description().map(str::to_owned),
    }
}

/// How long to wait for a scan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Wait {
    /// Give up on a scan still running after this long.
    pub timeout: Duration,
    /// Give up on a scan that has not appeared after this long (at most `timeout`).
    pub not_found_grace: Duration,
    /// Time between two calls.
    pub interval: Duration,
}

impl Wait {
    /// `timeout` for the scan, two minutes (at most `timeout`) for it to appear, a
    /// call every five seconds (as the AWS CLI's `image-scan-complete` waiter).
    pub fn new(timeout: Duration) -> Wait {
        Wait {
            timeout,
            not_found_grace: timeout.min(Duration::from_secs(120)),
            interval: Duration::from_secs(5),
        }
    }
}

/// Call `describe` until the scan finishes, fails, or `wait` runs out. `elapsed` is
/// the time since the wait began; `sleep` waits (both are seams for tests).
pub fn wait_for(
    repository: &str,
    digest: &str,
    wait: &Wait,
    mut describe: impl FnMut() -> Result<Observation, AwsError>,
    elapsed: impl Fn() -> Duration,
    mut sleep: impl FnMut(Duration),
) -> Result<EcrScan, AwsError> {
    let grace = wait.not_found_grace.min(wait.timeout);
    loop {
        let observed = describe()?;
        let waited = elapsed();
        let limit = match observed {
            Observation::Finished(scan) => return Ok(scan),
            Observation::Failed {
                status,
                description,
            } => {
                return Err(AwsError::ScanFailed {
                    repository: repository.to_owned(),
                    digest: digest.to_owned(),
                    status,
                    description,
                })
            }
            Observation::NotFound if waited >= grace => {
                return Err(AwsError::ScanNotFound {
                    repository: repository.to_owned(),
                    digest: digest.to_owned(),
                    waited,
                })
            }
            Observation::Pending { status } if waited >= wait.timeout => {
                return Err(AwsError::ScanTimeout {
                    repository: repository.to_owned(),
                    digest: digest.to_owned(),
                    status,
                    waited,
                })
            }
            Observation::NotFound => grace,
            Observation::Pending { .. } => wait.timeout,
        };
        sleep(wait.interval.min(limit - waited));
    }
}

/// Wait for ECR's scan of `repository@digest` in `registry` (see [`Wait::new`]) and
/// return its findings.
pub fn scan_findings(
    registry: &EcrRegistry,
    repository: &str,
    digest: &str,
    timeout: Duration,
) -> Result<EcrScan, AwsError> {
    let start = Instant::now();
    with_runtime(|rt| {
        let client = rt.block_on(client(registry));
        wait_for(
            repository,
            digest,
            &Wait::new(timeout),
            || rt.block_on(describe(&client, registry, repository, digest)),
            || start.elapsed(),
            std::thread::sleep,
        )
    })
}

/// One `DescribeImageScanFindings`, with every page of a finished scan's findings.
async fn describe(
    client: &aws_sdk_ecr::Client,
    registry: &EcrRegistry,
    repository: &str,
    digest: &str,
) -> Result<Observation, AwsError> {
    let call = |token: Option<String>| {
        client
            .describe_image_scan_findings()
            .registry_id(&registry.account)
            .repository_name(repository)
            .image_id(ImageIdentifier::builder().image_digest(digest).build())
            .max_results(1000)
            .set_next_token(token)
            .send()
    };
    let first = match call(None).await {
        Ok(out) => out,
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_scan_not_found_exception()) =>
        {
            return Ok(Observation::NotFound)
        }
        Err(e) => return Err(AwsError::api("DescribeImageScanFindings", registry, &e)),
    };
    let mut observed = observe(&first);
    let mut token = first.next_token().map(str::to_owned);
    if let Observation::Finished(scan) = &mut observed {
        while let Some(t) = token.take() {
            let page = call(Some(t))
                .await
                .map_err(|e| AwsError::api("DescribeImageScanFindings", registry, &e))?;
            scan.findings.extend(findings_of(&page));
            token = page.next_token().map(str::to_owned);
        }
    }
    Ok(observed)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use aws_sdk_ecr::types::{
        Attribute, FindingSeverity, ImageScanFindings, ImageScanStatus,
        PackageVulnerabilityDetails, VulnerablePackage,
    };
    use std::cell::Cell;

    fn answer(status: ScanStatus, findings: Option<ImageScanFindings>) -> Observation {
        let out = DescribeImageScanFindingsOutput::builder()
            .repository_name("app")
            .image_scan_status(
                ImageScanStatus::builder()
                    .status(status)
                    .description("ECR's words")
                    .build(),
            )
            .set_image_scan_findings(findings)
            .build();
        observe(&out)
    }

    /// A basic finding as AWS documents it: name, uri, severity, attributes.
    fn cve(name: &str, severity: FindingSeverity, package: &str) -> ImageScanFinding {
        ImageScanFinding::builder()
            .name(name)
            .uri(format!(
                "https://security-tracker.debian.org/tracker/{name}"
            ))
            .severity(severity)
            .attributes(
                Attribute::builder()
                    .key("package_version")
                    .value("1.2.3-1")
                    .build()
                    .unwrap(),
            )
            .attributes(
                Attribute::builder()
                    .key("package_name")
                    .value(package)
                    .build()
                    .unwrap(),
            )
            .attributes(
                Attribute::builder()
                    .key("CVSS2_SCORE")
                    .value("7.5")
                    .build()
                    .unwrap(),
            )
            .build()
    }

    fn complete() -> Observation {
        answer(
            ScanStatus::Complete,
            Some(
                ImageScanFindings::builder()
                    .finding_severity_counts(FindingSeverity::Critical, 1)
                    .finding_severity_counts(FindingSeverity::Low, 1)
                    .findings(cve("CVE-2024-0001", FindingSeverity::Critical, "openssl"))
                    .findings(cve("CVE-2024-0002", FindingSeverity::Low, "zlib"))
                    .build(),
            ),
        )
    }

    #[test]
    fn answers_become_observations() {
        assert_eq!(
            answer(ScanStatus::InProgress, None),
            Observation::Pending {
                status: "IN_PROGRESS".into()
            }
        );
        assert_eq!(
            answer(ScanStatus::Pending, None),
            Observation::Pending {
                status: "PENDING".into()
            }
        );
        for failed in [
            ScanStatus::Failed,
            ScanStatus::UnsupportedImage,
            ScanStatus::FindingsUnavailable,
        ] {
            assert_eq!(
                answer(failed.clone(), None),
                Observation::Failed {
                    status: failed.as_str().into(),
                    description: Some("ECR's words".into())
                }
            );
        }
        let Observation::Finished(scan) = complete() else {
            panic!("{:?}", complete());
        };
        assert_eq!(scan.status, "COMPLETE");
        assert_eq!(
            scan.severity_counts,
            BTreeMap::from([("CRITICAL".into(), 1), ("LOW".into(), 1)])
        );
        assert_eq!(
            scan.findings[0],
            EcrFinding {
                name: "CVE-2024-0001".into(),
                severity: "CRITICAL".into(),
                package: Some("openssl".into()),
                version: Some("1.2.3-1".into()),
                fixed_in: None,
                uri: Some("https://security-tracker.debian.org/tracker/CVE-2024-0001".into()),
                description: None,
            }
        );
        assert_eq!(scan.findings[1].severity, "LOW");
    }

    #[test]
    fn enhanced_findings_name_the_package_and_its_fix() {
        let finding = EnhancedImageScanFinding::builder()
            .severity("HIGH")
            .title("CVE-2024-0003 - curl")
            .description("A heap overflow.")
            .package_vulnerability_details(
                PackageVulnerabilityDetails::builder()
                    .vulnerability_id("CVE-2024-0003")
                    .source_url("https://nvd.nist.gov/vuln/detail/CVE-2024-0003")
                    .vulnerable_packages(
                        VulnerablePackage::builder()
                            .name("curl")
                            .version("8.0.0")
                            .fixed_in_version("8.0.1")
                            .build(),
                    )
                    .build(),
            )
            .build();
        let Observation::Finished(scan) = answer(
            ScanStatus::Active,
            Some(
                ImageScanFindings::builder()
                    .enhanced_findings(finding)
                    .build(),
            ),
        ) else {
            panic!("not finished");
        };
        assert_eq!(scan.status, "ACTIVE");
        assert_eq!(
            scan.findings,
            vec![EcrFinding {
                name: "CVE-2024-0003".into(),
                severity: "HIGH".into(),
                package: Some("curl".into()),
                version: Some("8.0.0".into()),
                fixed_in: Some("8.0.1".into()),
                uri: Some("https://nvd.nist.gov/vuln/detail/CVE-2024-0003".into()),
                description: Some("A heap overflow.".into()),
            }]
        );
    }

    /// Runs `wait_for` over scripted answers on a clock that only `sleep` moves;
    /// returns the result, the number of calls and the time slept.
    fn run(wait: Wait, script: Vec<Observation>) -> (Result<EcrScan, AwsError>, usize, Duration) {
        let now = Cell::new(Duration::ZERO);
        let calls = Cell::new(0);
        let result = wait_for(
            "app",
            "sha256:abc",
            &wait,
            || {
                let i = calls.get();
                calls.set(i + 1);
                // The last answer repeats.
                Ok(script[i.min(script.len() - 1)].clone())
            },
            || now.get(),
            |d| now.set(now.get() + d),
        );
        (result, calls.get(), now.get())
    }

    fn pending() -> Observation {
        Observation::Pending {
            status: "IN_PROGRESS".into(),
        }
    }

    #[test]
    fn waits_while_the_scan_runs_then_returns_its_findings() {
        let wait = Wait::new(Duration::from_secs(600));
        let (scan, calls, slept) = run(
            wait,
            vec![Observation::NotFound, pending(), pending(), complete()],
        );
        let scan = scan.unwrap();
        assert_eq!(scan.findings.len(), 2);
        assert_eq!((calls, slept), (4, Duration::from_secs(15)));
    }

    #[test]
    fn failed_scans_fail_at_once_and_name_the_status() {
        let (err, calls, _) = run(
            Wait::new(Duration::from_secs(600)),
            vec![
                pending(),
                Observation::Failed {
                    status: "UNSUPPORTED_IMAGE".into(),
                    description: Some("The operating system is not supported.".into()),
                },
            ],
        );
        let err = err.unwrap_err();
        assert_eq!(calls, 2);
        assert!(matches!(err, AwsError::ScanFailed { .. }), "{err}");
        assert_eq!(
            err.to_string(),
            "ECR could not scan app@sha256:abc: UNSUPPORTED_IMAGE (The operating system is not supported.)"
        );
    }

    #[test]
    fn a_scan_still_running_at_the_timeout_fails_with_its_status() {
        let wait = Wait::new(Duration::from_secs(12));
        let (err, calls, slept) = run(wait, vec![pending()]);
        let err = err.unwrap_err();
        // Calls at 0, 5, 10 and 12 s: the last sleep is cut to the deadline.
        assert_eq!((calls, slept), (4, Duration::from_secs(12)));
        assert_eq!(
            err.to_string(),
            "ECR's scan of app@sha256:abc is still IN_PROGRESS after 12s"
        );
    }

    #[test]
    fn a_scan_that_never_appears_fails_after_the_grace_period() {
        let wait = Wait::new(Duration::from_secs(600));
        assert_eq!(wait.not_found_grace, Duration::from_secs(120));
        let (err, _, slept) = run(wait, vec![Observation::NotFound]);
        assert_eq!(slept, Duration::from_secs(120));
        let err = err.unwrap_err();
        assert!(matches!(err, AwsError::ScanNotFound { .. }), "{err}");
        assert!(err.to_string().contains("scan on push"), "{err}");
        // An API error ends the wait with that error.
        let err = wait_for(
            "app",
            "sha256:abc",
            &wait,
            || {
                Err(AwsError::BadAnswer {
                    operation: "DescribeImageScanFindings",
                    account: "123456789012".into(),
                    message: "denied".into(),
                })
            },
            || Duration::ZERO,
            |_| panic!("no sleep after an error"),
        )
        .unwrap_err();
        assert!(matches!(err, AwsError::BadAnswer { .. }));
    }
}
