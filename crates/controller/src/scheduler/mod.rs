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
//! then pick. `feasible.rs` names why an instance was ruled out; `rank.rs`
//! turns the strategies into keys; `select.rs` finds the smallest.
//!
//! Asks in one call are placed in order on a working overlay of the view,
//! so two asks never take the same resources. For speed at 10,000
//! instances (`fleet.rs`), each cluster the call touches becomes dense
//! arrays indexed by position (instances in id order): free resources with
//! the overlay applied, each group's task counts, each spread attribute's
//! values interned to bucket numbers, memberOf results that read only
//! static facts; built once per call, shared by its asks, no string
//! compared while tasks are placed. An ask filters every instance once;
//! each of its tasks then costs O(log n) plus the number of spread classes
//! (zones), or one pass over the feasible instances when `random` ranks
//! (`select.rs`). Invariants, checked against the straightforward
//! algorithm kept in `reference.rs` by `equivalence.rs`:
//!
//! - the plan is exactly the reference's: same instances in the same
//!   order, same failures (one per reason, closest instance, counts);
//! - only a placement on an instance changes its own state, and only the
//!   chosen instance's buckets change for the others: an instance that
//!   does not fit at the start of an ask never fits later in it, and the
//!   chosen one is checked again (memberOf, distinctInstance, resources);
//! - a memberOf result is remembered across the call's asks only when its
//!   evaluation read no dynamic fact (`runningTasksCount`, `task:group`).

#[cfg(test)]
mod equivalence;
mod feasible;
mod fleet;
mod rank;
#[cfg(test)]
mod reference;
mod select;

use std::collections::{BTreeMap, BTreeSet};

use orca_core::placement::expr::Expr;
use orca_core::placement::{Constraint, Strategy};
use orca_core::task::{Failure, Resources};
use orca_core::task_definition::Attribute;

use crate::state::instances::InstanceStatus;
use crate::state::{ClusterView, InstanceRecord};
use feasible::Tally;
use fleet::{Fleet, MemberOf, Pos};
use select::Selector;

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

/// Places every ask of the batch on `view`, in order.
pub fn schedule(view: &ClusterView, asks: &[PlacementAsk], seed: u64) -> Plan {
    let mut fleets: BTreeMap<&str, Fleet<'_>> = BTreeMap::new();
    let asks = asks
        .iter()
        .enumerate()
        .map(|(n, ask)| {
            let fleet = fleets
                .entry(ask.cluster.as_str())
                .or_insert_with(|| Fleet::new(view, &ask.cluster));
            place_ask(fleet, ask, rank::mix(seed, n as u64))
        })
        .collect();
    Plan {
        based_on_index: view.applied_index(),
        asks,
    }
}

fn place_ask<'v>(fleet: &mut Fleet<'v>, ask: &PlacementAsk, seed: u64) -> AskPlan {
    let distinct = ask
        .constraints
        .iter()
        .any(|c| matches!(c, Constraint::DistinctInstance));
    let exprs: Vec<&Expr> = ask
        .constraints
        .iter()
        .filter_map(|c| match c {
            Constraint::MemberOf(expr) => Some(expr),
            Constraint::DistinctInstance => None,
        })
        .collect();

    // The filters no placement of this ask changes, once per instance.
    let mut member_of = MemberOf::take(fleet, exprs.clone());
    let mut ruled_out: Vec<(Pos, Misfit)> = Vec::new();
    let mut survivors: Vec<Pos> = Vec::with_capacity(fleet.len());
    for p in 0..fleet.len() as Pos {
        match static_misfit(fleet, &mut member_of, ask, p) {
            Some(misfit) => ruled_out.push((p, misfit)),
            None => survivors.push(p),
        }
    }
    member_of.restore(fleet);

    let defaults;
    let strategies = if ask.strategies.is_empty() {
        defaults = default_strategies();
        &defaults
    } else {
        &ask.strategies
    };
    let mut ranking = rank::Ranking::new(fleet, strategies, &ask.group, distinct, seed);
    // Instances the ask's own placements made fail memberOf.
    let mut member_of_lost: BTreeSet<Pos> = BTreeSet::new();
    let dynamic_misfit = |fleet: &Fleet<'v>, ranking: &rank::Ranking, lost: &BTreeSet<Pos>, p| {
        if lost.contains(&p) {
            return Some(Misfit::MemberOf);
        }
        if distinct && ranking.group_count(p) > 0 {
            return Some(Misfit::DistinctInstance);
        }
        let free = fleet.free[p as usize];
        if ask.need.memory > free.memory {
            return Some(Misfit::Memory);
        }
        if ask.need.cpu > free.cpu {
            return Some(Misfit::Cpu);
        }
        None
    };
    let feasible: Vec<Pos> = survivors
        .iter()
        .copied()
        .filter(|&p| dynamic_misfit(fleet, &ranking, &member_of_lost, p).is_none())
        .collect();
    let mut selector = Selector::new(&ranking, &fleet.free, feasible);

    let mut plan = AskPlan::default();
    for task in 0..ask.count {
        let Some(p) = selector.best(&ranking, &fleet.free, task as u64) else {
            let mut tally = Tally::default();
            for &(p, misfit) in &ruled_out {
                tally.add(misfit, fleet.rec(p), fleet.free[p as usize]);
            }
            let mut misfits = Tally::default();
            for &p in &survivors {
                if let Some(misfit) = dynamic_misfit(fleet, &ranking, &member_of_lost, p) {
                    misfits.add(misfit, fleet.rec(p), fleet.free[p as usize]);
                }
            }
            plan.failures = tally.merge(misfits).failures(ask.need);
            break;
        };
        fleet.take(p, ask.need, &ask.group);
        ranking.placed(p);
        if !exprs.is_empty() && !fleet.member_of_holds_now(&exprs, p) {
            member_of_lost.insert(p);
        } else {
            member_of_lost.remove(&p);
        }
        let fits = dynamic_misfit(fleet, &ranking, &member_of_lost, p).is_none();
        selector.update(&ranking, &fleet.free, p, fits);
        plan.instances.push(fleet.rec(p).id.clone());
    }
    ranking.restore(fleet);
    plan
}

/// The filters no placement of the ask changes: status, agent,
/// attributes, and memberOf as the instance stands before the ask.
fn static_misfit(
    fleet: &Fleet<'_>,
    member_of: &mut MemberOf<'_>,
    ask: &PlacementAsk,
    p: Pos,
) -> Option<Misfit> {
    let instance = fleet.rec(p);
    match instance.status {
        InstanceStatus::Active => {}
        InstanceStatus::Draining => return Some(Misfit::Draining),
        InstanceStatus::Inactive => return Some(Misfit::Inactive),
    }
    if !instance.agent_connected {
        return Some(Misfit::Agent);
    }
    if !ask
        .required_attributes
        .iter()
        .all(|a| has_attribute(instance, a))
    {
        return Some(Misfit::Attribute);
    }
    if !fleet.member_of_holds(member_of, p) {
        return Some(Misfit::MemberOf);
    }
    None
}

/// requiresAttributes look at the agent's attributes only.
fn has_attribute(instance: &InstanceRecord, wanted: &Attribute) -> bool {
    instance
        .attributes
        .iter()
        .any(|a| a.name == wanted.name && (wanted.value.is_none() || a.value == wanted.value))
}

#[cfg(test)]
mod tests;
