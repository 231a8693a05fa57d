//! TLS server settings from PEM files, shared by everything hoist serves over
//! HTTPS (the registry, the proxy's listeners).
//!
//! It owns one job: read a PEM certificate chain (leaf first) and private key
//! (PKCS#8, PKCS#1 or SEC1), and build a rustls server configuration from them
//! (ring provider, TLS 1.2 and 1.3, the caller's ALPN protocols), with errors that
//! name the file and what is wrong with it. It must not accept connections or know
//! about HTTP: callers wrap the configuration in a `tokio_rustls::TlsAcceptor`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
pub use tokio_rustls;
use tokio_rustls::rustls;

/// A certificate or key that cannot be used, naming the file.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// The file could not be read.
    #[error("reading {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file holds no usable PEM certificate or key.
    #[error("{path}: {message}")]
    Pem {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// rustls refused the pair (e.g. the key does not match the certificate).
    #[error("certificate {cert} with key {key}: {message}")]
    Pair {
        /// The certificate file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
        /// rustls's reason.
        message: String,
    },
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        path: path.to_owned(),
        source,
    })
}

/// A server configuration for the certificate chain in `cert` and the key in
/// `key` (PEM files), offering `alpn` (e.g. `[b"h2", b"http/1.1"]`).
pub fn server_config(
    cert: &Path,
    key: &Path,
    alpn: &[&[u8]],
) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let pem_err = |path: &Path, message: String| TlsError::Pem {
        path: path.to_owned(),
        message,
    };
    let cert_bytes = read(cert)?;
    let certs = CertificateDer::pem_slice_iter(&cert_bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| pem_err(cert, format!("invalid PEM: {e}")))?;
    if certs.is_empty() {
        return Err(pem_err(
            cert,
            "no certificate found (expected a PEM \"BEGIN CERTIFICATE\" block)".to_owned(),
        ));
    }
    let key_bytes = read(key)?;
    let private = PrivateKeyDer::from_pem_slice(&key_bytes).map_err(|e| {
        pem_err(
            key,
            match e {
                rustls_pki_types::pem::Error::NoItemsFound => {
                    "no private key found (expected a PEM \"BEGIN PRIVATE KEY\", \"BEGIN RSA PRIVATE KEY\" or \"BEGIN EC PRIVATE KEY\" block)".to_owned()
                }
                e => format!("invalid PEM: {e}"),
            },
        )
    })?;
    let pair = |message: String| TlsError::Pair {
        cert: cert.to_owned(),
        key: key.to_owned(),
        message,
    };
    let mut server = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| pair(e.to_string()))?
    .with_no_client_auth()
    .with_single_cert(certs, private)
    .map_err(|e| pair(e.to_string()))?;
    server.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok(Arc::new(server))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    #[test]
    fn bad_files_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
        let cert = write(dir.path(), "cert.pem", &ck.cert.pem());
        let key = write(dir.path(), "key.pem", &ck.signing_key.serialize_pem());
        let ok = server_config(&cert, &key, &[b"h2", b"http/1.1"]).unwrap();
        assert_eq!(ok.alpn_protocols, [b"h2".to_vec(), b"http/1.1".to_vec()]);

        let missing = dir.path().join("nope.pem");
        let e = server_config(&missing, &key, &[]).unwrap_err().to_string();
        assert!(e.contains("nope.pem"), "{e}");

        let e = server_config(&key, &key, &[]).unwrap_err().to_string();
        assert!(e.contains("key.pem") && e.contains("no certificate"), "{e}");

        let e = server_config(&cert, &cert, &[]).unwrap_err().to_string();
        assert!(
            e.contains("cert.pem") && e.contains("no private key"),
            "{e}"
        );

        let other = rcgen::generate_simple_self_signed(vec!["x".to_owned()]).unwrap();
        let other_key = write(dir.path(), "other.pem", &other.signing_key.serialize_pem());
        let e = server_config(&cert, &other_key, &[])
            .unwrap_err()
            .to_string();
        assert!(e.contains("cert.pem") && e.contains("other.pem"), "{e}");
    }
}
