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
//! CPU, static host ports, task addresses), then rank by the strategies in order (binpack, spread, random),
//! then pick. `feasible.rs` names why an instance was ruled out; `rank.rs`
//! turns the strategies into keys; `select.rs` finds the smallest.
//!
//! Asks in one call are placed in order on a working overlay of the view,
//! so two asks never take the same resources. For speed at 10,000
//! instances (`fleet.rs`), each cluster the call touches becomes dense
//! arrays indexed by position (instances in id order): free resources with
//! the overlay applied, status and agent, each group's task counts (kept
//! current), each spread attribute's values interned to bucket numbers,
//! the id hashes for `random`, requiresAttributes and memberOf results.
//! All but the last two are copied out of the state's placement index
//! (`crate::state::placement_index`, kept current by `apply`), as asks
//! first need them, and shared by the call's later asks: a call reads no
//! record to learn them. No string is compared while tasks are placed.
//! Each task costs O(log n) plus the number of spread classes (zones), or
//! one pass over the feasible instances when `random` ranks (`select.rs`).
//! The static filters read records, looked up by id, only for the
//! instances that come up as best, and all of them (one walk) only when an
//! ask fails (for the failure's counts) or `random` ranks.
//!
//! Invariants, checked against the straightforward algorithm kept in
//! `reference.rs` by the property test in `equivalence.rs`:
//!
//! - the plan is exactly the reference's: same instances in the same
//!   order, same failures (one per reason, closest instance, counts);
//! - only a placement on an instance changes its own state, and only the
//!   chosen instance's buckets change for the others: an instance that
//!   does not fit at the start of an ask never fits later in it, and the
//!   chosen one is checked again (memberOf, distinctInstance, resources);
//! - an instance's static filters are evaluated, whenever that happens,
//!   on its state as the ask started: nothing is placed on it before it
//!   passes them;
//! - a memberOf result is remembered across the call's asks only when its
//!   evaluation read no dynamic fact (`runningTasksCount`, `task:group`).

#[cfg(test)]
mod equivalence;
mod feasible;
mod fleet;
pub mod ports;
mod rank;
#[cfg(test)]
mod reference;
mod select;

use std::collections::{BTreeMap, BTreeSet};

use orca_core::placement::expr::Expr;
use orca_core::placement::{Constraint, Strategy};
use orca_core::task::{Failure, Resources};
use orca_core::task_definition::Attribute;

use crate::state::host_ports::PortKey;
use crate::state::ClusterView;
use feasible::Tally;
use fleet::{Fleet, Pos, Statics};
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
    /// The host ports each task holds whatever instance it lands on
    /// (bridge and host mode mappings with a hostPort): an instance where
    /// one is reserved or taken does not fit (RESOURCE:PORTS). Dynamic
    /// ports are chosen after the plan (`ports::assign`).
    pub static_ports: Vec<PortKey>,
    /// The task addresses each task takes from the instance's task subnet
    /// (`crate::state::task_addresses`): an instance with fewer free does
    /// not fit (RESOURCE:ENI).
    pub addresses: u32,
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

    let defaults;
    let strategies = if ask.strategies.is_empty() {
        defaults = default_strategies();
        &defaults
    } else {
        &ask.strategies
    };
    let (slots, spread_names) = rank::resolve(strategies);
    let needs_group = distinct
        || slots
            .iter()
            .any(|s| matches!(s, rank::Slot::Group | rank::Slot::Bucket(_)));

    // The columns this ask ranks by: the call's earlier asks' (with their
    // placements), else copied from the state's placement index.
    let n = fleet.len();
    let group = fleet.take_group(&ask.group, needs_group);
    let spreads = spread_names
        .into_iter()
        .map(|name| {
            let buckets = fleet.take_buckets(&name);
            (name, buckets)
        })
        .collect();
    let id_hashes = if slots.contains(&rank::Slot::Random) {
        fleet.take_id_hashes()
    } else {
        Vec::new()
    };
    let mut ranking = rank::Ranking::new(slots, &ask.group, group, spreads, id_hashes, seed);
    let mut statics = Statics::take(fleet, &ask.required_attributes, exprs.clone());
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
        if fleet.ports_clash(p, &ask.static_ports) {
            return Some(Misfit::Ports);
        }
        if ask.addresses > fleet.free_addresses[p as usize] {
            return Some(Misfit::Addresses);
        }
        None
    };
    if !ask.static_ports.is_empty() {
        // The port filter reads every record's ports: one walk.
        fleet.load_records();
    }
    // Instances that pass the static filters, found out in this ask.
    let mut vetted = vec![false; n];
    let mut candidates: Vec<Pos> = (0..n as Pos)
        .filter(|&p| {
            fleet.base_misfit(p).is_none()
                && dynamic_misfit(fleet, &ranking, &member_of_lost, p).is_none()
        })
        .collect();
    if ranking.has_random() {
        // Every key changes on every task: filter them all now.
        if statics.reads_records() {
            fleet.load_records();
        }
        candidates.retain(|&p| {
            let ok = statics.misfit(fleet, p).is_none();
            vetted[p as usize] = ok;
            ok
        });
    }
    let mut selector = Selector::new(&ranking, &fleet.free, candidates);

    let mut plan = AskPlan::default();
    for task in 0..ask.count {
        let mut vet = |p: Pos| {
            if !vetted[p as usize] && statics.misfit(fleet, p).is_none() {
                vetted[p as usize] = true;
            }
            vetted[p as usize]
        };
        let Some(p) = selector.best(&ranking, &fleet.free, task as u64, &mut vet) else {
            // Every instance has a reason now: the static filters first
            // (as the ask started: an instance not yet vetted was not
            // placed on), then what the ask's placements changed.
            fleet.load_records();
            let mut ruled_out = Tally::default();
            let mut misfits = Tally::default();
            for p in 0..n as Pos {
                let free = fleet.free[p as usize];
                let base = fleet.base_misfit(p);
                let fixed = if base.is_some() || vetted[p as usize] {
                    base
                } else {
                    statics.misfit(fleet, p)
                };
                if let Some(misfit) = fixed {
                    ruled_out.add(misfit, fleet.rec(p), free);
                } else if let Some(misfit) = dynamic_misfit(fleet, &ranking, &member_of_lost, p) {
                    misfits.add(misfit, fleet.rec(p), free);
                }
            }
            plan.failures = ruled_out.merge(misfits).failures(ask.need);
            break;
        };
        fleet.take(p, (ask.need, ask.addresses), &ask.group, &ask.static_ports);
        ranking.placed(p);
        if !exprs.is_empty() && !fleet.member_of_holds_now(&exprs, p) {
            member_of_lost.insert(p);
        } else {
            member_of_lost.remove(&p);
        }
        let fits = dynamic_misfit(fleet, &ranking, &member_of_lost, p).is_none();
        selector.update(&ranking, &fleet.free, p, fits);
        plan.instances.push(fleet.id(p).to_string());
    }
    statics.restore(fleet);
    ranking.restore(fleet);
    plan
}

#[cfg(test)]
mod tests;
