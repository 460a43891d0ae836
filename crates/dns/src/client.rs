//! A minimal stub client, for tests and benchmarks that need to ask a
//! [`crate::Responder`] something (the agent's end-to-end tests, a DNS load
//! test); not a resolver: one question, one server, no retries.

use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use hickory_proto::op::{Message, MessageType, Query};
use hickory_proto::rr::{Name, RData, RecordType};
use hickory_proto::ProtoError;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

/// How long a query waits for its reply: long enough for a loaded CI
/// machine, short enough that a lost reply fails a test instead of hanging.
pub const QUERY_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("invalid dns name {name:?}: {source}")]
    Name { name: String, source: ProtoError },
    #[error("dns query to {server}: {source}")]
    Io {
        server: SocketAddr,
        source: io::Error,
    },
    #[error("dns query to {server}: encoding: {source}")]
    Encode {
        server: SocketAddr,
        source: ProtoError,
    },
    #[error("dns query to {server}: no reply in {QUERY_TIMEOUT:?}")]
    Timeout { server: SocketAddr },
}

/// A query message for `name` and `qtype` with a random id and recursion
/// desired, as a stub resolver sends it.
pub fn query_message(name: &str, qtype: RecordType) -> Result<Message, ClientError> {
    let parsed = Name::from_ascii(name).map_err(|source| ClientError::Name {
        name: name.to_owned(),
        source,
    })?;
    let mut message = Message::query();
    message.metadata.recursion_desired = true;
    message.add_query(Query::query(parsed, qtype));
    Ok(message)
}

/// Asks `server` over UDP and returns its reply to this query (one with
/// the query's id; anything else is ignored until [`QUERY_TIMEOUT`]).
pub async fn query_udp(server: SocketAddr, query: &Message) -> Result<Message, ClientError> {
    let io = |source| ClientError::Io { server, source };
    let bytes = query
        .to_vec()
        .map_err(|source| ClientError::Encode { server, source })?;
    let exchange = async {
        let local: SocketAddr = if server.is_ipv4() {
            (Ipv4Addr::UNSPECIFIED, 0).into()
        } else {
            (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
        };
        let socket = UdpSocket::bind(local).await.map_err(io)?;
        socket.connect(server).await.map_err(io)?;
        socket.send(&bytes).await.map_err(io)?;
        let mut buf = vec![0u8; usize::from(u16::MAX)];
        loop {
            let len = socket.recv(&mut buf).await.map_err(io)?;
            if let Ok(reply) = Message::from_vec(&buf[..len]) {
                if reply.metadata.id == query.metadata.id
                    && reply.metadata.message_type == MessageType::Response
                {
                    return Ok(reply);
                }
            }
        }
    };
    tokio::time::timeout(QUERY_TIMEOUT, exchange)
        .await
        .map_err(|_| ClientError::Timeout { server })?
}

/// Asks `server` over TCP (RFC 1035 4.2.2: each message prefixed by its
/// length in two bytes) and returns its reply.
pub async fn query_tcp(server: SocketAddr, query: &Message) -> Result<Message, ClientError> {
    let io = |source| ClientError::Io { server, source };
    let bytes = query
        .to_vec()
        .map_err(|source| ClientError::Encode { server, source })?;
    let len = u16::try_from(bytes.len()).map_err(|_| {
        io(io::Error::new(
            io::ErrorKind::InvalidInput,
            "query over 64 KiB",
        ))
    })?;
    let exchange = async {
        let mut stream = TcpStream::connect(server).await.map_err(io)?;
        let mut framed = Vec::with_capacity(bytes.len() + 2);
        framed.extend_from_slice(&len.to_be_bytes());
        framed.extend_from_slice(&bytes);
        stream.write_all(&framed).await.map_err(io)?;
        let reply_len = stream.read_u16().await.map_err(io)?;
        let mut reply = vec![0u8; usize::from(reply_len)];
        stream.read_exact(&mut reply).await.map_err(io)?;
        Message::from_vec(&reply).map_err(|e| io(io::Error::new(io::ErrorKind::InvalidData, e)))
    };
    tokio::time::timeout(QUERY_TIMEOUT, exchange)
        .await
        .map_err(|_| ClientError::Timeout { server })?
}

/// The addresses `server` gives for `name` over UDP (empty for NXDOMAIN or
/// NODATA; look at [`query_udp`]'s reply to tell them apart).
pub async fn query_a(server: SocketAddr, name: &str) -> Result<Vec<Ipv4Addr>, ClientError> {
    let reply = query_udp(server, &query_message(name, RecordType::A)?).await?;
    Ok(reply
        .answers
        .iter()
        .filter_map(|record| match &record.data {
            RData::A(a) => Some(a.0),
            _ => None,
        })
        .collect())
}
