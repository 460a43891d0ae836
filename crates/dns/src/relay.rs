//! Relaying a name that is not ours: the client's query, byte for byte, to
//! each upstream in turn over UDP. Sending the raw bytes keeps the client's
//! id, flags and EDNS options, so the upstream answers as if asked directly.

use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use hickory_proto::op::{Message, MessageType};
use tokio::net::UdpSocket;
use tracing::debug;

/// The first reply any upstream gives, trying them in order with `timeout`
/// each; None when every one failed or stayed silent.
pub(crate) async fn forward(
    upstreams: &[SocketAddr],
    query: &[u8],
    id: u16,
    timeout: Duration,
) -> Option<Message> {
    for &upstream in upstreams {
        match tokio::time::timeout(timeout, ask(upstream, query, id)).await {
            Ok(Ok(reply)) => return Some(reply),
            Ok(Err(error)) => debug!(%upstream, %error, "dns upstream failed"),
            Err(_) => debug!(%upstream, ?timeout, "dns upstream timed out"),
        }
    }
    None
}

async fn ask(upstream: SocketAddr, query: &[u8], id: u16) -> io::Result<Message> {
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
            Ok(reply)
                if reply.metadata.id == id
                    && reply.metadata.message_type == MessageType::Response =>
            {
                return Ok(reply)
            }
            // A late reply to an earlier query or garbage: keep waiting
            // for ours until the caller's timeout.
            Ok(_) => debug!(%upstream, "dns upstream reply with another id ignored"),
            Err(error) => debug!(%upstream, %error, "undecodable dns upstream reply ignored"),
        }
    }
}
