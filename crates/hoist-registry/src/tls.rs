//! HTTPS for the registry: PEM certificate chain and key loaded into rustls (ring
//! provider, TLS 1.2 and 1.3, ALPN `http/1.1`), and a listener that completes each
//! handshake on its own task so a slow or silent client never holds up the others.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;

use crate::auth::Auth;
use crate::config::TlsConfig;
use crate::Registry;

/// How long a client gets to finish the TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(30);

pub use hoist_tls::TlsError;

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

impl Tls {
    /// Load the PEM certificate chain (leaf first) and private key (PKCS#8, PKCS#1 or
    /// SEC1) named by `config`.
    pub fn load(config: &TlsConfig) -> Result<Tls, TlsError> {
        let server = hoist_tls::server_config(&config.cert, &config.key, &[b"http/1.1"])?;
        Ok(Tls {
            acceptor: TlsAcceptor::from(server),
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
