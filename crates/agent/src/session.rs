//! The agent's session with the leader: registration, then one
//! bidirectional stream carrying heartbeats and report batches up and
//! assignments and acknowledgements down. A lost session is reopened (the
//! leader named by a refusing controller first, then every endpoint in
//! turn); the unacknowledged batch is sent again.

use std::sync::Arc;
use std::time::Duration;

use orca_api::v1::agent_client::AgentClient;
use orca_api::v1::AgentJson;
use orca_core::agent_protocol::{AgentMessage, ControllerMessage, Registration, RegistrationReply};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::identity::Identity;
use crate::reporter::Reporter;

/// Where assignments go: the latest full list, for the node's loop.
pub type AssignmentSink =
    tokio::sync::watch::Sender<Option<Vec<orca_core::agent_protocol::TaskAssignment>>>;

/// The receiving end of [`AssignmentSink`].
pub type AssignmentWatch =
    tokio::sync::watch::Receiver<Option<Vec<orca_core::agent_protocol::TaskAssignment>>>;

/// The latest service-discovery zone, for the node's DNS responder.
pub type ZoneSink = tokio::sync::watch::Sender<Option<orca_core::discovery::DiscoveryZone>>;

/// Where the leader's levels go, each the latest in full.
pub struct Sinks {
    pub assignments: AssignmentSink,
    pub net_map: crate::fabric::NetMapSink,
    pub zone: ZoneSink,
}

/// The metadata a follower names the leader in.
const LEADER_METADATA: &str = "orca-leader";
/// Pause between rounds over every endpoint.
const RETRY: Duration = Duration::from_millis(500);
/// A call to register may take this long.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// Why the agent cannot go on.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error("registration refused: {0}")]
    Refused(orca_core::ApiError),
    #[error("encoding: {0}")]
    Encode(String),
    #[error(transparent)]
    Identity(#[from] crate::identity::IdentityError),
}

/// Registers `registration` as `identity`'s instance, then saves the
/// reply. When the controllers refuse the saved instance id (its instance
/// was deregistered), a new id is chosen, saved first, and registered.
pub async fn register_as(
    endpoints: &[String],
    registration: &mut Registration,
    identity: &mut Identity,
    data_dir: &std::path::Path,
    shutdown: &CancellationToken,
) -> Result<Option<RegistrationReply>, SessionError> {
    loop {
        registration.instance_id = Some(identity.instance_id.clone());
        registration.container_instance_arn = identity.container_instance_arn.clone();
        match register(endpoints, registration, shutdown).await {
            Ok(Some(reply)) => {
                // The window a ghost instance would come from: registered,
                // reply not saved. The saved id closes it.
                crate::crash::point("after-register");
                identity.confirm(data_dir, &reply.container_instance_arn)?;
                registration.instance_id = Some(identity.instance_id.clone());
                registration.container_instance_arn = Some(reply.container_instance_arn.clone());
                return Ok(Some(reply));
            }
            Ok(None) => return Ok(None),
            Err(SessionError::Refused(e)) if e.field.as_deref() == Some("instanceId") => {
                tracing::warn!(instance = %identity.instance_id, reason = %e.message, "the saved instance id is refused: registering as a new instance");
                identity.renew(data_dir)?;
            }
            Err(e) => return Err(e),
        }
    }
}

async fn client(endpoint: &str) -> Option<AgentClient<tonic::transport::Channel>> {
    orca_api::client::channel(endpoint)
        .await
        .ok()
        .map(AgentClient::new)
}

/// Registers the instance, trying every endpoint until one answers. A
/// refusal that names a field (bad input) is final; anything else is retried.
pub async fn register(
    endpoints: &[String],
    registration: &Registration,
    shutdown: &CancellationToken,
) -> Result<Option<RegistrationReply>, SessionError> {
    let json =
        serde_json::to_string(registration).map_err(|e| SessionError::Encode(e.to_string()))?;
    loop {
        for endpoint in endpoints {
            let Some(mut c) = client(endpoint).await else {
                continue;
            };
            let mut request = tonic::Request::new(AgentJson { json: json.clone() });
            request.set_timeout(CALL_TIMEOUT);
            match c.register_container_instance(request).await {
                Ok(reply) => {
                    let reply: RegistrationReply =
                        serde_json::from_str(&reply.into_inner().json)
                            .map_err(|e| SessionError::Encode(e.to_string()))?;
                    return Ok(Some(reply));
                }
                Err(status) => {
                    let e = orca_api::error::from_status(&status);
                    let transient = matches!(e.exception, orca_core::Exception::ServerException)
                        || status.code() == tonic::Code::Unavailable;
                    if !transient {
                        return Err(SessionError::Refused(e));
                    }
                    tracing::info!(%endpoint, error = %status.message(), "registration not done yet");
                }
            }
        }
        tokio::select! {
            _ = shutdown.cancelled() => return Ok(None),
            _ = tokio::time::sleep(RETRY) => {}
        }
    }
}

/// What a session needs.
pub struct SessionConfig {
    pub endpoints: Vec<String>,
    pub instance_arn: String,
    /// Sent again (asking for the same task subnet) when the controllers no
    /// longer know this instance.
    pub registration: Registration,
    /// Who the agent is; renewed when the controllers no longer know it.
    pub identity: Identity,
    /// Where the agent's identity is saved after registering again.
    pub data_dir: std::path::PathBuf,
    pub heartbeat_interval: Duration,
    pub report_batch_window: Duration,
}

/// Holds a session with the leader until `shutdown`, reopening it when lost.
pub async fn run(
    mut config: SessionConfig,
    reporter: Arc<Reporter>,
    sinks: Sinks,
    shutdown: CancellationToken,
) {
    let mut preferred: Option<String> = None;
    let mut next = 0usize;
    loop {
        let endpoint = preferred
            .take()
            .unwrap_or_else(|| config.endpoints[next % config.endpoints.len()].clone());
        next += 1;
        match one_session(&config, &endpoint, &reporter, &sinks, &shutdown).await {
            Ended::Shutdown => return,
            Ended::Redirect(leader) => {
                tracing::info!(%endpoint, %leader, "redirected to the leader");
                preferred = Some(leader);
                continue;
            }
            Ended::Lost(why) => {
                tracing::info!(%endpoint, %why, "no session");
            }
            Ended::Unknown => {
                tracing::warn!(instance = %config.instance_arn, "the controllers do not know this instance: registering again");
                // With the same id (the same instance, if the controllers
                // merely lost it); a deregistered instance's id is refused,
                // and register_as then saves and uses a new one.
                let mut registration = config.registration.clone();
                match register_as(
                    &config.endpoints,
                    &mut registration,
                    &mut config.identity,
                    &config.data_dir,
                    &shutdown,
                )
                .await
                {
                    Ok(Some(reply)) => {
                        tracing::info!(instance = %reply.container_instance_arn, "registered again");
                        config.registration = registration;
                        config.instance_arn = reply.container_instance_arn;
                        continue;
                    }
                    Ok(None) => return,
                    Err(e) => tracing::error!(error = %e, "registering again was refused"),
                }
            }
        }
        reporter.requeue();
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(RETRY) => {}
        }
    }
}

enum Ended {
    Shutdown,
    /// The controllers do not know this instance.
    Unknown,
    Redirect(String),
    Lost(String),
}

fn encode(message: &AgentMessage) -> Option<AgentJson> {
    serde_json::to_string(message)
        .ok()
        .map(|json| AgentJson { json })
}

async fn one_session(
    config: &SessionConfig,
    endpoint: &str,
    reporter: &Reporter,
    sinks: &Sinks,
    shutdown: &CancellationToken,
) -> Ended {
    let Some(mut client) = client(endpoint).await else {
        return Ended::Lost("unreachable".to_string());
    };
    let (tx, rx) = mpsc::channel::<AgentJson>(16);
    let open = AgentMessage::Open {
        container_instance_arn: config.instance_arn.clone(),
    };
    if let Some(m) = encode(&open) {
        let _ = tx.send(m).await;
    }
    let response = client
        .session(tokio_stream::wrappers::ReceiverStream::new(rx))
        .await;
    let mut inbound = match response {
        Ok(r) => r.into_inner(),
        Err(status) => {
            let leader = status
                .metadata()
                .get(LEADER_METADATA)
                .and_then(|v| v.to_str().ok())
                .filter(|l| *l != endpoint)
                .map(str::to_string);
            return match leader {
                Some(l) => Ended::Redirect(l),
                None => Ended::Lost(status.message().to_string()),
            };
        }
    };
    tracing::info!(%endpoint, "session open");
    // Whatever was in flight on the last session goes again.
    reporter.requeue();
    let mut heartbeat = tokio::time::interval(config.heartbeat_interval);
    heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        if let Some((seq, reports)) = reporter.next_batch() {
            if let Some(m) = encode(&AgentMessage::Reports { seq, reports }) {
                if tx.send(m).await.is_err() {
                    return Ended::Lost("stream closed".to_string());
                }
            }
        }
        tokio::select! {
            _ = shutdown.cancelled() => return Ended::Shutdown,
            _ = heartbeat.tick() => {
                if let Some(m) = encode(&AgentMessage::Heartbeat) {
                    if tx.send(m).await.is_err() {
                        return Ended::Lost("stream closed".to_string());
                    }
                }
            }
            _ = reporter.changed.notified() => {
                // Gather what else changes in the window into the same batch.
                tokio::time::sleep(config.report_batch_window).await;
            }
            message = inbound.message() => {
                let message = match message {
                    Ok(Some(m)) => m,
                    Ok(None) => return Ended::Lost("the controller closed the session".to_string()),
                    Err(status) => return Ended::Lost(status.message().to_string()),
                };
                match serde_json::from_str::<ControllerMessage>(&message.json) {
                    Ok(ControllerMessage::Assignments { tasks }) => {
                        sinks.assignments.send_replace(Some(tasks));
                    }
                    Ok(ControllerMessage::NetMap { nodes }) => {
                        sinks.net_map.send_replace(Some(nodes));
                    }
                    Ok(ControllerMessage::Discovery { zone }) => {
                        sinks.zone.send_replace(Some(zone));
                    }
                    Ok(ControllerMessage::Ack { seq }) => reporter.ack(seq),
                    Ok(ControllerMessage::UnknownInstance { .. }) => return Ended::Unknown,
                    Ok(ControllerMessage::Refused { reason }) => {
                        tracing::error!(%reason, "the controller refused the session");
                        return Ended::Lost(reason);
                    }
                    Err(e) => tracing::warn!(error = %e, "ignoring a controller message"),
                }
            }
        }
    }
}
