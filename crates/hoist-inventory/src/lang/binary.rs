//! Executables: Go build info (`.go.buildinfo`) and cargo-auditable data
//! (`.dep-v0`) in ELF files.
//!
//! A file that is not ELF (a script, a non-Linux binary) has no packages; an ELF
//! file that cannot be parsed is an error. Sections are found by name, so a binary
//! whose section headers were stripped shows nothing.

use std::path::Path;

use object::{Object, ObjectSection, ObjectSegment};

use super::{cargo, fail, golang, LangError};
use crate::package::Package;

/// The packages built into an executable.
pub fn parse(path: &Path, data: &[u8]) -> Result<Vec<Package>, LangError> {
    if !data.starts_with(b"\x7fELF") {
        return Ok(Vec::new());
    }
    let file =
        object::File::parse(data).map_err(|e| fail(path, None, format!("bad ELF file: {e}")))?;
    let mut out = Vec::new();
    if let Some(section) = file.section_by_name(".go.buildinfo") {
        let blob = section
            .data()
            .map_err(|e| fail(path, None, format!(".go.buildinfo: {e}")))?;
        // Pre-1.18 build info points into the loaded image: read through segments.
        let segments: Vec<_> = file.segments().collect();
        let read_at = |addr: u64, len: u64| -> Option<&[u8]> {
            segments
                .iter()
                .find_map(|s| s.data_range(addr, len).ok().flatten())
        };
        out.extend(golang::parse_buildinfo(path, blob, &read_at)?);
    }
    if let Some(section) = file.section_by_name(".dep-v0") {
        let blob = section
            .data()
            .map_err(|e| fail(path, None, format!(".dep-v0: {e}")))?;
        out.extend(cargo::parse_audit_data(path, blob)?);
    }
    Ok(out)
}
