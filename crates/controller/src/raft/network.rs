//! The network between controllers: openraft's RPCs over tonic, each
//! message carried as JSON of openraft's own serde types.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use openraft::error::{
    InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError, Unreachable,
};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use openraft::BasicNode;
use orca_api::v1::raft_client::RaftClient;
use orca_api::v1::RaftPayload;
use serde::de::DeserializeOwned;
use serde::Serialize;
use tonic::transport::{Channel, Endpoint};

use super::{NodeId, TypeConfig};

/// How long a connection attempt to a peer may take.
const CONNECT_TIMEOUT: Duration = Duration::from_millis(500);
/// The largest Raft message sent or accepted: AppendEntries carries up to
/// `max_payload_entries` entries of up to `MAX_BATCH_BYTES` each, snapshot
/// chunks are 1 MiB of bytes (about 3.5 MiB as JSON).
pub const MAX_RAFT_MESSAGE: usize = 256 * 1024 * 1024;

/// A lazily connecting channel to the controller at `addr` (host:port).
pub fn peer_channel(addr: &str) -> Result<Channel, tonic::transport::Error> {
    Ok(Endpoint::from_shared(orca_api::client::endpoint_uri(addr))?
        .connect_timeout(CONNECT_TIMEOUT)
        .tcp_nodelay(true)
        .connect_lazy())
}

/// Channels to the other controllers, one per address, shared by every
/// connection openraft asks for (it asks anew for each leadership check) and
/// by the node's own calls to peers (forwarded writes, read index, joins).
#[derive(Clone, Default)]
pub struct PeerChannels(Arc<Mutex<HashMap<String, Channel>>>);

impl PeerChannels {
    /// The channel to the controller at `addr`, opened on first use.
    pub fn get(&self, addr: &str) -> Result<Channel, tonic::transport::Error> {
        let mut channels = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(c) = channels.get(addr) {
            return Ok(c.clone());
        }
        let channel = peer_channel(addr)?;
        channels.insert(addr.to_string(), channel.clone());
        Ok(channel)
    }
}

/// openraft's network: Raft RPCs over the shared peer channels.
#[derive(Clone)]
pub struct GrpcNetwork {
    pub channels: PeerChannels,
}

pub struct GrpcConnection {
    target: NodeId,
    addr: String,
    client: Option<RaftClient<Channel>>,
}

impl RaftNetworkFactory<TypeConfig> for GrpcNetwork {
    type Network = GrpcConnection;

    async fn new_client(&mut self, target: NodeId, node: &BasicNode) -> Self::Network {
        let client = self.channels.get(&node.addr).ok().map(|c| {
            RaftClient::new(c)
                .max_decoding_message_size(MAX_RAFT_MESSAGE)
                .max_encoding_message_size(MAX_RAFT_MESSAGE)
        });
        GrpcConnection {
            target,
            addr: node.addr.clone(),
            client,
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("controller {target} at {addr}: {message}")]
struct PeerError {
    target: NodeId,
    addr: String,
    message: String,
}

type Rpc =
    fn(
        RaftClient<Channel>,
        tonic::Request<RaftPayload>,
    )
        -> futures::future::BoxFuture<'static, Result<tonic::Response<RaftPayload>, tonic::Status>>;

impl GrpcConnection {
    fn error(&self, message: impl Into<String>) -> PeerError {
        PeerError {
            target: self.target,
            addr: self.addr.clone(),
            message: message.into(),
        }
    }

    /// Sends one request and decodes the peer's `Result<Resp, E>`.
    async fn call<Req, Resp, E>(
        &mut self,
        rpc: Rpc,
        request: &Req,
        option: &RPCOption,
    ) -> Result<Resp, RPCError<NodeId, BasicNode, E>>
    where
        Req: Serialize,
        Resp: DeserializeOwned,
        E: std::error::Error + DeserializeOwned,
    {
        let client = match &self.client {
            Some(c) => c.clone(),
            None => {
                return Err(RPCError::Unreachable(Unreachable::new(
                    &self.error("bad address"),
                )))
            }
        };
        let json = serde_json::to_vec(request)
            .map_err(|e| RPCError::Network(NetworkError::new(&self.error(e.to_string()))))?;
        let mut req = tonic::Request::new(RaftPayload { json });
        req.set_timeout(option.hard_ttl());
        let reply = rpc(client, req).await.map_err(|status| {
            let e = self.error(status.to_string());
            match status.code() {
                tonic::Code::Unavailable | tonic::Code::DeadlineExceeded => {
                    RPCError::Unreachable(Unreachable::new(&e))
                }
                _ => RPCError::Network(NetworkError::new(&e)),
            }
        })?;
        let result: Result<Resp, E> = serde_json::from_slice(&reply.into_inner().json)
            .map_err(|e| RPCError::Network(NetworkError::new(&self.error(e.to_string()))))?;
        result.map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
    }
}

impl RaftNetwork<TypeConfig> for GrpcConnection {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<NodeId>, RPCError<NodeId, BasicNode, RaftError<NodeId>>> {
        self.call(
            |mut c, r| Box::pin(async move { c.append_entries(r).await }),
            &rpc,
            &option,
        )
        .await
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<
        InstallSnapshotResponse<NodeId>,
        RPCError<NodeId, BasicNode, RaftError<NodeId, InstallSnapshotError>>,
    > {
        self.call(
            |mut c, r| Box::pin(async move { c.install_snapshot(r).await }),
            &rpc,
            &option,
        )
        .await
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        option: RPCOption,
    ) -> Result<VoteResponse<NodeId>, RPCError<NodeId, BasicNode, RaftError<NodeId>>> {
        self.call(
            |mut c, r| Box::pin(async move { c.vote(r).await }),
            &rpc,
            &option,
        )
        .await
    }
}
