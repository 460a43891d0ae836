//! DAEMON tasks are placed first: when a DAEMON service's task does not fit
//! on its instance, a task of a REPLICA service there moves elsewhere (its
//! own service replaces it within minimumHealthyPercent / maximumPercent,
//! as from a DRAINING instance), or the daemon's service says why nothing
//! can move. ECS leaves such a daemon task unplaced; operators asked for
//! the node agent, log shipper or monitor to always land.
//!
//! Pure: the view, the daemon service, the instance and what its task
//! needs in, a decision out.

use orca_core::service::{SchedulingStrategy, ServiceStatus};
use orca_core::task::Resources;

use crate::state::service_record::service_key;
use crate::state::{ClusterView, ServiceRecord, TaskRecord};

/// What to do about a daemon task that does not fit on its instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Room {
    /// Move this replica task (by id) off the instance.
    Move { task_id: String, service: String },
    /// Tasks already moving off the instance will free enough (or all
    /// they can): wait for them.
    Moving,
    /// Nothing can move; the reason, for the daemon service's event.
    Impossible(String),
}

/// Decides how a task of `daemon` needing `need` gets a place on
/// `instance_id`.
pub fn make_room(
    view: &ClusterView,
    daemon: &ServiceRecord,
    instance_id: &str,
    need: Resources,
) -> Room {
    let Some(instance) = view.instances.get(instance_id) else {
        return Room::Impossible(format!("container instance {instance_id} is gone"));
    };
    if !need.fits_in(instance.registered) {
        return Room::Impossible(format!(
            "its task needs {} CPU units and {} MiB, more than (container-instance {instance_id}) has in all",
            need.cpu, need.memory
        ));
    }
    let live: Vec<&TaskRecord> = instance
        .task_ids
        .iter()
        .filter_map(|id| view.tasks.get(id))
        .filter(|t| t.is_live())
        .collect();
    // What the instance will have once the tasks already moving are gone.
    let mut free = instance.remaining;
    let mut moving = false;
    for t in live.iter().filter(|t| t.making_room_for.is_some()) {
        free = free.plus(t.reserved);
        moving = true;
    }
    if moving && need.fits_in(free) {
        return Room::Moving;
    }
    let mut candidates: Vec<(&TaskRecord, &str)> = live
        .iter()
        .filter(|t| t.making_room_for.is_none())
        .filter_map(|t| {
            let name = t.group.strip_prefix("service:")?;
            let service = view.services.get(&service_key(&t.cluster, name))?;
            (service.strategy == SchedulingStrategy::Replica
                && service.status == ServiceStatus::Active
                && service.name != daemon.name)
                .then_some((*t, service.name.as_str()))
        })
        .collect();
    // The smallest task whose place is enough; else the largest, and the
    // next round moves another.
    candidates.sort_by(|(a, _), (b, _)| {
        (a.reserved.memory, a.reserved.cpu, &a.id).cmp(&(b.reserved.memory, b.reserved.cpu, &b.id))
    });
    let chosen = candidates
        .iter()
        .find(|(t, _)| need.fits_in(free.plus(t.reserved)))
        .or(candidates.last());
    match chosen {
        Some((task, service)) => Room::Move {
            task_id: task.id.clone(),
            service: service.to_string(),
        },
        None if moving => Room::Moving,
        None => Room::Impossible(format!(
            "(container-instance {instance_id}) lacks {} and runs no task of a REPLICA service that could move",
            lacking(need, free)
        )),
    }
}

fn lacking(need: Resources, free: Resources) -> &'static str {
    match (need.cpu > free.cpu, need.memory > free.memory) {
        (true, true) => "CPU units and memory",
        (true, false) => "CPU units",
        _ => "memory",
    }
}
