//! One agent's session with the leader: the agent's first message names its
//! instance; from then on the leader sends the instance's assignments
//! whenever they change, commits each batch of reports through Raft before
//! acknowledging it, and ends the session when heartbeats stop, when a newer
//! session of the instance replaces it, or when this node stops leading the
//! term it was opened in.

use std::sync::Arc;
use std::time::Duration;

use orca_api::v1::AgentJson;
use orca_core::agent_protocol::{AgentMessage, ControllerMessage};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tonic::{Status, Streaming};
use tracing::Instrument as _;

use super::SessionRegistry;
use crate::node::Node;
use crate::state::Command;

/// What a session needs.
#[derive(Clone)]
pub struct SessionContext {
    pub node: Arc<Node>,
    pub registry: Arc<SessionRegistry>,
    /// A session with no message for this long is over.
    pub heartbeat_timeout: Duration,
    /// Every cluster's discovery zone, published by the leader's publisher.
    pub zones: Arc<super::discovery::ZoneHub>,
    /// The namespace, TTL and DEACTIVATING wait of discoverable tasks.
    pub discovery: super::discovery::DiscoverySettings,
}

type Outbound = mpsc::Sender<Result<AgentJson, Status>>;

async fn send(out: &Outbound, message: &ControllerMessage) -> bool {
    match serde_json::to_string(message) {
        Ok(json) => out.send(Ok(AgentJson { json })).await.is_ok(),
        Err(e) => {
            tracing::error!(error = %e, "encoding a message to an agent");
            false
        }
    }
}

fn parse(message: &AgentJson) -> Result<AgentMessage, String> {
    serde_json::from_str(&message.json).map_err(|e| format!("bad agent message: {e}"))
}

/// Runs one session opened while leading `term`.
pub async fn run(ctx: SessionContext, term: u64, mut inbound: Streaming<AgentJson>, out: Outbound) {
    let first = tokio::time::timeout(ctx.heartbeat_timeout, inbound.message()).await;
    let arn = match first {
        Ok(Ok(Some(m))) => match parse(&m) {
            Ok(AgentMessage::Open {
                container_instance_arn,
            }) => container_instance_arn,
            Ok(other) => {
                let reason = format!("the first message must be open, not {other:?}");
                send(&out, &ControllerMessage::Refused { reason }).await;
                return;
            }
            Err(reason) => {
                send(&out, &ControllerMessage::Refused { reason }).await;
                return;
            }
        },
        _ => return,
    };
    let instance_id = ctx
        .node
        .view()
        .instances
        .values()
        .find(|i| i.arn == arn)
        .map(|i| i.id.clone());
    let Some(instance_id) = instance_id else {
        tracing::warn!(instance = %arn, "session from an unknown container instance: asking it to register");
        let message = ControllerMessage::UnknownInstance {
            container_instance_arn: arn,
        };
        send(&out, &message).await;
        return;
    };
    let span = tracing::info_span!("agent_session", instance = %instance_id, term);
    serve(ctx, term, instance_id, inbound, out)
        .instrument(span)
        .await
}

async fn serve(
    ctx: SessionContext,
    term: u64,
    instance_id: String,
    mut inbound: Streaming<AgentJson>,
    out: Outbound,
) {
    let Some((session_id, cancel)) = ctx.registry.open(&instance_id, term) else {
        // Leadership moved on since the session's first check: the agent
        // finds the new leader when its stream ends.
        tracing::info!("not leading term {term} any more: not serving the agent");
        return;
    };
    ctx.registry.heard(&instance_id);
    tracing::info!("agent connected");
    if !set_connected(&ctx, term, &instance_id, true).await {
        ctx.registry.close(&instance_id, session_id);
        return;
    }
    // Woken only when an apply changed this instance's assignments; what
    // the agent holds is resent when its assignments version moved.
    // Leadership loss ends the session through `cancel` (the registry
    // closes every session when leader work stops).
    let mut changes = ctx.node.assignments.subscribe(&instance_id);
    // The node map is woken the same way (every session of a cluster when
    // its map moves) and sent after the first assignments.
    let mut sent_version = None;
    let mut sent_net_version = None;
    // The cluster's discovery zone, sent after the first assignments and
    // whenever the publisher moves it (nothing while it has no names).
    let cluster = ctx
        .node
        .view()
        .instances
        .get(&instance_id)
        .map(|i| i.cluster.clone())
        .unwrap_or_default();
    let mut zones = ctx.zones.subscribe(&cluster);
    let mut sent_zone: Option<Arc<orca_core::discovery::DiscoveryZone>> = None;
    let delay = Some(ctx.discovery.deregistration_delay());
    let mut deadline = Instant::now() + ctx.heartbeat_timeout;
    loop {
        changes.borrow_and_update();
        let (update, net_update) = {
            let view = ctx.node.view();
            let instance = view.instances.get(&instance_id);
            let version = instance.map(|i| i.assignments_version);
            let update = (version != sent_version).then(|| {
                let mut tasks = view.assignments_with_delay(&instance_id, delay);
                crate::secrets::resolve::fill(
                    &view,
                    ctx.node.secrets_key.as_deref(),
                    crate::clock::Clock::now(&crate::clock::SystemClock),
                    &mut tasks,
                );
                (version, tasks)
            });
            let net_update = instance.and_then(|i| {
                let v = view.net_version(&i.cluster);
                (Some(v) != sent_net_version).then(|| (v, view.net_map(&i.cluster)))
            });
            (update, net_update)
        };
        if let Some((version, tasks)) = update {
            if !send(&out, &ControllerMessage::Assignments { tasks }).await {
                break;
            }
            sent_version = version;
        }
        if let Some((version, nodes)) = net_update {
            if !send(&out, &ControllerMessage::NetMap { nodes }).await {
                break;
            }
            sent_net_version = Some(version);
        }
        let zone = zones.borrow_and_update().clone();
        if let Some(zone) = zone.filter(|z| sent_zone.as_deref() != Some(&**z)) {
            let message = ControllerMessage::Discovery {
                zone: (*zone).clone(),
            };
            if !send(&out, &message).await {
                break;
            }
            sent_zone = Some(zone);
        }
        tokio::select! {
            _ = cancel.cancelled() => break,
            _ = tokio::time::sleep_until(deadline) => {
                tracing::warn!(timeout = ?ctx.heartbeat_timeout, "no heartbeat from the agent: ending its session");
                break;
            }
            changed = changes.changed() => {
                if changed.is_err() || ctx.node.leader_work_term() != term {
                    break;
                }
            }
            changed = zones.changed() => {
                if changed.is_err() || ctx.node.leader_work_term() != term {
                    break;
                }
            }
            message = inbound.message() => {
                let message = match message {
                    Ok(Some(m)) => m,
                    Ok(None) | Err(_) => break,
                };
                if ctx.node.leader_work_term() != term {
                    break;
                }
                deadline = Instant::now() + ctx.heartbeat_timeout;
                ctx.registry.heard(&instance_id);
                match parse(&message) {
                    Ok(AgentMessage::Heartbeat) | Ok(AgentMessage::Open { .. }) => {}
                    Ok(AgentMessage::Reports { seq, reports }) => {
                        let command = Command::ReportTaskStates {
                            instance_id: instance_id.clone(),
                            reports,
                        };
                        // Acknowledged only once committed and applied; on
                        // failure the agent sends the reports again.
                        match ctx.node.propose(command).await {
                            Ok(_) => {
                                if !send(&out, &ControllerMessage::Ack { seq }).await {
                                    break;
                                }
                            }
                            Err(e) => tracing::warn!(seq, error = %e, "task reports not committed"),
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "ignoring a message"),
                }
            }
        }
    }
    ctx.registry.close(&instance_id, session_id);
    // Not marked disconnected here: the liveness loop decides from the last
    // heartbeat, so a restarting agent has the whole timeout to come back.
    tracing::info!("agent session ended");
}

/// Records the agent connected; false if that could not be committed in
/// `term` (fenced: leadership moved on), and the session must end so the
/// agent finds the current leader.
async fn set_connected(
    ctx: &SessionContext,
    term: u64,
    instance_id: &str,
    connected: bool,
) -> bool {
    let command = Command::SetAgentConnected {
        instance_id: instance_id.to_string(),
        connected,
        decided_in_term: term,
    };
    match ctx.node.propose(command).await {
        Ok(_) => true,
        Err(e) => {
            tracing::warn!(connected, error = %e, "could not record the agent's connection: ending the session");
            false
        }
    }
}
