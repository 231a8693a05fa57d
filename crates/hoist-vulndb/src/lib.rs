//! The vulnerability database: OSV advisories imported, indexed and matched.
//!
//! It owns importing OSV advisories (a directory of JSON files, an osv.dev
//! `all.zip` export, a URL), storing them in an indexed local database, scoring
//! severity (CVSS v3.x and v4 vectors), and matching a package name and version
//! of an ecosystem against advisories with OSV semantics. It must not read images
//! or know how packages were found: callers pass (ecosystem, name, version).

pub mod cvss;
mod db;
pub mod ecosystem;
pub mod matching;
pub mod osv;

pub use cvss::Severity;
pub use db::{osv_url, Db, DbError, ImportReport, Match, SourceStatus, DB_FILE};
