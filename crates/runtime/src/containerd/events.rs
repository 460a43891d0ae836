//! containerd's event stream for this namespace, as hints: every task event
//! (start, exit, OOM, delete...) moves a counter the agent watches to look
//! again at the containers (`list`) sooner than its periodic relist. The
//! events are never the state: one missed while the stream was down, or
//! while containerd restarted, changes nothing but how soon it is seen.
//!
//! OOM events are also recorded in [`OomWatch`], one of the two sources of
//! OOM attribution. The subscription comes back by itself: after the stream
//! breaks (containerd stopped or restarted) it is opened again with
//! back-off, over the same channel, which dials the socket again.

use std::sync::Arc;
use std::time::Duration;

use containerd_client::events::TaskOom;
use containerd_client::services::v1::SubscribeRequest;
use futures::StreamExt;
use prost::Message;
use tokio::sync::watch;

use super::client::{status_message, Ctrd};
use super::oom::OomWatch;

/// First pause before subscribing again; doubled up to [`MAX_BACKOFF`].
const MIN_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// Keeps a subscription to this namespace's task events in a background
/// task; `changes` moves on every event and every time the stream breaks.
pub fn watch(
    ctrd: Ctrd,
    oom: Arc<OomWatch>,
    changes: watch::Sender<u64>,
) -> tokio::task::JoinHandle<()> {
    let bump = move |changes: &watch::Sender<u64>| changes.send_modify(|n| *n = n.wrapping_add(1));
    tokio::spawn(async move {
        let mut backoff = MIN_BACKOFF;
        loop {
            match subscribe(&ctrd).await {
                Ok(mut stream) => {
                    while let Some(item) = stream.next().await {
                        let envelope = match item {
                            Ok(envelope) => envelope,
                            Err(status) => {
                                tracing::warn!(error = %status_message(&status), "containerd event stream broke");
                                break;
                            }
                        };
                        // Only a delivered event proves the stream works.
                        backoff = MIN_BACKOFF;
                        if envelope.topic == "/tasks/oom" {
                            if let Some(any) = &envelope.event {
                                match TaskOom::decode(any.value.as_slice()) {
                                    Ok(ev) => {
                                        tracing::info!(container = %ev.container_id, "containerd reports an OOM kill");
                                        oom.record(ev.container_id);
                                    }
                                    Err(e) => {
                                        tracing::warn!(error = %e, "undecodable TaskOOM event")
                                    }
                                }
                            }
                        }
                        bump(&changes);
                    }
                }
                Err(e) => tracing::debug!(error = %e, "no containerd event subscription"),
            }
            // The stream ended or could not be opened: whatever happened
            // meanwhile is for a relist to find.
            bump(&changes);
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    })
}

async fn subscribe(
    ctrd: &Ctrd,
) -> Result<tonic::Streaming<containerd_client::types::Envelope>, String> {
    let filter = format!("topic~=\"^/tasks/\",namespace==\"{}\"", ctrd.namespace());
    ctrd.events()
        .subscribe(ctrd.req(SubscribeRequest {
            filters: vec![filter],
        }))
        .await
        .map(|r| r.into_inner())
        .map_err(|s| format!("subscribe to containerd events: {}", status_message(&s)))
}
