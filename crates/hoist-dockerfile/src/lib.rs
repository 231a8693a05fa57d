//! The Dockerfile front end: parsing, word expansion, the instruction model and
//! `.dockerignore` matching. No I/O: callers hand in bytes and get data back.

pub mod expand;
pub mod ignore;
pub mod instruction;
pub mod parser;

pub use expand::{ExpandError, ExpandErrorKind, Lexer, VarLookup};
pub use ignore::{DockerIgnore, IgnoreError, IgnoreErrorKind, Matcher};
