//! `hoist scan` and `hoist sbom`: one pass over an image or a directory that
//! composes the scanner crates, then the policy gate and the report formats.
//!
//! It owns the scan-level model ([`Report`]: packages, vulnerabilities, secrets and
//! misconfigurations with one [`Severity`] scale), the ignore file
//! (`.hoistignore`, [`ignore`]), the gate (`--fail-on`, [`gate`]) and the output
//! formats ([`format`]: table, JSON, SARIF 2.1.0, CycloneDX 1.5, SPDX 2.3). Finding
//! things is the other crates' job, and it must not re-implement them:
//! `hoist-inventory` lists packages, `hoist-vulndb` matches them, `hoist-secretscan`
//! finds secrets, `hoist-lint` finds misconfigurations. It never touches the network.

pub mod collect;
pub mod ecosystem;
pub mod format;
pub mod gate;
pub mod ignore;
pub mod model;
pub mod purl;
pub mod scan;

pub use model::{Misconfig, Report, ScanTarget, Secret, Severity, Vulnerability};
