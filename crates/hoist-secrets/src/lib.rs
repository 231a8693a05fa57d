//! hoist's secret store: named values sealed at rest under a key file kept 0600 in
//! hoist's home, handed to the deploy controller to inject into tasks at start.
//!
//! It must never log, print or serialize a secret's value, and knows nothing of
//! services or containers.
