//! The shell around [`crate::zone`]: hickory's server loop calls
//! [`Responder`] for each query, which answers from the current zone or
//! relays upstream, and [`serve`] runs it on the sockets the caller bound.

use std::net::SocketAddr;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use hickory_proto::op::{
    Edns, Header, HeaderCounts, Message, MessageType, Metadata, OpCode, ResponseCode,
};
use hickory_proto::rr::rdata::{A, SOA, SRV};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use hickory_server::net::runtime::Time;
use hickory_server::net::xfer::Protocol;
use hickory_server::net::NetError;
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo};
use hickory_server::zone_handler::MessageResponseBuilder;
use hickory_server::Server;
use orca_core::discovery::DiscoveryZone;
use tokio::net::{TcpListener, UdpSocket};
use tokio_util::sync::CancellationToken;
use tracing::debug;

use crate::error::DnsError;
use crate::relay;
use crate::zone::{self, Answer, QueryKind, RecordData, ZoneRecord};

/// How long one upstream gets before the next is tried, unless
/// [`Responder::with_upstream_timeout`] says otherwise.
pub const DEFAULT_UPSTREAM_TIMEOUT: Duration = Duration::from_secs(2);

/// An idle TCP connection is closed after this long, so a client that
/// connects and says nothing holds no task for ever.
const TCP_IDLE_TIMEOUT: Duration = Duration::from_secs(10);

/// Responses queued per TCP connection; a client pipelining more waits.
const TCP_RESPONSE_BUFFER: usize = 16;

/// The largest UDP answer we send to an EDNS client, whatever it offers:
/// the DNS flag day 2020 size, which avoids IP fragmentation.
const MAX_UDP_PAYLOAD: u16 = 1232;

/// Answers one node's tasks: the cluster's discovery names from the zone the
/// leader last sent, every other name from the node's own resolvers.
#[derive(Debug)]
pub struct Responder {
    /// The zone queries are answered from; swapped whole by
    /// [`Responder::set_zone`], so a query sees one zone or the next, never
    /// a mix, and holds the lock only to clone the Arc.
    zone: RwLock<Arc<DiscoveryZone>>,
    /// Where names outside the namespace go, in order of preference (the
    /// node's resolv.conf nameservers); empty means such names are refused.
    upstreams: Vec<SocketAddr>,
    /// How long one upstream gets before the next is tried.
    upstream_timeout: Duration,
}

impl Responder {
    pub fn new(zone: DiscoveryZone, upstreams: Vec<SocketAddr>) -> Self {
        Self {
            zone: RwLock::new(Arc::new(zone)),
            upstreams,
            upstream_timeout: DEFAULT_UPSTREAM_TIMEOUT,
        }
    }

    /// Sets how long each upstream gets (default 2 s).
    pub fn with_upstream_timeout(mut self, timeout: Duration) -> Self {
        self.upstream_timeout = timeout;
        self
    }

    /// Replaces the zone; the next query is answered from it.
    pub fn set_zone(&self, zone: DiscoveryZone) {
        let zone = Arc::new(zone);
        // A poisoned lock only means a panic elsewhere mid-swap of an Arc,
        // which cannot leave it half-written: keep serving.
        *self.zone.write().unwrap_or_else(|e| e.into_inner()) = zone;
    }

    /// The zone queries are answered from now.
    pub fn zone(&self) -> Arc<DiscoveryZone> {
        self.zone.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    async fn respond<R: ResponseHandler>(
        &self,
        request: &Request,
        handle: &mut R,
    ) -> Result<ResponseInfo, NetError> {
        let builder = MessageResponseBuilder::from_message_request(request);
        if request.metadata.message_type != MessageType::Query
            || request.metadata.op_code != OpCode::Query
        {
            let response = builder.error_msg(&request.metadata, ResponseCode::NotImp);
            return handle.send_response(response).await;
        }
        let Ok(info) = request.request_info() else {
            // Not exactly one question: nobody sends that in practice.
            let response = builder.error_msg(&request.metadata, ResponseCode::FormErr);
            return handle.send_response(response).await;
        };
        let query = info.query;
        let kind = match query.query_type() {
            RecordType::A => QueryKind::A,
            RecordType::SRV => QueryKind::Srv,
            RecordType::SOA => QueryKind::Soa,
            _ => QueryKind::Other,
        };
        let zone = self.zone();
        let answer = zone::answer(&zone, &query.name().to_string(), kind);
        debug!(name = %query.name(), qtype = %query.query_type(), ?answer, "dns query");

        // Echo EDNS when the client used it, so UDP answers may exceed 512
        // bytes up to what it accepts.
        let edns = request.edns.as_ref().map(|_| {
            let mut edns = Edns::new();
            edns.set_max_payload(request.max_payload().min(MAX_UDP_PAYLOAD));
            edns
        });
        let mut builder = builder;
        if let Some(edns) = &edns {
            builder.edns(edns);
        }

        let mut metadata = Metadata::response_from_request(&request.metadata);
        metadata.recursion_available = !self.upstreams.is_empty();
        metadata.authoritative = true;
        // Negative answers name the zone's SOA, whose MINIMUM tells
        // resolvers how long to cache them (RFC 2308).
        let (records, authorities) = match answer {
            Answer::NotOurs => return self.relay(request, builder, handle).await,
            Answer::NxDomain => {
                metadata.response_code = ResponseCode::NXDomain;
                (zone::Records::default(), vec![zone::soa(&zone)])
            }
            Answer::NoData => (zone::Records::default(), vec![zone::soa(&zone)]),
            Answer::Records(records) => (records, Vec::new()),
        };
        // Answers carry the question's own spelling of the name, so clients
        // that randomise its case (0x20) accept them.
        let owner = query.original().name();
        let answers = records
            .answers
            .iter()
            .map(|r| to_record(r, Some(owner)))
            .collect::<Option<Vec<_>>>();
        let authorities = authorities
            .iter()
            .map(|r| to_record(r, None))
            .collect::<Option<Vec<_>>>();
        let additionals = records
            .additionals
            .iter()
            .map(|r| to_record(r, None))
            .collect::<Option<Vec<_>>>();
        let (Some(answers), Some(authorities), Some(additionals)) =
            (answers, authorities, additionals)
        else {
            // A task id or namespace that is no valid DNS name.
            debug!(name = %query.name(), "zone record with an invalid name");
            let response = builder.error_msg(&request.metadata, ResponseCode::ServFail);
            return handle.send_response(response).await;
        };
        let response = builder.build(metadata, &answers, &authorities, [], &additionals);
        handle.send_response(response).await
    }

    async fn relay<R: ResponseHandler>(
        &self,
        request: &Request,
        builder: MessageResponseBuilder<'_>,
        handle: &mut R,
    ) -> Result<ResponseInfo, NetError> {
        if self.upstreams.is_empty() {
            let response = builder.error_msg(&request.metadata, ResponseCode::Refused);
            return handle.send_response(response).await;
        }
        let id = request.metadata.id;
        // A client that came over TCP expects an answer too big for UDP:
        // ask over TCP straight away rather than collect a truncated one.
        let transport = match request.protocol() {
            Protocol::Tcp => relay::Transport::Tcp,
            _ => relay::Transport::Udp,
        };
        let reply: Option<Message> = relay::forward(
            &self.upstreams,
            request.as_slice(),
            id,
            transport,
            self.upstream_timeout,
        )
        .await;
        let Some(reply) = reply else {
            let response = builder.error_msg(&request.metadata, ResponseCode::ServFail);
            return handle.send_response(response).await;
        };
        // The upstream's header as it is (rcode, flags, truncation), but
        // not its authority: the client asked us, and we only passed it on.
        let mut metadata = reply.metadata;
        metadata.id = id;
        metadata.authoritative = false;
        let response = builder.build(
            metadata,
            &reply.answers,
            &reply.authorities,
            [],
            &reply.additionals,
        );
        handle.send_response(response).await
    }
}

/// The hickory record for one of the zone's; None if a name is invalid.
/// `owner` overrides the record's own name.
fn to_record(record: &ZoneRecord, owner: Option<&Name>) -> Option<Record> {
    let name = match owner {
        Some(owner) => owner.clone(),
        None => Name::from_ascii(&record.name).ok()?,
    };
    let data = match &record.data {
        RecordData::A(address) => RData::A(A(*address)),
        RecordData::Srv {
            priority,
            weight,
            port,
            target,
        } => RData::SRV(SRV::new(
            *priority,
            *weight,
            *port,
            Name::from_ascii(target).ok()?,
        )),
        RecordData::Soa {
            mname,
            rname,
            serial,
            refresh,
            retry,
            expire,
            minimum,
        } => RData::SOA(SOA::new(
            Name::from_ascii(mname).ok()?,
            Name::from_ascii(rname).ok()?,
            *serial,
            // hickory types the timers as i32 (RFC 1035 leaves them
            // unsigned); ours are constants far below i32::MAX.
            i32::try_from(*refresh).ok()?,
            i32::try_from(*retry).ok()?,
            i32::try_from(*expire).ok()?,
            *minimum,
        )),
    };
    Some(Record::from_rdata(name, record.ttl, data))
}

/// hickory's server owns its handler; ours is shared with whoever calls
/// [`Responder::set_zone`].
struct Handler(Arc<Responder>);

#[async_trait::async_trait]
impl RequestHandler for Handler {
    async fn handle_request<R: ResponseHandler, T: Time>(
        &self,
        request: &Request,
        mut response_handle: R,
    ) -> ResponseInfo {
        match self.0.respond(request, &mut response_handle).await {
            Ok(info) => info,
            Err(error) => {
                debug!(%error, "dns response not sent");
                let mut metadata = Metadata::response_from_request(&request.metadata);
                metadata.response_code = ResponseCode::ServFail;
                ResponseInfo::from(Header {
                    metadata,
                    counts: HeaderCounts::default(),
                })
            }
        }
    }
}

/// Serves `responder` on the bound `udp` socket and `tcp` listener until
/// `shutdown` is cancelled, then stops accepting and lets queries in flight
/// finish. Returns early with an error only if a socket fails for good.
pub async fn serve(
    responder: Arc<Responder>,
    udp: UdpSocket,
    tcp: TcpListener,
    shutdown: CancellationToken,
) -> Result<(), DnsError> {
    let mut server = Server::new(Handler(responder));
    server.register_socket(udp);
    server.register_listener(tcp, TCP_IDLE_TIMEOUT, TCP_RESPONSE_BUFFER);
    let stop = server.shutdown_token().clone();
    let done = server.block_until_done();
    tokio::pin!(done);
    tokio::select! {
        result = &mut done => return Ok(result?),
        () = shutdown.cancelled() => stop.cancel(),
    }
    Ok(done.await?)
}
