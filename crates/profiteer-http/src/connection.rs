//! The listening socket and its address (TCP).

use std::net::{SocketAddr, TcpListener, TcpStream, ToSocketAddrs};

/// The listening socket. profiteer patch: TCP only (the poller threads
/// serve TCP sockets; upstream also listened on UNIX sockets).
pub enum Listener {
    Tcp(TcpListener),
}

impl Listener {
    pub(crate) fn local_addr(&self) -> std::io::Result<ListenAddr> {
        match self {
            Self::Tcp(l) => l.local_addr().map(ListenAddr::from),
        }
    }

    pub(crate) fn set_backlog(&self, backlog: usize) -> std::io::Result<()> {
        let backlog = backlog.min(65535) as i32;
        match self {
            Self::Tcp(l) => socket2::SockRef::from(l).listen(backlog),
        }
    }

    pub(crate) fn accept(&self) -> std::io::Result<(TcpStream, SocketAddr)> {
        match self {
            Self::Tcp(l) => l.accept(),
        }
    }
}

impl From<TcpListener> for Listener {
    fn from(s: TcpListener) -> Self {
        Self::Tcp(s)
    }
}

/// Where to listen: the addresses to try, in turn.
#[derive(Debug, Clone)]
pub enum ConfigListenAddr {
    IP(Vec<SocketAddr>),
}

impl ConfigListenAddr {
    pub fn from_socket_addrs<A: ToSocketAddrs>(addrs: A) -> std::io::Result<Self> {
        addrs.to_socket_addrs().map(|it| Self::IP(it.collect()))
    }

    pub(crate) fn bind(&self) -> std::io::Result<Listener> {
        match self {
            Self::IP(a) => TcpListener::bind(a.as_slice()).map(Listener::from),
        }
    }
}

/// The address the server listens on.
#[derive(Debug, Clone)]
pub enum ListenAddr {
    IP(SocketAddr),
}

impl ListenAddr {
    pub fn to_ip(self) -> Option<SocketAddr> {
        match self {
            Self::IP(s) => Some(s),
        }
    }
}

impl From<SocketAddr> for ListenAddr {
    fn from(s: SocketAddr) -> Self {
        Self::IP(s)
    }
}

impl std::fmt::Display for ListenAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::IP(s) => s.fmt(f),
        }
    }
}
