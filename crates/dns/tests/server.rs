//! The responder on loopback sockets, asked by the stub client in
//! `orca_dns::client`: every test starts its own responders on
//! `127.0.0.1:0` and stops them at the end, which also checks that `serve`
//! returns cleanly on cancellation. The sockets are bound before `serve`
//! starts, so queries sent at once wait in the kernel: no sleeps.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::rdata::SOA;
use hickory_proto::rr::{RData, RecordType};
use orca_core::discovery::{DiscoveryZone, ServiceEndpoint};
use orca_dns::client::{query_a, query_message, query_tcp, query_udp};
use orca_dns::{serve, DnsError, Responder};
use tokio::net::{TcpListener, UdpSocket};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

#[path = "server/relay_tcp.rs"]
mod relay_tcp;

struct Running {
    udp: SocketAddr,
    tcp: SocketAddr,
    responder: Arc<Responder>,
    shutdown: CancellationToken,
    task: JoinHandle<Result<(), DnsError>>,
}

async fn start(responder: Responder) -> Running {
    let udp = UdpSocket::bind("127.0.0.1:0").await.expect("bind udp");
    let tcp = TcpListener::bind("127.0.0.1:0").await.expect("bind tcp");
    let (udp_addr, tcp_addr) = (
        udp.local_addr().expect("udp addr"),
        tcp.local_addr().expect("tcp addr"),
    );
    let responder = Arc::new(responder);
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(serve(responder.clone(), udp, tcp, shutdown.clone()));
    Running {
        udp: udp_addr,
        tcp: tcp_addr,
        responder,
        shutdown,
        task,
    }
}

impl Running {
    async fn stop(self) {
        self.shutdown.cancel();
        let result = self.task.await.expect("serve task panicked");
        assert!(result.is_ok(), "serve: {result:?}");
    }

    async fn ask(&self, name: &str, qtype: RecordType) -> Message {
        let query = query_message(name, qtype).expect("query");
        let reply = query_udp(self.udp, &query).await.expect("reply");
        assert_eq!(reply.metadata.id, query.metadata.id);
        assert_eq!(reply.queries, query.queries, "the question is echoed");
        reply
    }
}

fn endpoint(task_id: &str, address: [u8; 4], port: Option<u16>) -> ServiceEndpoint {
    ServiceEndpoint {
        task_id: task_id.to_owned(),
        address: Ipv4Addr::from(address),
        port,
    }
}

fn zone(namespace: &str, services: &[(&str, Vec<ServiceEndpoint>)]) -> DiscoveryZone {
    DiscoveryZone {
        namespace: namespace.to_owned(),
        ttl_secs: 10,
        services: services
            .iter()
            .map(|(name, endpoints)| ((*name).to_owned(), endpoints.clone()))
            .collect::<BTreeMap<_, _>>(),
    }
}

fn orca_zone() -> DiscoveryZone {
    zone(
        "orca.local",
        &[
            (
                "web",
                vec![
                    endpoint("aaa111", [10, 0, 0, 2], Some(8080)),
                    endpoint("bbb222", [10, 0, 0, 3], Some(8080)),
                ],
            ),
            ("idle", Vec::new()),
        ],
    )
}

fn addresses(records: &[hickory_proto::rr::Record]) -> Vec<Ipv4Addr> {
    let mut addresses: Vec<Ipv4Addr> = records
        .iter()
        .filter_map(|r| match &r.data {
            RData::A(a) => Some(a.0),
            _ => None,
        })
        .collect();
    addresses.sort();
    addresses
}

#[tokio::test]
async fn a_for_a_service_lists_its_tasks_addresses() {
    let dns = start(Responder::new(orca_zone(), Vec::new())).await;
    let reply = dns.ask("Web.Orca.Local.", RecordType::A).await;
    assert_eq!(reply.metadata.response_code, ResponseCode::NoError);
    assert!(reply.metadata.authoritative);
    assert_eq!(
        addresses(&reply.answers),
        [Ipv4Addr::new(10, 0, 0, 2), Ipv4Addr::new(10, 0, 0, 3)]
    );
    assert!(reply.answers.iter().all(|r| r.ttl == 10));
    assert_eq!(
        reply.answers[0].name.to_ascii(),
        "Web.Orca.Local.",
        "answers spell the name as asked"
    );
    dns.stop().await;
}

#[tokio::test]
async fn srv_carries_targets_and_their_addresses() {
    let dns = start(Responder::new(orca_zone(), Vec::new())).await;
    let reply = dns.ask("web.orca.local.", RecordType::SRV).await;
    assert_eq!(reply.metadata.response_code, ResponseCode::NoError);
    let mut srv: Vec<(u16, u16, u16, String)> = reply
        .answers
        .iter()
        .filter_map(|r| match &r.data {
            RData::SRV(s) => Some((s.priority, s.weight, s.port, s.target.to_ascii())),
            _ => None,
        })
        .collect();
    srv.sort();
    assert_eq!(
        srv,
        [
            (0, 1, 8080, "aaa111.web.orca.local.".to_owned()),
            (0, 1, 8080, "bbb222.web.orca.local.".to_owned()),
        ]
    );
    let mut glue: Vec<(String, Ipv4Addr)> = reply
        .additionals
        .iter()
        .filter_map(|r| match &r.data {
            RData::A(a) => Some((r.name.to_ascii(), a.0)),
            _ => None,
        })
        .collect();
    glue.sort();
    assert_eq!(
        glue,
        [
            (
                "aaa111.web.orca.local.".to_owned(),
                Ipv4Addr::new(10, 0, 0, 2)
            ),
            (
                "bbb222.web.orca.local.".to_owned(),
                Ipv4Addr::new(10, 0, 0, 3)
            ),
        ]
    );
    dns.stop().await;
}

#[tokio::test]
async fn unknown_names_in_the_namespace_are_nxdomain_and_empty_services_nodata() {
    let dns = start(Responder::new(orca_zone(), Vec::new())).await;
    let reply = dns.ask("db.orca.local.", RecordType::A).await;
    assert_eq!(reply.metadata.response_code, ResponseCode::NXDomain);
    assert!(reply.metadata.authoritative);
    assert!(reply.answers.is_empty());

    let reply = dns.ask("idle.orca.local.", RecordType::A).await;
    assert_eq!(reply.metadata.response_code, ResponseCode::NoError);
    assert!(reply.metadata.authoritative);
    assert!(reply.answers.is_empty());

    let reply = dns.ask("web.orca.local.", RecordType::AAAA).await;
    assert_eq!(reply.metadata.response_code, ResponseCode::NoError);
    assert!(reply.answers.is_empty());
    dns.stop().await;
}

/// The one SOA record in `reply`'s authority section, with its TTL.
fn authority_soa(reply: &Message) -> (String, u32, SOA) {
    let [record] = reply.authorities.as_slice() else {
        panic!("one authority record, got {:?}", reply.authorities);
    };
    let RData::SOA(soa) = &record.data else {
        panic!("an SOA authority, got {record:?}");
    };
    (record.name.to_ascii(), record.ttl, soa.clone())
}

fn assert_zone_soa(soa: &SOA) {
    assert_eq!(soa.mname.to_ascii(), "ns.orca.local.");
    assert_eq!(soa.rname.to_ascii(), "hostmaster.orca.local.");
    assert_eq!(soa.serial, 1);
    assert_eq!(
        soa.minimum, 10,
        "negative answers live as long as the zone's ttl"
    );
}

#[tokio::test]
async fn negative_answers_carry_the_zones_soa() {
    let dns = start(Responder::new(orca_zone(), Vec::new())).await;
    for (name, qtype, rcode) in [
        ("db.orca.local.", RecordType::A, ResponseCode::NXDomain),
        ("idle.orca.local.", RecordType::A, ResponseCode::NoError),
        ("web.orca.local.", RecordType::AAAA, ResponseCode::NoError),
        ("orca.local.", RecordType::NS, ResponseCode::NoError),
    ] {
        let reply = dns.ask(name, qtype).await;
        assert_eq!(reply.metadata.response_code, rcode, "{name} {qtype}");
        assert!(reply.answers.is_empty(), "{name} {qtype}");
        let (owner, ttl, soa) = authority_soa(&reply);
        assert_eq!((owner.as_str(), ttl), ("orca.local.", 10), "{name} {qtype}");
        assert_zone_soa(&soa);
    }
    // Over TCP too, and positive answers have no authority section.
    let query = query_message("nope.orca.local.", RecordType::A).expect("query");
    let reply = query_tcp(dns.tcp, &query).await.expect("reply");
    assert_eq!(reply.metadata.response_code, ResponseCode::NXDomain);
    assert_zone_soa(&authority_soa(&reply).2);
    let reply = dns.ask("web.orca.local.", RecordType::A).await;
    assert!(reply.authorities.is_empty());
    dns.stop().await;
}

#[tokio::test]
async fn soa_for_the_namespace_is_answered() {
    let dns = start(Responder::new(orca_zone(), Vec::new())).await;
    let reply = dns.ask("Orca.Local.", RecordType::SOA).await;
    assert_eq!(reply.metadata.response_code, ResponseCode::NoError);
    assert!(reply.metadata.authoritative);
    assert!(reply.authorities.is_empty());
    let [record] = reply.answers.as_slice() else {
        panic!("one answer, got {:?}", reply.answers);
    };
    assert_eq!(record.name.to_ascii(), "Orca.Local.", "spelled as asked");
    assert_eq!(record.ttl, 10);
    let RData::SOA(soa) = &record.data else {
        panic!("an SOA answer, got {record:?}");
    };
    assert_zone_soa(soa);
    dns.stop().await;
}

#[tokio::test]
async fn set_zone_changes_the_next_answer() {
    let dns = start(Responder::new(orca_zone(), Vec::new())).await;
    assert_eq!(
        query_a(dns.udp, "web.orca.local.").await.expect("query"),
        [Ipv4Addr::new(10, 0, 0, 2), Ipv4Addr::new(10, 0, 0, 3)]
    );
    dns.responder.set_zone(zone(
        "orca.local",
        &[("web", vec![endpoint("ccc333", [10, 0, 0, 9], None)])],
    ));
    assert_eq!(
        query_a(dns.udp, "web.orca.local.").await.expect("query"),
        [Ipv4Addr::new(10, 0, 0, 9)]
    );
    dns.responder.set_zone(DiscoveryZone {
        namespace: "orca.local".to_owned(),
        ..DiscoveryZone::default()
    });
    let reply = dns.ask("web.orca.local.", RecordType::A).await;
    assert_eq!(reply.metadata.response_code, ResponseCode::NXDomain);
    dns.stop().await;
}

#[tokio::test]
async fn a_query_over_tcp_is_answered() {
    let dns = start(Responder::new(orca_zone(), Vec::new())).await;
    let query = query_message("aaa111.web.orca.local.", RecordType::A).expect("query");
    let reply = query_tcp(dns.tcp, &query).await.expect("reply");
    assert_eq!(reply.metadata.id, query.metadata.id);
    assert_eq!(reply.metadata.response_code, ResponseCode::NoError);
    assert_eq!(addresses(&reply.answers), [Ipv4Addr::new(10, 0, 0, 2)]);
    dns.stop().await;
}

#[tokio::test]
async fn outside_names_are_refused_without_upstreams() {
    let dns = start(Responder::new(orca_zone(), Vec::new())).await;
    let reply = dns.ask("example.com.", RecordType::A).await;
    assert_eq!(reply.metadata.response_code, ResponseCode::Refused);
    assert!(reply.answers.is_empty());
    dns.stop().await;
}

/// The upstream the relay tests use: another responder, for `world.test`.
async fn world() -> Running {
    let world = zone(
        "world.test",
        &[("x", vec![endpoint("t1", [203, 0, 113, 7], Some(53))])],
    );
    start(Responder::new(world, Vec::new())).await
}

#[tokio::test]
async fn outside_names_are_relayed_to_the_upstream() {
    let upstream = world().await;
    let dns = start(Responder::new(orca_zone(), vec![upstream.udp])).await;

    let reply = dns.ask("x.world.test.", RecordType::A).await;
    assert_eq!(reply.metadata.response_code, ResponseCode::NoError);
    assert!(
        !reply.metadata.authoritative,
        "a relayed answer is not ours"
    );
    assert_eq!(addresses(&reply.answers), [Ipv4Addr::new(203, 0, 113, 7)]);

    let reply = dns.ask("x.world.test.", RecordType::SRV).await;
    assert_eq!(reply.answers.len(), 1);
    assert_eq!(
        addresses(&reply.additionals),
        [Ipv4Addr::new(203, 0, 113, 7)]
    );

    let reply = dns.ask("nope.world.test.", RecordType::A).await;
    assert_eq!(
        reply.metadata.response_code,
        ResponseCode::NXDomain,
        "the upstream's rcode is kept"
    );

    // Our own names are still ours, not the upstream's.
    let reply = dns.ask("web.orca.local.", RecordType::A).await;
    assert_eq!(reply.answers.len(), 2);
    dns.stop().await;
    upstream.stop().await;
}

#[tokio::test]
async fn a_silent_upstream_gives_servfail() {
    // Bound and never read: queries to it vanish without an ICMP refusal.
    let silent = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
    let responder = Responder::new(orca_zone(), vec![silent.local_addr().expect("addr")])
        .with_upstream_timeout(Duration::from_millis(200));
    let dns = start(responder).await;
    let reply = dns.ask("x.world.test.", RecordType::A).await;
    assert_eq!(reply.metadata.response_code, ResponseCode::ServFail);
    assert!(reply.answers.is_empty());
    dns.stop().await;
}

#[tokio::test]
async fn a_silent_upstream_is_skipped_for_the_next() {
    let silent = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
    let upstream = world().await;
    let responder = Responder::new(
        orca_zone(),
        vec![silent.local_addr().expect("addr"), upstream.udp],
    )
    .with_upstream_timeout(Duration::from_millis(200));
    let dns = start(responder).await;
    let reply = dns.ask("x.world.test.", RecordType::A).await;
    assert_eq!(reply.metadata.response_code, ResponseCode::NoError);
    assert_eq!(addresses(&reply.answers), [Ipv4Addr::new(203, 0, 113, 7)]);
    dns.stop().await;
    upstream.stop().await;
}
