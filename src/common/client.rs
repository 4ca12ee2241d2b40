//! Client side of the coordinator protocol for the 64-bit tools (`dmtcp_command`,
//! `dmtcp_launch`, `dmtcp_restart`): resolve the address, connect with a timeout, and exchange
//! framed messages (`dmtcp_proto::Msg` header plus payload).
use dmtcp_proto::{Msg, MSG_SIZE};
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::Duration;

/// A coordinator port from the environment that is not a port number: names the variable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadPort {
    pub value: String,
}

impl std::fmt::Display for BadPort {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}={:?} is not a port number", dmtcp_proto::env::COORD_PORT, self.value)
    }
}

impl std::error::Error for BadPort {}

/// The coordinator's host and port from the command line, else the environment
/// (`DMTCP_COORD_HOST`, `DMTCP_COORD_PORT`), else localhost:7779.
pub fn coord_address(host: Option<&str>, port: Option<u16>) -> Result<(String, u16), BadPort> {
    let host = match host {
        Some(h) => h.to_string(),
        None => std::env::var(dmtcp_proto::env::COORD_HOST)
            .ok()
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "127.0.0.1".to_string()),
    };
    let port = match port {
        Some(p) => p,
        None => match std::env::var(dmtcp_proto::env::COORD_PORT).ok().filter(|p| !p.is_empty()) {
            Some(p) => p.trim().parse().map_err(|_| BadPort { value: p.clone() })?,
            None => dmtcp_proto::DEFAULT_PORT,
        },
    };
    Ok((host, port))
}

pub fn resolve(host: &str, port: u16) -> io::Result<Vec<SocketAddr>> {
    let addrs: Vec<SocketAddr> = (host, port).to_socket_addrs()?.collect();
    if addrs.is_empty() {
        return Err(io::Error::new(io::ErrorKind::NotFound, format!("no address for {host}")));
    }
    Ok(addrs)
}

/// Connects to the coordinator, trying each address of `host`. When the user has the
/// coordinator's token (module `token`), it goes first, so a coordinator on another host
/// accepts what follows.
pub fn connect(host: &str, port: u16, timeout: Duration) -> io::Result<TcpStream> {
    let mut last = None;
    for addr in resolve(host, port)? {
        match TcpStream::connect_timeout(&addr, timeout) {
            Ok(mut s) => {
                s.set_nodelay(true).ok();
                if let Some(t) = super::token::for_client(port) {
                    send(&mut s, &Msg::new(dmtcp_proto::Kind::Token), t.as_bytes())?;
                }
                return Ok(s);
            }
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no address")))
}

/// Sends one message with its payload (whose length is put into the header).
pub fn send(s: &mut TcpStream, msg: &Msg, extra: &[u8]) -> io::Result<()> {
    let mut m = *msg;
    m.extra_len = extra.len() as u32;
    let mut buf = Vec::with_capacity(MSG_SIZE + extra.len());
    buf.extend_from_slice(&m.encode());
    buf.extend_from_slice(extra);
    s.write_all(&buf)
}

/// Receives one message and its payload; a malformed header is an `InvalidData` error.
pub fn recv(s: &mut TcpStream) -> io::Result<(Msg, Vec<u8>)> {
    let mut hdr = [0u8; MSG_SIZE];
    s.read_exact(&mut hdr)?;
    let msg = Msg::decode(&hdr).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
    let mut extra = vec![0u8; msg.extra_len as usize];
    s.read_exact(&mut extra)?;
    Ok((msg, extra))
}
