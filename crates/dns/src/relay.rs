//! Relaying a name that is not ours: the client's query, byte for byte, to
//! each upstream in turn. Sending the raw bytes keeps the client's id, flags
//! and EDNS options, so the upstream answers as if asked directly.
//!
//! The transport follows DNS's own rules (RFC 1035 4.2, RFC 7766 5): a
//! query that came over TCP goes upstream over TCP, and a UDP reply with TC
//! set is asked again over TCP. Relaying a truncated reply instead would
//! loop: the client retries over TCP to us, and we would ask over UDP again.

use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use hickory_proto::op::{Message, MessageType};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tracing::debug;

/// How a query reaches an upstream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Transport {
    /// A datagram, retried over TCP when the reply is truncated.
    Udp,
    /// A stream with each message prefixed by its length in two bytes.
    Tcp,
}

/// The first full reply any upstream gives, trying them in order, each
/// exchange (UDP, then TCP if truncated) given `timeout`. When no upstream
/// gives a full reply, the first truncated one (its TC bit tells the client
/// to retry over TCP); None when every one failed or stayed silent.
pub(crate) async fn forward(
    upstreams: &[SocketAddr],
    query: &[u8],
    id: u16,
    transport: Transport,
    timeout: Duration,
) -> Option<Message> {
    let mut truncated = None;
    for &upstream in upstreams {
        let Some(reply) = exchange(upstream, transport, query, id, timeout).await else {
            continue;
        };
        if !reply.metadata.truncation || transport == Transport::Tcp {
            return Some(reply);
        }
        debug!(%upstream, "dns upstream reply truncated, asking over tcp");
        if let Some(full) = exchange(upstream, Transport::Tcp, query, id, timeout).await {
            return Some(full);
        }
        truncated.get_or_insert(reply);
    }
    truncated
}

/// One query to one upstream; None (logged) if it failed or timed out.
async fn exchange(
    upstream: SocketAddr,
    transport: Transport,
    query: &[u8],
    id: u16,
    timeout: Duration,
) -> Option<Message> {
    let result = match transport {
        Transport::Udp => tokio::time::timeout(timeout, ask_udp(upstream, query, id)).await,
        Transport::Tcp => tokio::time::timeout(timeout, ask_tcp(upstream, query, id)).await,
    };
    match result {
        Ok(Ok(reply)) => Some(reply),
        Ok(Err(error)) => {
            debug!(%upstream, ?transport, %error, "dns upstream failed");
            None
        }
        Err(_) => {
            debug!(%upstream, ?transport, ?timeout, "dns upstream timed out");
            None
        }
    }
}

async fn ask_udp(upstream: SocketAddr, query: &[u8], id: u16) -> io::Result<Message> {
    let local: SocketAddr = if upstream.is_ipv4() {
        (Ipv4Addr::UNSPECIFIED, 0).into()
    } else {
        (Ipv6Addr::UNSPECIFIED, 0).into()
    };
    // A fresh socket per query gives each its own random source port, and
    // connect() makes the kernel drop datagrams from anyone but the upstream
    // (and report its ICMP refusals, so a dead upstream fails fast).
    let socket = UdpSocket::bind(local).await?;
    socket.connect(upstream).await?;
    socket.send(query).await?;
    let mut buf = vec![0u8; usize::from(u16::MAX)];
    loop {
        let len = socket.recv(&mut buf).await?;
        match Message::from_vec(&buf[..len]) {
            Ok(reply) if is_reply_to(&reply, id) => return Ok(reply),
            // A late reply to an earlier query or garbage: keep waiting
            // for ours until the caller's timeout.
            Ok(_) => debug!(%upstream, "dns upstream reply with another id ignored"),
            Err(error) => debug!(%upstream, %error, "undecodable dns upstream reply ignored"),
        }
    }
}

/// A fresh connection per query: relayed names are few next to the zone's,
/// and a pooled connection would need its own idle and failure handling.
async fn ask_tcp(upstream: SocketAddr, query: &[u8], id: u16) -> io::Result<Message> {
    let len = u16::try_from(query.len())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "dns query over 64 KiB"))?;
    let mut stream = TcpStream::connect(upstream).await?;
    let mut framed = Vec::with_capacity(query.len() + 2);
    framed.extend_from_slice(&len.to_be_bytes());
    framed.extend_from_slice(query);
    stream.write_all(&framed).await?;
    let reply_len = stream.read_u16().await?;
    let mut buf = vec![0u8; usize::from(reply_len)];
    stream.read_exact(&mut buf).await?;
    // Only our query went down this connection, so anything but its reply
    // is a broken upstream: fail now and let the next one try.
    let reply =
        Message::from_vec(&buf).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
    if !is_reply_to(&reply, id) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "dns upstream replied with id {} to query {id}",
                reply.metadata.id
            ),
        ));
    }
    Ok(reply)
}

fn is_reply_to(reply: &Message, id: u16) -> bool {
    reply.metadata.id == id && reply.metadata.message_type == MessageType::Response
}
