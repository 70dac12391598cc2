//! `mtl ui`: a live dashboard over a results database, served from the binary.
//!
//! [`serve`] binds an address, then answers the page (`assets/`, embedded) and its JSON
//! API ([`api`], [`comparison`]) until the process ends. The database is opened
//! read-only and its runs are read again only when it changed ([`data`]); every
//! request passes [`http`]'s guard (method, size, `Host`, access token).
//!
//! ```no_run
//! let options = mtl_ui::UiOptions::local("mtl.db".into(), 8765);
//! mtl_ui::serve(options, |bound| println!("{}", bound.url))?;
//! # Ok::<(), mtl_ui::UiError>(())
//! ```
#![warn(missing_docs)]

pub mod api;
pub mod comparison;
pub mod data;
pub mod http;

use std::io::Read;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;

/// Where and what to serve.
#[derive(Clone, Debug)]
pub struct UiOptions {
    /// The results database.
    pub db: PathBuf,
    /// The address to listen on.
    pub host: IpAddr,
    /// The port (0: any free one).
    pub port: u16,
    /// The access token every request must carry; required off loopback.
    pub token: Option<String>,
    /// This machine's name as runs record their owner (`localhost` if unknown).
    pub host_name: String,
}

impl UiOptions {
    /// On 127.0.0.1, without a token.
    pub fn local(db: PathBuf, port: u16) -> UiOptions {
        UiOptions { db, host: IpAddr::V4(Ipv4Addr::LOCALHOST), port, token: None, host_name: "localhost".into() }
    }
}

/// The server once it listens.
#[derive(Clone, Debug)]
pub struct Bound {
    /// The address it listens on (the real port when 0 was asked for).
    pub addr: SocketAddr,
    /// The page's URL, with the token when there is one.
    pub url: String,
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum UiError {
    /// The address is taken or not this machine's.
    #[error("cannot listen on {addr}: {source} (another `mtl ui`? pick another --port)")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The system's reason.
        source: std::io::Error,
    },
    /// Listening beyond loopback without an access token.
    #[error("listening on {0} needs an access token")]
    NoToken(IpAddr),
    /// The runtime or the connection loop failed.
    #[error("the dashboard server stopped: {0}")]
    Io(#[from] std::io::Error),
}

/// A fresh access token: 128 random bits from the system, as hex.
pub fn new_token() -> std::io::Result<String> {
    let mut bytes = [0u8; 16];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut bytes)?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// Listens, calls `ready` with the address, and serves until the process ends.
pub fn serve(options: UiOptions, ready: impl FnOnce(&Bound)) -> Result<(), UiError> {
    if !options.host.is_loopback() && options.token.is_none() {
        return Err(UiError::NoToken(options.host));
    }
    let addr = SocketAddr::new(options.host, options.port);
    let listener = std::net::TcpListener::bind(addr).map_err(|source| UiError::Bind { addr, source })?;
    let addr = listener.local_addr()?;
    listener.set_nonblocking(true)?;
    let port = addr.port();
    // Without a token the Host header must name this server, as a browser on this machine writes it.
    let allowed_hosts = match options.token {
        Some(_) => Vec::new(),
        None => vec![format!("{addr}"), format!("localhost:{port}")],
    };
    // Listening on every interface: other machines reach it by this machine's name.
    let shown = if addr.ip().is_unspecified() { format!("{}:{port}", options.host_name) } else { addr.to_string() };
    let url = match &options.token {
        Some(token) => format!("http://{shown}/?token={token}"),
        None => format!("http://{shown}/"),
    };
    let db = data::Database::new(&options.db);
    let shared = Arc::new(http::Shared { db, allowed_hosts, token: options.token, host_name: options.host_name });
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_io().enable_time().build()?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::from_std(listener)?;
        ready(&Bound { addr, url });
        axum::serve(listener, http::router(shared)).await
    })?;
    Ok(())
}

#[cfg(test)]
mod tests;
