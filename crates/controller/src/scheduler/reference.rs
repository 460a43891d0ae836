//! The reference scheduler (tests only): the straightforward algorithm the
//! fast path must agree with, plan for plan. Each task is one pass over the
//! ask's survivors: re-check the filters a placement can change, rank every
//! feasible instance by its strategy key, keep the first minimum. Strings
//! everywhere, no caches; `equivalence.rs` compares it with [`super::schedule`]
//! over random clusters, asks, strategies and seeds.

use std::collections::{BTreeMap, BTreeSet};

use orca_core::placement::expr::InstanceFacts;
use orca_core::placement::{BinpackField, Constraint, SpreadField, Strategy};
use orca_core::task::Resources;

use super::feasible::{Misfit, Tally};
use super::rank::{mix, Key};
use super::{default_strategies, AskPlan, PlacementAsk, Plan};
use crate::state::host_ports::PortKey;
use crate::state::instances::InstanceStatus;
use crate::state::placement_index::id_hash as hash_str;
use crate::state::{ClusterView, InstanceRecord};

/// What this plan has taken on an instance beyond what the view shows.
#[derive(Debug, Default, Clone)]
struct Taken {
    resources: Resources,
    tasks: u32,
    groups: BTreeMap<String, u32>,
    ports: BTreeSet<PortKey>,
    addresses: u32,
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

    fn free_addresses(&self, instance: &InstanceRecord) -> u32 {
        let taken = self
            .taken
            .get(instance.id.as_str())
            .map_or(0, |t| t.addresses);
        instance.free_addresses().saturating_sub(taken)
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

    fn port_taken(&self, instance: &InstanceRecord, key: PortKey) -> bool {
        !instance.port_free(key)
            || self
                .taken
                .get(instance.id.as_str())
                .is_some_and(|t| t.ports.contains(&key))
    }

    fn take(&mut self, instance: &'v InstanceRecord, ask: &PlacementAsk) {
        let (need, group) = (ask.need, ask.group.as_str());
        let t = self.taken.entry(instance.id.as_str()).or_default();
        t.ports.extend(ask.static_ports.iter().copied());
        t.resources = t.resources.plus(need);
        t.addresses += ask.addresses;
        t.tasks += 1;
        *t.groups.entry(group.to_string()).or_default() += 1;
    }
}

/// Places every ask of the batch on `view`, in order.
pub(super) fn schedule(view: &ClusterView, asks: &[PlacementAsk], seed: u64) -> Plan {
    let mut overlay = Overlay {
        view,
        taken: BTreeMap::new(),
    };
    let asks = asks
        .iter()
        .enumerate()
        .map(|(n, ask)| place_ask(&mut overlay, ask, mix(seed, n as u64)))
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
    let mut ruled_out = Tally::default();
    let mut survivors: Vec<&'v InstanceRecord> = Vec::with_capacity(cluster.len());
    for instance in &cluster {
        match static_misfit(overlay, instance, ask) {
            Some(misfit) => ruled_out.add(misfit, instance, overlay.free(instance)),
            None => survivors.push(instance),
        }
    }
    let strategies = if ask.strategies.is_empty() {
        default_strategies()
    } else {
        ask.strategies.clone()
    };
    let mut ranker = Ranker::new(overlay, &cluster, &strategies, &ask.group, seed);
    let mut plan = AskPlan::default();
    for task in 0..ask.count {
        let mut best: Option<(Key, &'v InstanceRecord)> = None;
        let mut misfits = Tally::default();
        for instance in &survivors {
            if let Some(misfit) = dynamic_misfit(overlay, instance, ask) {
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
                overlay.take(instance, ask);
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

/// An instance as the query language sees it, with this plan's placements.
struct Facts<'a, 'v> {
    overlay: &'a Overlay<'v>,
    instance: &'a InstanceRecord,
}

impl InstanceFacts for Facts<'_, '_> {
    fn instance_id(&self) -> &str {
        &self.instance.id
    }
    fn agent_connected(&self) -> bool {
        self.instance.agent_connected
    }
    fn agent_version(&self) -> &str {
        &self.instance.agent_version
    }
    fn attribute(&self, name: &str) -> Option<&str> {
        self.instance
            .attribute(name)
            .map(|a| a.value.as_deref().unwrap_or(""))
    }
    fn registered_at_ms(&self) -> i64 {
        self.instance.registered_at.0
    }
    fn running_tasks_count(&self) -> u32 {
        self.overlay.running_tasks(self.instance)
    }
    fn has_task_group(&self, group: &str) -> bool {
        self.overlay.group_count(self.instance, group) > 0
    }
    fn task_groups(&self) -> Vec<&str> {
        let mut groups: Vec<&str> = self
            .instance
            .group_counts
            .keys()
            .map(String::as_str)
            .collect();
        if let Some(taken) = self.overlay.taken.get(self.instance.id.as_str()) {
            groups.extend(taken.groups.keys().map(String::as_str));
            groups.sort_unstable();
            groups.dedup();
        }
        groups
    }
}

fn has_attribute(
    instance: &InstanceRecord,
    wanted: &orca_core::task_definition::Attribute,
) -> bool {
    instance
        .attributes
        .iter()
        .any(|a| a.name == wanted.name && (wanted.value.is_none() || a.value == wanted.value))
}

fn member_of_holds(overlay: &Overlay<'_>, instance: &InstanceRecord, ask: &PlacementAsk) -> bool {
    let facts = Facts { overlay, instance };
    ask.constraints.iter().all(|c| match c {
        Constraint::MemberOf(expr) => expr.matches(&facts),
        Constraint::DistinctInstance => true,
    })
}

fn static_misfit(
    overlay: &Overlay<'_>,
    instance: &InstanceRecord,
    ask: &PlacementAsk,
) -> Option<Misfit> {
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
    if !member_of_holds(overlay, instance, ask) {
        return Some(Misfit::MemberOf);
    }
    None
}

fn dynamic_misfit(
    overlay: &Overlay<'_>,
    instance: &InstanceRecord,
    ask: &PlacementAsk,
) -> Option<Misfit> {
    let touched = overlay.taken.contains_key(instance.id.as_str());
    if touched && !member_of_holds(overlay, instance, ask) {
        return Some(Misfit::MemberOf);
    }
    let distinct = ask
        .constraints
        .iter()
        .any(|c| matches!(c, Constraint::DistinctInstance));
    if distinct && overlay.group_count(instance, &ask.group) > 0 {
        return Some(Misfit::DistinctInstance);
    }
    let free = overlay.free(instance);
    if ask.need.memory > free.memory {
        return Some(Misfit::Memory);
    }
    if ask.need.cpu > free.cpu {
        return Some(Misfit::Cpu);
    }
    if ask
        .static_ports
        .iter()
        .any(|&k| overlay.port_taken(instance, k))
    {
        return Some(Misfit::Ports);
    }
    if ask.addresses > overlay.free_addresses(instance) {
        return Some(Misfit::Addresses);
    }
    None
}

fn attribute<'a>(instance: &'a InstanceRecord, name: &str) -> &'a str {
    instance
        .attribute(name)
        .and_then(|a| a.value.as_deref())
        .unwrap_or("")
}

struct Ranker<'s> {
    strategies: &'s [Strategy],
    group: &'s str,
    seed: u64,
    buckets: Vec<Option<BTreeMap<String, u64>>>,
}

impl<'s> Ranker<'s> {
    fn new(
        overlay: &Overlay<'_>,
        cluster: &[&InstanceRecord],
        strategies: &'s [Strategy],
        group: &'s str,
        seed: u64,
    ) -> Self {
        let buckets = strategies
            .iter()
            .map(|s| match s {
                Strategy::Spread(SpreadField::Attribute(name)) => {
                    let mut counts: BTreeMap<String, u64> = BTreeMap::new();
                    for instance in cluster {
                        *counts
                            .entry(attribute(instance, name).to_string())
                            .or_default() += u64::from(overlay.group_count(instance, group));
                    }
                    Some(counts)
                }
                _ => None,
            })
            .collect();
        Ranker {
            strategies,
            group,
            seed,
            buckets,
        }
    }

    fn key(&self, overlay: &Overlay<'_>, instance: &InstanceRecord, task: u64) -> Key {
        let mut key = Key::default();
        for (slot, strategy) in self.strategies.iter().enumerate().take(key.len()) {
            key[slot] = match strategy {
                Strategy::Binpack(BinpackField::Cpu) => overlay.free(instance).cpu,
                Strategy::Binpack(BinpackField::Memory) => overlay.free(instance).memory,
                Strategy::Spread(SpreadField::InstanceId) => {
                    u64::from(overlay.group_count(instance, self.group))
                }
                Strategy::Spread(SpreadField::Attribute(name)) => self.buckets[slot]
                    .as_ref()
                    .and_then(|b| b.get(attribute(instance, name)))
                    .copied()
                    .unwrap_or(0),
                Strategy::Random => mix(mix(self.seed, task), hash_str(&instance.id)),
            };
        }
        key
    }

    fn placed(&mut self, instance: &InstanceRecord) {
        for (slot, strategy) in self.strategies.iter().enumerate() {
            if let (Strategy::Spread(SpreadField::Attribute(name)), Some(Some(b))) =
                (strategy, self.buckets.get_mut(slot))
            {
                *b.entry(attribute(instance, name).to_string()).or_default() += 1;
            }
        }
    }
}
