//! Finding secrets (private keys, cloud and forge tokens, high-entropy
//! assignments) in file contents.
//!
//! It owns the rules and the matching: given a path and its bytes, it reports each
//! secret with its rule, line and a redacted excerpt, honouring allow rules. It
//! must not walk images or directories itself (callers feed it files) and must
//! never return or log a secret's full value. Not to be confused with
//! `hoist-secrets`, the sealed store of deployment secrets.
