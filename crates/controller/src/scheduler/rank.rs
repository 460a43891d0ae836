//! Ranking: the strategies, in order, turn each feasible instance into a
//! key; the smallest key wins, and ties go to the lowest instance id (the
//! caller walks instances in id order and keeps the first minimum).
//!
//! - `binpack(cpu|memory)`: the least of that resource left first.
//! - `spread(instanceId|host)`: the fewest tasks of the group on the instance.
//! - `spread(attribute:<name>)`: the fewest tasks of the group among instances
//!   sharing the instance's value (instances without it share one bucket).
//! - `random`: a hash of the seed, the task and the instance id.

use std::collections::BTreeMap;

use orca_core::placement::{BinpackField, SpreadField, Strategy};

use super::Overlay;
use crate::state::InstanceRecord;

/// At most five strategies (ECS's limit); unused slots stay 0.
pub(super) type Key = [u64; orca_core::placement::MAX_STRATEGIES];

/// A 64-bit mix (splitmix64's finalizer): deterministic, no allocation.
pub(super) fn mix(a: u64, b: u64) -> u64 {
    let mut z = a ^ b.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

fn hash_str(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    })
}

fn attribute<'a>(instance: &'a InstanceRecord, name: &str) -> &'a str {
    instance
        .attribute(name)
        .and_then(|a| a.value.as_deref())
        .unwrap_or("")
}

pub(super) struct Ranker<'s> {
    strategies: &'s [Strategy],
    group: &'s str,
    seed: u64,
    /// For each strategy slot spreading over an attribute: the group's
    /// tasks per attribute value, across the cluster.
    buckets: Vec<Option<BTreeMap<String, u64>>>,
}

impl<'s> Ranker<'s> {
    pub(super) fn new(
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

    pub(super) fn key(&self, overlay: &Overlay<'_>, instance: &InstanceRecord, task: u64) -> Key {
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

    /// Counts a task just placed on `instance` into the attribute buckets.
    pub(super) fn placed(&mut self, instance: &InstanceRecord) {
        for (slot, strategy) in self.strategies.iter().enumerate() {
            if let (Strategy::Spread(SpreadField::Attribute(name)), Some(Some(b))) =
                (strategy, self.buckets.get_mut(slot))
            {
                *b.entry(attribute(instance, name).to_string()).or_default() += 1;
            }
        }
    }
}
