//! The Dockerfile front end: parsing, word expansion, the instruction model and
//! `.dockerignore` matching, all matching BuildKit's behaviour.
//!
//! - [`parser`] turns Dockerfile text into an AST of nodes that keep their line
//!   ranges: directives, continuations, JSON and shell forms, flags, heredocs,
//!   ONBUILD/HEALTHCHECK nesting. Its S-expression dump is checked byte for byte
//!   against BuildKit's own parser tests.
//! - [`instruction`] gives each node a type (FROM, RUN with its mounts, COPY/ADD
//!   with their flags...) and splits the file into stages with ARG scoping. Words
//!   stay unexpanded: the builder expands them with each step's environment.
//! - [`expand`] is the shell-word expander ([`Lexer`]): `$V`, `${V:-x}`, pattern
//!   trimming and replacement, quoting, word splitting, and which variables a word
//!   used (for cache keys).
//! - [`ignore`] is `.dockerignore` and `COPY --exclude` matching ([`DockerIgnore`],
//!   [`Matcher`]) with moby's semantics, in linear time.
//!
//! Errors carry the line and column and say what was expected. The crate does no
//! I/O: callers hand in text and get data back, so it is fuzzed and tested without a
//! file system; reading files and walking build contexts belongs to the builder.

pub mod expand;
pub mod ignore;
pub mod instruction;
pub mod parser;

pub use expand::{ExpandError, ExpandErrorKind, Lexer, VarLookup};
pub use ignore::{DockerIgnore, IgnoreError, IgnoreErrorKind, Matcher};
pub use instruction::{Dockerfile, Instruction, Stage};
pub use parser::{parse, Ast, Node, ParseError, ParseErrors, Position};
