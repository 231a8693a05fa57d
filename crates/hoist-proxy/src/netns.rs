//! Sockets created inside another network namespace.
//!
//! A socket belongs to the namespace of the thread that created it, for its whole
//! life. A dedicated std thread per namespace enters it once with `setns(CLONE_NEWNET)`
//! and then only creates unconnected, non-blocking TCP sockets on request; the caller
//! connects them from Tokio. No Tokio worker ever changes namespace.

use std::fs::File;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::mpsc;

use rustix::thread::{move_into_link_name_space, LinkNameSpaceType};
use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::oneshot;

type Reply = oneshot::Sender<io::Result<std::net::TcpStream>>;

/// A thread living in one network namespace, making sockets there.
#[derive(Debug)]
pub(crate) struct NetnsDialer {
    path: PathBuf,
    requests: mpsc::Sender<Reply>,
}

impl NetnsDialer {
    /// Starts the thread. Entering the namespace happens on the thread, at the first
    /// request, and is retried on later requests while it fails (the bind mount may not
    /// exist yet). Dropping the dialer ends the thread.
    pub(crate) fn spawn(path: &Path) -> io::Result<NetnsDialer> {
        let (tx, rx) = mpsc::channel::<Reply>();
        let thread_path = path.to_owned();
        std::thread::Builder::new()
            .name("hoist-netns".to_owned())
            .spawn(move || {
                let mut entered = false;
                while let Ok(reply) = rx.recv() {
                    if !entered {
                        if let Err(e) = enter(&thread_path) {
                            let _ = reply.send(Err(e));
                            continue;
                        }
                        entered = true;
                    }
                    let _ = reply.send(new_socket());
                }
            })?;
        Ok(NetnsDialer {
            path: path.to_owned(),
            requests: tx,
        })
    }

    /// Connects to `127.0.0.1:port` inside the namespace.
    pub(crate) async fn connect(&self, port: u16) -> io::Result<TcpStream> {
        let (tx, rx) = oneshot::channel();
        let gone = || io::Error::other(format!("netns thread for {} is gone", self.path.display()));
        self.requests.send(tx).map_err(|_| gone())?;
        let std_stream = rx.await.map_err(|_| gone())??;
        let socket = TcpSocket::from_std_stream(std_stream);
        socket.set_nodelay(true)?;
        socket
            .connect(SocketAddr::from((Ipv4Addr::LOCALHOST, port)))
            .await
    }
}

fn enter(path: &Path) -> io::Result<()> {
    let ns = File::open(path)
        .map_err(|e| io::Error::new(e.kind(), format!("open {}: {e}", path.display())))?;
    move_into_link_name_space(
        std::os::fd::AsFd::as_fd(&ns),
        Some(LinkNameSpaceType::Network),
    )
    .map_err(|e| io::Error::other(format!("setns {}: {e}", path.display())))
}

fn new_socket() -> io::Result<std::net::TcpStream> {
    let socket = Socket::new(Domain::IPV4, Type::STREAM, Some(Protocol::TCP))?;
    socket.set_nonblocking(true)?;
    Ok(socket.into())
}
