//! The shell around `reconciler::make_room`: a DAEMON service's task did
//! not fit on its instance; mark the replica task that moves (a fenced
//! `MakeRoomForDaemon`, after which its own service replaces it elsewhere)
//! and say so in the daemon service's events, or say why nothing can move.

use orca_core::task::{task_resources, TaskOverride};

use crate::node::Node;
use crate::reconciler::{self, Room, StartOrder};
use crate::state::{ClusterView, Command, ServiceRecord};

/// Acts on the decision for `instance`; returns the event messages.
pub(super) async fn make_room(
    node: &Node,
    view: &ClusterView,
    daemon: &ServiceRecord,
    start: &StartOrder,
    instance: &str,
    term: u64,
) -> Vec<String> {
    let Some(definition) = view
        .families
        .get(&start.family)
        .and_then(|f| f.revisions.get(&start.revision))
    else {
        return Vec::new();
    };
    let need = task_resources(&definition.task_definition, &TaskOverride::default());
    match reconciler::make_room(view, daemon, instance, need) {
        Room::Moving => Vec::new(),
        Room::Impossible(why) => vec![format!(
            "(service {}) was unable to place a task on (container-instance {instance}): {why}.",
            daemon.name
        )],
        Room::Move { task_id, service } => {
            let command = Command::MakeRoomForDaemon {
                cluster: daemon.cluster.clone(),
                task_id: task_id.clone(),
                daemon_service: daemon.name.clone(),
                decided_in_term: term,
            };
            if let Err(e) = node.propose(command).await {
                tracing::warn!(task = %task_id, error = %e, "making room for a daemon task");
                return Vec::new();
            }
            tracing::info!(task = %task_id, %instance, "a replica task moves for a daemon task");
            vec![format!(
                "(service {}) is moving (task {task_id}) of (service {service}) off (container-instance {instance}) to make room for its task.",
                daemon.name
            )]
        }
    }
}
