//! Relaying over TCP: to a fake upstream on 127.0.0.1 that serves UDP and
//! TCP on one port, as a real resolver does, and counts what reaches it, so
//! each test sees which transport the responder used.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::rdata::A;
use hickory_proto::rr::{RData, Record, RecordType};
use orca_dns::client::{query_message, query_tcp, query_udp};
use orca_dns::Responder;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::task::JoinSet;

use super::{addresses, orca_zone, start};

/// The full answer the fake gives for any name: more than its truncated
/// UDP reply holds, so a test can tell which one came back.
const FULL: [Ipv4Addr; 3] = [
    Ipv4Addr::new(198, 51, 100, 1),
    Ipv4Addr::new(198, 51, 100, 2),
    Ipv4Addr::new(198, 51, 100, 3),
];

/// What the fake does with a UDP query.
#[derive(Clone, Copy)]
enum Udp {
    /// Replies with TC set and only the first address, as a server whose
    /// answer does not fit in the client's UDP payload.
    Truncated,
    /// Reads and counts the query, never replies: a TCP-only upstream.
    Silent,
}

/// What the fake does with a TCP connection.
#[derive(Clone, Copy)]
enum Tcp {
    /// Answers each query on it in full.
    Full,
    /// Closes it unanswered: an upstream whose TCP side is broken.
    Closes,
}

/// A fake upstream; its tasks end when it is dropped.
struct FakeUpstream {
    addr: SocketAddr,
    udp_queries: Arc<AtomicUsize>,
    tcp_connections: Arc<AtomicUsize>,
    _tasks: JoinSet<()>,
}

impl FakeUpstream {
    async fn start(udp: Udp, tcp: Tcp) -> Self {
        let (listener, socket) = bind_one_port().await;
        let addr = socket.local_addr().expect("udp addr");
        let udp_queries = Arc::new(AtomicUsize::new(0));
        let tcp_connections = Arc::new(AtomicUsize::new(0));
        let mut tasks = JoinSet::new();
        tasks.spawn(serve_udp(socket, udp, udp_queries.clone()));
        tasks.spawn(serve_tcp(listener, tcp, tcp_connections.clone()));
        Self {
            addr,
            udp_queries,
            tcp_connections,
            _tasks: tasks,
        }
    }

    fn udp_queries(&self) -> usize {
        self.udp_queries.load(Ordering::SeqCst)
    }

    fn tcp_connections(&self) -> usize {
        self.tcp_connections.load(Ordering::SeqCst)
    }
}

/// A TCP listener and a UDP socket on the same 127.0.0.1 port. The port
/// the kernel picks for TCP may be taken for UDP: then try another.
async fn bind_one_port() -> (TcpListener, UdpSocket) {
    for _ in 0..20 {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind tcp");
        let addr = listener.local_addr().expect("tcp addr");
        if let Ok(socket) = UdpSocket::bind(addr).await {
            return (listener, socket);
        }
    }
    panic!("no 127.0.0.1 port free for both udp and tcp in 20 tries");
}

/// The fake's reply to `query`: every address in `FULL` for its question,
/// or with `truncated` only the first and TC set.
fn reply(query: &[u8], truncated: bool) -> Vec<u8> {
    let query = Message::from_vec(query).expect("fake upstream: undecodable query");
    let mut reply = Message::response(query.metadata.id, query.metadata.op_code);
    reply.metadata.recursion_desired = query.metadata.recursion_desired;
    reply.metadata.recursion_available = true;
    reply.metadata.truncation = truncated;
    let question = query.queries.first().expect("fake upstream: no question");
    reply.add_query(question.clone());
    let count = if truncated { 1 } else { FULL.len() };
    for address in &FULL[..count] {
        reply.add_answer(Record::from_rdata(
            question.name().clone(),
            30,
            RData::A(A(*address)),
        ));
    }
    reply.to_vec().expect("fake upstream: encode reply")
}

async fn serve_udp(socket: UdpSocket, mode: Udp, queries: Arc<AtomicUsize>) {
    let mut buf = vec![0u8; usize::from(u16::MAX)];
    while let Ok((len, peer)) = socket.recv_from(&mut buf).await {
        queries.fetch_add(1, Ordering::SeqCst);
        if let Udp::Truncated = mode {
            let _ = socket.send_to(&reply(&buf[..len], true), peer).await;
        }
    }
}

async fn serve_tcp(listener: TcpListener, mode: Tcp, connections: Arc<AtomicUsize>) {
    let mut streams = JoinSet::new();
    while let Ok((stream, _)) = listener.accept().await {
        connections.fetch_add(1, Ordering::SeqCst);
        if let Tcp::Full = mode {
            streams.spawn(answer_stream(stream));
        }
    }
}

/// Answers length-prefixed queries until the peer closes.
async fn answer_stream(mut stream: TcpStream) {
    while let Ok(len) = stream.read_u16().await {
        let mut query = vec![0u8; usize::from(len)];
        if stream.read_exact(&mut query).await.is_err() {
            return;
        }
        let full = reply(&query, false);
        let mut framed = u16::try_from(full.len())
            .expect("fake reply under 64 KiB")
            .to_be_bytes()
            .to_vec();
        framed.extend_from_slice(&full);
        if stream.write_all(&framed).await.is_err() {
            return;
        }
    }
}

fn responder(upstreams: Vec<SocketAddr>) -> Responder {
    Responder::new(orca_zone(), upstreams).with_upstream_timeout(Duration::from_secs(2))
}

#[tokio::test]
async fn a_truncated_udp_reply_is_asked_again_over_tcp() {
    let upstream = FakeUpstream::start(Udp::Truncated, Tcp::Full).await;
    let dns = start(responder(vec![upstream.addr])).await;

    let reply = dns.ask("big.example.", RecordType::A).await;
    assert_eq!(reply.metadata.response_code, ResponseCode::NoError);
    assert!(!reply.metadata.truncation, "the full reply is relayed");
    assert_eq!(addresses(&reply.answers), FULL);
    assert_eq!(upstream.udp_queries(), 1);
    assert_eq!(upstream.tcp_connections(), 1, "the retry went over tcp");
    dns.stop().await;
}

#[tokio::test]
async fn a_tcp_client_is_relayed_over_tcp() {
    let upstream = FakeUpstream::start(Udp::Silent, Tcp::Full).await;
    // A UDP relay would wait this out and answer SERVFAIL.
    let dns = start(responder(vec![upstream.addr])).await;

    let query = query_message("big.example.", RecordType::A).expect("query");
    let reply = query_tcp(dns.tcp, &query).await.expect("reply");
    assert_eq!(reply.metadata.id, query.metadata.id);
    assert_eq!(reply.metadata.response_code, ResponseCode::NoError);
    assert_eq!(addresses(&reply.answers), FULL);
    assert_eq!(upstream.udp_queries(), 0, "nothing went over udp");
    assert_eq!(upstream.tcp_connections(), 1);
    dns.stop().await;
}

#[tokio::test]
async fn an_upstream_failing_the_tcp_retry_is_skipped_for_the_next() {
    let broken = FakeUpstream::start(Udp::Truncated, Tcp::Closes).await;
    let good = FakeUpstream::start(Udp::Truncated, Tcp::Full).await;
    let dns = start(responder(vec![broken.addr, good.addr])).await;

    let reply = dns.ask("big.example.", RecordType::A).await;
    assert_eq!(reply.metadata.response_code, ResponseCode::NoError);
    assert_eq!(addresses(&reply.answers), FULL);
    assert_eq!(broken.udp_queries(), 1);
    assert_eq!(broken.tcp_connections(), 1, "the broken one was retried");
    assert_eq!(good.udp_queries(), 1);
    assert_eq!(good.tcp_connections(), 1);
    dns.stop().await;
}

#[tokio::test]
async fn a_truncated_reply_is_passed_on_when_no_tcp_retry_succeeds() {
    // The client then retries over TCP itself, which we relay over TCP.
    let upstream = FakeUpstream::start(Udp::Truncated, Tcp::Closes).await;
    let dns = start(responder(vec![upstream.addr])).await;

    let query = query_message("big.example.", RecordType::A).expect("query");
    let reply = query_udp(dns.udp, &query).await.expect("reply");
    assert_eq!(reply.metadata.response_code, ResponseCode::NoError);
    assert!(reply.metadata.truncation, "TC tells the client to use tcp");
    assert_eq!(addresses(&reply.answers), FULL[..1]);
    assert_eq!(upstream.tcp_connections(), 1);
    dns.stop().await;
}
