//! The Logs API (proto/orca/v1/logs.proto), served by every controller,
//! leader or follower alike: the task is looked up in this controller's
//! applied state (`state::log_targets`), the agent that ran it is dialled
//! at the node API address its instance registered, and the agent's lines
//! are relayed. Nothing is written; no call goes to the leader.
//!
//! Relays end when the client goes away, when the agent's stream ends
//! (the task ended and its files are read), or when this controller shuts
//! down (its server waits for open streams otherwise).

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use futures::{Stream, StreamExt};
use orca_api::error::to_status;
use orca_api::v1::logs_server::Logs;
use orca_api::v1::node_client::NodeClient;
use orca_api::v1::{GetTaskLogsRequest, LogChunk, LogLine, NodeLogsRequest, TailLogGroupRequest};
use orca_core::arn::cluster_name;
use orca_core::{ApiError, Exception};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status, Streaming};

use crate::node::Node;
use crate::state::log_targets::{GroupStream, LogTarget};

/// How often a followed group is searched for tasks that began logging
/// to it.
const GROUP_RESCAN: Duration = Duration::from_secs(1);
/// Chunks buffered towards a slow client.
const CHANNEL_CHUNKS: usize = 16;

type LogStream = Pin<Box<dyn Stream<Item = Result<LogChunk, Status>> + Send>>;

pub struct LogsService {
    node: Arc<Node>,
    /// Cancelled when the controller stops: every relay ends with it.
    shutdown: CancellationToken,
}

impl LogsService {
    pub fn new(node: Arc<Node>, shutdown: CancellationToken) -> Self {
        LogsService { node, shutdown }
    }

    fn target(&self, request: &GetTaskLogsRequest) -> Result<LogTarget, ApiError> {
        let cluster = cluster_name(&request.cluster)?;
        let view = self.node.view();
        view.active_cluster(&cluster)?;
        let container = Some(request.container.as_str()).filter(|c| !c.is_empty());
        view.log_target(&cluster, &request.task, container)
    }

    /// Ends `stream` when the controller stops.
    fn until_shutdown(&self, stream: LogStream) -> LogStream {
        let token = self.shutdown.clone();
        Box::pin(stream.take_until(async move { token.cancelled_owned().await }))
    }
}

/// Opens the agent's log stream for `target`.
async fn agent_stream(
    target: &LogTarget,
    request: NodeLogsRequest,
) -> Result<Streaming<LogChunk>, ApiError> {
    let address = target.node_api.ok_or_else(|| {
        ApiError::new(
            Exception::ServerException,
            format!(
                "container instance {} registered no node API address (its agent predates it): \
                 the logs of task {} cannot be read through a controller",
                target.instance_arn, target.task_id
            ),
        )
    })?;
    let unreachable = |e: &dyn std::fmt::Display| {
        ApiError::new(
            Exception::ServerException,
            format!(
                "the agent of container instance {} at {address} is unreachable: {e}",
                target.instance_arn
            ),
        )
    };
    let channel = orca_api::client::channel(&address.to_string())
        .await
        .map_err(|e| unreachable(&e))?;
    match NodeClient::new(channel).logs(request).await {
        Ok(reply) => Ok(reply.into_inner()),
        Err(status) if status.code() == tonic::Code::NotFound => Err(ApiError::new(
            Exception::ResourceNotFoundException,
            format!("{} (agent at {address})", status.message()),
        )),
        Err(status) if status.code() == tonic::Code::Unavailable => {
            Err(unreachable(&status.message()))
        }
        Err(status) => Err(ApiError::server(format!(
            "the agent at {address} refused the logs of task {}: {}",
            target.task_id,
            status.message()
        ))),
    }
}

/// A status from the agent, mid-stream, as this API's.
fn relayed(address: Option<SocketAddr>, status: Status) -> Status {
    to_status(&ApiError::server(format!(
        "reading logs from the agent at {}: {}",
        address.map_or_else(|| "?".to_string(), |a| a.to_string()),
        status.message()
    )))
}

#[tonic::async_trait]
impl Logs for LogsService {
    type GetTaskLogsStream = LogStream;
    type TailLogGroupStream = LogStream;

    async fn get_task_logs(
        &self,
        request: Request<GetTaskLogsRequest>,
    ) -> Result<Response<LogStream>, Status> {
        let request = request.into_inner();
        let target = self.target(&request).map_err(|e| to_status(&e))?;
        let agent = agent_stream(
            &target,
            NodeLogsRequest {
                task_id: target.task_id.clone(),
                containers: target.containers.clone(),
                since_unix_ns: request.since_unix_ns,
                tail: request.tail,
                follow: request.follow,
            },
        )
        .await
        .map_err(|e| to_status(&e))?;
        let header = LogChunk {
            lines: Vec::new(),
            containers: target.containers.clone(),
        };
        let address = target.node_api;
        let lines = agent.map(move |r| r.map_err(|s| relayed(address, s)));
        let stream: LogStream = Box::pin(futures::stream::once(async { Ok(header) }).chain(lines));
        Ok(Response::new(self.until_shutdown(stream)))
    }

    async fn tail_log_group(
        &self,
        request: Request<TailLogGroupRequest>,
    ) -> Result<Response<LogStream>, Status> {
        let request = request.into_inner();
        if request.log_group_name.is_empty() {
            return Err(to_status(&ApiError::field(
                Exception::InvalidParameterException,
                "logGroupName",
                "is required",
            )));
        }
        let (tx, rx) = mpsc::channel(CHANNEL_CHUNKS);
        let tail = GroupTail {
            node: self.node.clone(),
            request,
            tx,
        };
        if tail.request.follow {
            tokio::spawn(tail.follow());
        } else {
            tokio::spawn(tail.once());
        }
        Ok(Response::new(
            self.until_shutdown(Box::pin(ReceiverStream::new(rx))),
        ))
    }
}

/// One TailLogGroup call.
struct GroupTail {
    node: Arc<Node>,
    request: TailLogGroupRequest,
    tx: mpsc::Sender<Result<LogChunk, Status>>,
}

impl GroupTail {
    fn streams(&self) -> Vec<GroupStream> {
        self.node.view().group_streams(
            &self.request.log_group_name,
            &self.request.log_stream_name_prefix,
        )
    }

    fn node_request(&self, stream: &GroupStream, follow: bool) -> NodeLogsRequest {
        NodeLogsRequest {
            task_id: stream.target.task_id.clone(),
            containers: stream.target.containers.clone(),
            since_unix_ns: self.request.since_unix_ns,
            tail: None,
            follow,
        }
    }

    /// Every stream's lines so far, merged by time, as `aws logs tail`
    /// prints them. A stream whose agent cannot answer (gone, or its files
    /// past retention) is left out.
    async fn once(self) {
        let mut lines: Vec<LogLine> = Vec::new();
        for stream in self.streams() {
            let opened = agent_stream(&stream.target, self.node_request(&stream, false)).await;
            let mut agent = match opened {
                Ok(agent) => agent,
                Err(e) => {
                    tracing::info!(stream = %stream.log_stream_name, error = %e.message, "log stream left out");
                    continue;
                }
            };
            while let Some(Ok(chunk)) = agent.next().await {
                lines.extend(chunk.lines.into_iter().map(|l| labelled(l, &stream)));
            }
        }
        lines.sort_by_key(|l| l.time_unix_ns);
        for part in lines.chunks(256) {
            let chunk = LogChunk {
                lines: part.to_vec(),
                containers: Vec::new(),
            };
            if self.tx.send(Ok(chunk)).await.is_err() {
                return;
            }
        }
    }

    /// Each stream relayed as it comes (its history, then its new lines),
    /// and streams of tasks that begin logging to the group taken in,
    /// until the client goes away.
    async fn follow(self) {
        let this = Arc::new(self);
        let mut started: BTreeSet<String> = BTreeSet::new();
        loop {
            for stream in this.streams() {
                if started.insert(stream.log_stream_name.clone()) {
                    tokio::spawn(this.clone().relay(stream));
                }
            }
            tokio::select! {
                _ = this.tx.closed() => return,
                _ = tokio::time::sleep(GROUP_RESCAN) => {}
            }
        }
    }

    async fn relay(self: Arc<Self>, stream: GroupStream) {
        let mut agent = match agent_stream(&stream.target, self.node_request(&stream, true)).await {
            Ok(agent) => agent,
            Err(e) => {
                tracing::info!(stream = %stream.log_stream_name, error = %e.message, "log stream left out");
                return;
            }
        };
        loop {
            let next = tokio::select! {
                _ = self.tx.closed() => return,
                next = agent.next() => next,
            };
            let Some(Ok(chunk)) = next else { return };
            let chunk = LogChunk {
                lines: chunk
                    .lines
                    .into_iter()
                    .map(|l| labelled(l, &stream))
                    .collect(),
                containers: Vec::new(),
            };
            if self.tx.send(Ok(chunk)).await.is_err() {
                return;
            }
        }
    }
}

fn labelled(mut line: LogLine, stream: &GroupStream) -> LogLine {
    line.log_stream_name = stream.log_stream_name.clone();
    line
}
