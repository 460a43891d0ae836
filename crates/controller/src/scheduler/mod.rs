//! Placement: which container instance each asked-for task goes to.
//!
//! [`schedule`] is a pure, synchronous function of a [`ClusterView`], the
//! asks and a seed: no I/O, no clock, ties broken by instance id, and the
//! same seed gives the same plan (Nomad's scheduler over a state snapshot).
//! The leader's plan applier (`crate::plan_apply`) is its only caller: it
//! re-checks the plan against the newest view, commits the part that still
//! fits and asks again for the rest.
//!
//! The pipeline is ECS's (ecs-semantics.md 4.7): filter (cluster, ACTIVE,
//! agent connected, requiresAttributes, memberOf, distinctInstance, memory,
//! CPU), then rank by the strategies in order (binpack, spread, random),
//! then pick. `feasible.rs` filters and names why an instance was ruled
//! out; `rank.rs` scores the survivors.
//!
//! Asks in one call are placed in order on a working overlay of the view,
//! so two asks never take the same resources. Speed at 10,000 instances
//! comes from the per-instance group index kept by `apply`
//! (`InstanceRecord::group_counts`) and from evaluating the static filters
//! once per ask; each task then costs one pass over the ask's survivors.

mod feasible;
mod rank;

use std::collections::BTreeMap;

use orca_core::placement::{Constraint, Strategy};
use orca_core::task::{Failure, Resources};
use orca_core::task_definition::Attribute;

use crate::state::{ClusterView, InstanceRecord};

pub use feasible::Misfit;

/// One request for `count` identical tasks.
#[derive(Debug, Clone)]
pub struct PlacementAsk {
    pub cluster: String,
    /// What each task reserves.
    pub need: Resources,
    pub count: usize,
    /// The task group, for distinctInstance, spread and `task:group`.
    pub group: String,
    /// Binding: the task definition's and the request's, at most 10 each.
    pub constraints: Vec<Constraint>,
    /// Best effort, in order; empty means [`default_strategies`].
    pub strategies: Vec<Strategy>,
    /// The task definition's requiresAttributes.
    pub required_attributes: Vec<Attribute>,
}

/// What the scheduler decided for one ask.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AskPlan {
    /// One instance id per placed task, in placement order.
    pub instances: Vec<String>,
    /// Why the rest could not be placed: at most one entry per reason, naming
    /// the closest instance and, in `detail`, how many instances it ruled out.
    pub failures: Vec<Failure>,
}

/// The scheduler's answer to a batch of asks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// The view's applied index: what the plan was computed against.
    pub based_on_index: u64,
    /// One entry per ask, in order.
    pub asks: Vec<AskPlan>,
}

/// ECS places a service's tasks across availability zones, then across
/// instances; orca does the same for RunTask when no strategy is given.
pub fn default_strategies() -> Vec<Strategy> {
    vec![
        Strategy::Spread(orca_core::placement::SpreadField::Attribute(
            AVAILABILITY_ZONE.to_string(),
        )),
        Strategy::Spread(orca_core::placement::SpreadField::InstanceId),
    ]
}

/// ECS's availability-zone attribute.
pub const AVAILABILITY_ZONE: &str = "ecs.availability-zone";

/// What this plan has taken on an instance beyond what the view shows.
#[derive(Debug, Default, Clone)]
struct Taken {
    resources: Resources,
    tasks: u32,
    groups: BTreeMap<String, u32>,
}

/// The view plus what earlier placements of this call took.
struct Overlay<'v> {
    view: &'v ClusterView,
    taken: BTreeMap<&'v str, Taken>,
}

impl<'v> Overlay<'v> {
    fn free(&self, instance: &InstanceRecord) -> Resources {
        match self.taken.get(instance.id.as_str()) {
            Some(t) => instance.remaining.saturating_sub(t.resources),
            None => instance.remaining,
        }
    }

    fn group_count(&self, instance: &InstanceRecord, group: &str) -> u32 {
        let extra = self
            .taken
            .get(instance.id.as_str())
            .and_then(|t| t.groups.get(group).copied())
            .unwrap_or(0);
        instance.group_count(group) + extra
    }

    fn running_tasks(&self, instance: &InstanceRecord) -> u32 {
        let extra = self.taken.get(instance.id.as_str()).map_or(0, |t| t.tasks);
        u32::try_from(instance.task_ids.len()).unwrap_or(u32::MAX) + extra
    }

    fn take(&mut self, instance: &'v InstanceRecord, need: Resources, group: &str) {
        let t = self.taken.entry(instance.id.as_str()).or_default();
        t.resources = t.resources.plus(need);
        t.tasks += 1;
        *t.groups.entry(group.to_string()).or_default() += 1;
    }
}

/// Places every ask of the batch on `view`, in order.
pub fn schedule(view: &ClusterView, asks: &[PlacementAsk], seed: u64) -> Plan {
    let mut overlay = Overlay {
        view,
        taken: BTreeMap::new(),
    };
    let asks = asks
        .iter()
        .enumerate()
        .map(|(n, ask)| place_ask(&mut overlay, ask, rank::mix(seed, n as u64)))
        .collect();
    Plan {
        based_on_index: view.applied_index(),
        asks,
    }
}

fn place_ask<'v>(overlay: &mut Overlay<'v>, ask: &PlacementAsk, seed: u64) -> AskPlan {
    let view = overlay.view;
    let cluster: Vec<&'v InstanceRecord> = view
        .instances
        .values()
        .filter(|i| i.cluster == ask.cluster)
        .collect();
    // Filters that no placement of this ask changes, evaluated once.
    let mut ruled_out = feasible::Tally::default();
    let mut survivors: Vec<&'v InstanceRecord> = Vec::with_capacity(cluster.len());
    for instance in &cluster {
        match feasible::static_misfit(overlay, instance, ask) {
            Some(misfit) => ruled_out.add(misfit, instance, overlay.free(instance)),
            None => survivors.push(instance),
        }
    }
    let strategies = if ask.strategies.is_empty() {
        default_strategies()
    } else {
        ask.strategies.clone()
    };
    let mut ranker = rank::Ranker::new(overlay, &cluster, &strategies, &ask.group, seed);
    let mut plan = AskPlan::default();
    for task in 0..ask.count {
        let mut best: Option<(rank::Key, &'v InstanceRecord)> = None;
        let mut misfits = feasible::Tally::default();
        for instance in &survivors {
            if let Some(misfit) = feasible::dynamic_misfit(overlay, instance, ask) {
                misfits.add(misfit, instance, overlay.free(instance));
                continue;
            }
            let key = ranker.key(overlay, instance, task as u64);
            if best.as_ref().is_none_or(|(b, _)| key < *b) {
                best = Some((key, instance));
            }
        }
        match best {
            Some((_, instance)) => {
                overlay.take(instance, ask.need, &ask.group);
                ranker.placed(instance);
                plan.instances.push(instance.id.clone());
            }
            None => {
                plan.failures = ruled_out.merge(misfits).failures(ask.need);
                break;
            }
        }
    }
    plan
}

#[cfg(test)]
mod tests;
