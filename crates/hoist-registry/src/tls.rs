//! HTTPS for the registry: PEM certificate chain and key loaded into rustls (ring
//! provider, TLS 1.2 and 1.3, ALPN `http/1.1`), and a listener that completes each
//! handshake on its own task so a slow or silent client never holds up the others.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::rustls;
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;

use crate::auth::Auth;
use crate::config::TlsConfig;
use crate::Registry;

/// How long a client gets to finish the TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(30);

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

/// A loaded certificate and key, ready to accept connections.
#[derive(Clone)]
pub struct Tls {
    acceptor: TlsAcceptor,
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Tls")
    }
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        path: path.to_owned(),
        source,
    })
}

impl Tls {
    /// Load the PEM certificate chain (leaf first) and private key (PKCS#8, PKCS#1 or
    /// SEC1) named by `config`.
    pub fn load(config: &TlsConfig) -> Result<Tls, TlsError> {
        let pem_err = |path: &Path, message: String| TlsError::Pem {
            path: path.to_owned(),
            message,
        };
        let cert_bytes = read(&config.cert)?;
        let certs = CertificateDer::pem_slice_iter(&cert_bytes)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| pem_err(&config.cert, format!("invalid PEM: {e}")))?;
        if certs.is_empty() {
            return Err(pem_err(
                &config.cert,
                "no certificate found (expected a PEM \"BEGIN CERTIFICATE\" block)".to_owned(),
            ));
        }
        let key_bytes = read(&config.key)?;
        let key = PrivateKeyDer::from_pem_slice(&key_bytes).map_err(|e| {
            pem_err(
                &config.key,
                match e {
                    rustls_pki_types::pem::Error::NoItemsFound => {
                        "no private key found (expected a PEM \"BEGIN PRIVATE KEY\", \"BEGIN RSA PRIVATE KEY\" or \"BEGIN EC PRIVATE KEY\" block)".to_owned()
                    }
                    e => format!("invalid PEM: {e}"),
                },
            )
        })?;
        let pair = |message: String| TlsError::Pair {
            cert: config.cert.clone(),
            key: config.key.clone(),
            message,
        };
        let mut server = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map_err(|e| pair(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| pair(e.to_string()))?;
        server.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Tls {
            acceptor: TlsAcceptor::from(Arc::new(server)),
        })
    }
}

/// A listener handing axum connections whose TLS handshake has completed.
struct TlsListener {
    local: SocketAddr,
    rx: tokio::sync::mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.rx.recv().await {
            Some(conn) => conn,
            // The accept loop never ends; if it did, serve nothing more.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<SocketAddr> {
        Ok(self.local)
    }
}

fn tls_listener(listener: TcpListener, tls: Tls) -> std::io::Result<TlsListener> {
    let local = listener.local_addr()?;
    let (tx, rx) = tokio::sync::mpsc::channel(64);
    tokio::spawn(async move {
        loop {
            let (tcp, addr) = match listener.accept().await {
                Ok(c) => c,
                Err(e) => {
                    // Out of file descriptors and the like: back off, then go on.
                    tracing::warn!("accepting a connection: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            let (acceptor, tx) = (tls.acceptor.clone(), tx.clone());
            tokio::spawn(async move {
                match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                    Ok(Ok(stream)) => {
                        let _ = tx.send((stream, addr)).await;
                    }
                    Ok(Err(e)) => tracing::debug!("TLS handshake with {addr} failed: {e}"),
                    Err(_) => tracing::debug!("TLS handshake with {addr} timed out"),
                }
            });
        }
    });
    Ok(TlsListener { local, rx })
}

/// Serve the API over HTTPS on `listener` until the process ends. Challenges name an
/// `https://` realm.
pub async fn serve_tls(
    listener: TcpListener,
    registry: Registry,
    mut auth: Auth,
    tls: Tls,
) -> std::io::Result<()> {
    auth.https = true;
    let listener = tls_listener(listener, tls)?;
    axum::serve(listener, crate::http::router(registry, auth)).await
}

#[cfg(test)]
mod tests {
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
        Tls::load(&TlsConfig {
            cert: cert.clone(),
            key: key.clone(),
        })
        .unwrap();

        let missing = dir.path().join("nope.pem");
        let e = Tls::load(&TlsConfig {
            cert: missing,
            key: key.clone(),
        })
        .unwrap_err()
        .to_string();
        assert!(e.contains("nope.pem"), "{e}");

        let e = Tls::load(&TlsConfig {
            cert: key.clone(),
            key: key.clone(),
        })
        .unwrap_err()
        .to_string();
        assert!(e.contains("key.pem") && e.contains("no certificate"), "{e}");

        let e = Tls::load(&TlsConfig {
            cert: cert.clone(),
            key: cert.clone(),
        })
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("cert.pem") && e.contains("no private key"),
            "{e}"
        );

        let other = rcgen::generate_simple_self_signed(vec!["x".to_owned()]).unwrap();
        let other_key = write(dir.path(), "other.pem", &other.signing_key.serialize_pem());
        let e = Tls::load(&TlsConfig {
            cert,
            key: other_key,
        })
        .unwrap_err()
        .to_string();
        assert!(e.contains("cert.pem") && e.contains("other.pem"), "{e}");
    }
}
