//! OOM detection. Two sources, because either alone can miss:
//! - containerd's `/tasks/oom` events (the runc shim watches the cgroup's
//!   `memory.oom_control` eventfd on cgroup v1 and `memory.events` on v2),
//!   collected by a background subscription for this namespace;
//! - the cgroup's own `oom_kill` counter, read when the exit is observed (the
//!   cgroup lives until the task is deleted), which also covers an agent that
//!   restarted and missed the event.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use containerd_client::events::TaskOom;
use containerd_client::services::v1::SubscribeRequest;
use futures::StreamExt;
use prost::Message;

use super::client::{status_message, Ctrd};
use super::spec::cgroups_path;

/// Container ids the kernel OOM-killed in, as containerd reported.
#[derive(Default)]
pub struct OomWatch {
    seen: Mutex<HashSet<String>>,
}

impl OomWatch {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashSet<String>> {
        self.seen.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn saw(&self, id: &str) -> bool {
        self.lock().contains(id)
    }

    /// Forgets a container (it was removed, or is being started afresh).
    pub fn forget(&self, id: &str) {
        self.lock().remove(id);
    }

    fn record(&self, id: String) {
        self.lock().insert(id);
    }
}

/// Keeps a subscription to this namespace's OOM events (resubscribing after
/// errors) in a background task.
///
/// The subscription is not awaited: containerd sends the stream's headers
/// only with its first event, so "subscribed" cannot be observed. An event
/// missed while it is being set up is covered by the cgroup counter.
pub fn watch(ctrd: Ctrd, watch: Arc<OomWatch>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            let mut s = match subscribe(&ctrd).await {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!(error = %e, "OOM event subscription failed; retrying");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            };
            while let Some(item) = s.next().await {
                match item {
                    Ok(envelope) => {
                        let Some(any) = envelope.event else { continue };
                        match TaskOom::decode(any.value.as_slice()) {
                            Ok(ev) => {
                                tracing::info!(container = %ev.container_id, "containerd reports an OOM kill");
                                watch.record(ev.container_id);
                            }
                            Err(e) => tracing::warn!(error = %e, "undecodable TaskOOM event"),
                        }
                    }
                    Err(status) => {
                        tracing::warn!(error = %status_message(&status), "OOM event stream broke");
                        break;
                    }
                }
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })
}

async fn subscribe(
    ctrd: &Ctrd,
) -> Result<tonic::Streaming<containerd_client::types::Envelope>, String> {
    let filter = format!("topic==\"/tasks/oom\",namespace==\"{}\"", ctrd.namespace());
    ctrd.events()
        .subscribe(ctrd.req(SubscribeRequest {
            filters: vec![filter],
        }))
        .await
        .map(|r| r.into_inner())
        .map_err(|s| format!("subscribe to containerd events: {}", status_message(&s)))
}

/// The kernel's OOM-kill count for the container's cgroup, if readable
/// (cgroup v1 `memory.oom_control`, or v2 `memory.events`).
pub fn cgroup_oom_kills(namespace: &str, id: &str) -> Option<u64> {
    let rel = cgroups_path(namespace, id);
    let rel = rel.trim_start_matches('/');
    let candidates = [
        (
            format!("/sys/fs/cgroup/memory/{rel}/memory.oom_control"),
            "oom_kill ",
        ),
        (format!("/sys/fs/cgroup/{rel}/memory.events"), "oom_kill "),
        (
            format!("/sys/fs/cgroup/unified/{rel}/memory.events"),
            "oom_kill ",
        ),
    ];
    for (path, key) in candidates {
        if let Ok(text) = std::fs::read_to_string(&path) {
            if let Some(n) = text
                .lines()
                .find_map(|l| l.strip_prefix(key))
                .and_then(|v| v.trim().parse().ok())
            {
                return Some(n);
            }
        }
    }
    None
}
