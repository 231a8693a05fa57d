//! Output formats. Each writes a [`Report`](crate::Report) to a `Write`; none
//! changes it.

pub mod cyclonedx;
pub mod sarif;
pub mod spdx;
pub mod table;

use std::io::{self, Write};

use time::OffsetDateTime;

use crate::model::Report;

/// Run facts that SBOM formats record, passed in so output is reproducible in
/// tests.
#[derive(Debug, Clone)]
pub struct DocumentInfo {
    /// When the document was made.
    pub created: OffsetDateTime,
    /// A unique id (CycloneDX serial number, SPDX namespace).
    pub id: uuid::Uuid,
    /// hoist's version.
    pub tool_version: String,
}

impl DocumentInfo {
    /// Now, a random id, and `tool_version`.
    pub fn now(tool_version: &str) -> DocumentInfo {
        DocumentInfo {
            created: OffsetDateTime::now_utc(),
            id: uuid::Uuid::new_v4(),
            tool_version: tool_version.to_owned(),
        }
    }

    /// The creation time in RFC 3339, to the second.
    pub fn timestamp(&self) -> String {
        let t = self.created.replace_nanosecond(0).unwrap_or(self.created);
        t.format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_else(|_| "1970-01-01T00:00:00Z".to_owned())
    }
}

/// The whole report as pretty JSON (hoist's own format).
pub fn json(report: &Report, out: &mut dyn Write) -> io::Result<()> {
    serde_json::to_writer_pretty(&mut *out, report)?;
    writeln!(out)
}
