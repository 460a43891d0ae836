//! Ranking: the strategies, in order, turn each feasible instance into a
//! key; the smallest key wins, and ties go to the lowest instance id (the
//! lowest position in the fleet, which is in id order).
//!
//! - `binpack(cpu|memory)`: the least of that resource left first.
//! - `spread(instanceId|host)`: the fewest tasks of the group on the instance.
//! - `spread(attribute:<name>)`: the fewest tasks of the group among instances
//!   sharing the instance's value (instances without it, or with a name-only
//!   attribute, share the bucket of "").
//! - `random`: a hash of the seed, the task and the instance id.
//!
//! [`Ranking`] resolves an ask's strategies once into [`Slot`]s over dense
//! arrays: the group's count per instance and, per spread attribute, each
//! instance's bucket (the value interned to a small integer) and the
//! group's tasks per bucket across the whole cluster. Computing a key then
//! reads integers only.

use orca_core::placement::{BinpackField, SpreadField, Strategy, MAX_STRATEGIES};
use orca_core::task::Resources;

use super::fleet::{Buckets, Fleet, Pos};

/// At most five strategies (ECS's limit); unused slots stay 0.
pub(super) type Key = [u64; MAX_STRATEGIES];

/// A 64-bit mix (splitmix64's finalizer): deterministic, no allocation.
pub(super) fn mix(a: u64, b: u64) -> u64 {
    let mut z = a ^ b.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// One strategy, resolved for an ask.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Slot {
    /// binpack(cpu): the instance's CPU left.
    Cpu,
    /// binpack(memory): the instance's memory left.
    Memory,
    /// spread(instanceId): the group's tasks on the instance.
    Group,
    /// spread(attribute): the group's tasks in the instance's bucket of the
    /// ask's `n`th distinct spread attribute.
    Bucket(usize),
    /// random: changes for every instance on every task.
    Random,
}

impl Slot {
    /// Whether only a placement on the instance itself changes its value.
    pub(super) fn is_local(self) -> bool {
        matches!(self, Slot::Cpu | Slot::Memory | Slot::Group)
    }
}

/// One spread attribute of an ask: the fleet's buckets for it and the
/// group's tasks per bucket, kept current as the ask places.
pub(super) struct Spread {
    pub(super) name: String,
    pub(super) buckets: Buckets,
    pub(super) totals: Vec<u64>,
}

/// An ask's strategies over the fleet's arrays. It owns the arrays it
/// borrowed from the fleet's caches for the ask; [`Ranking::restore`] gives
/// them back.
pub(super) struct Ranking {
    pub(super) slots: Vec<Slot>,
    /// The group's tasks per instance (view plus this call), when a slot or
    /// distinctInstance needs it; else empty.
    pub(super) group: Vec<u32>,
    pub(super) group_name: String,
    pub(super) spreads: Vec<Spread>,
    /// The index's hash of each instance id (`state::placement_index::id_hash`),
    /// when a slot is random; else empty.
    id_hashes: Vec<u64>,
    seed: u64,
}

/// The slots of `strategies` (at most [`MAX_STRATEGIES`] are read) and
/// the distinct attributes they spread over, in order of first use.
pub(super) fn resolve(strategies: &[Strategy]) -> (Vec<Slot>, Vec<String>) {
    let mut names: Vec<String> = Vec::new();
    let slots = strategies
        .iter()
        .take(MAX_STRATEGIES)
        .map(|strategy| match strategy {
            Strategy::Binpack(BinpackField::Cpu) => Slot::Cpu,
            Strategy::Binpack(BinpackField::Memory) => Slot::Memory,
            Strategy::Spread(SpreadField::InstanceId) => Slot::Group,
            Strategy::Random => Slot::Random,
            Strategy::Spread(SpreadField::Attribute(name)) => {
                match names.iter().position(|n| n == name) {
                    Some(n) => Slot::Bucket(n),
                    None => {
                        names.push(name.clone());
                        Slot::Bucket(names.len() - 1)
                    }
                }
            }
        })
        .collect();
    (slots, names)
}

impl Ranking {
    /// `group`: the group's counts per instance when a slot or
    /// distinctInstance reads them, else empty; `spreads`: the buckets of
    /// each attribute `resolve` named, in its order.
    pub(super) fn new(
        slots: Vec<Slot>,
        group_name: &str,
        group: Vec<u32>,
        spreads: Vec<(String, Buckets)>,
        id_hashes: Vec<u64>,
        seed: u64,
    ) -> Ranking {
        // The group's tasks per bucket, over the whole cluster (instances
        // ruled out included), as the view and this call stand.
        let spreads = spreads
            .into_iter()
            .map(|(name, buckets)| {
                let mut totals = vec![0u64; buckets.len()];
                for (&b, &count) in buckets.of.iter().zip(&group) {
                    totals[b as usize] += u64::from(count);
                }
                Spread {
                    name,
                    buckets,
                    totals,
                }
            })
            .collect();
        Ranking {
            slots,
            group,
            group_name: group_name.to_string(),
            spreads,
            id_hashes,
            seed,
        }
    }

    /// Gives the borrowed arrays back to the fleet's caches.
    pub(super) fn restore(self, fleet: &mut Fleet<'_>) {
        if !self.group.is_empty() {
            fleet.put_group(self.group_name, self.group);
        }
        for spread in self.spreads {
            fleet.put_buckets(spread.name, spread.buckets);
        }
        if !self.id_hashes.is_empty() {
            fleet.put_id_hashes(self.id_hashes);
        }
    }

    pub(super) fn has_random(&self) -> bool {
        self.slots.contains(&Slot::Random)
    }

    /// The group's tasks on the instance at `p` (needs the group counts).
    pub(super) fn group_count(&self, p: Pos) -> u32 {
        self.group[p as usize]
    }

    /// The value of a local slot.
    fn local_value(&self, slot: Slot, free: &[Resources], p: Pos) -> u64 {
        match slot {
            Slot::Cpu => free[p as usize].cpu,
            Slot::Memory => free[p as usize].memory,
            Slot::Group => u64::from(self.group[p as usize]),
            Slot::Bucket(_) | Slot::Random => 0,
        }
    }

    /// The local slots' values, in slot order, packed to the front: the
    /// order among instances that share every spread bucket.
    pub(super) fn local_key(&self, free: &[Resources], p: Pos) -> Key {
        let mut key = Key::default();
        let mut n = 0;
        for &slot in &self.slots {
            if slot.is_local() {
                key[n] = self.local_value(slot, free, p);
                n += 1;
            }
        }
        key
    }

    /// The full key of the instance at `p` for the `task`th task.
    pub(super) fn key(&self, free: &[Resources], p: Pos, task: u64) -> Key {
        let mut key = Key::default();
        for (k, &slot) in key.iter_mut().zip(&self.slots) {
            *k = match slot {
                Slot::Bucket(n) => {
                    let spread = &self.spreads[n];
                    spread.totals[spread.buckets.of[p as usize] as usize]
                }
                Slot::Random => mix(mix(self.seed, task), self.id_hashes[p as usize]),
                local => self.local_value(local, free, p),
            };
        }
        key
    }

    /// The full key of an instance whose local key is `local` and whose
    /// buckets are `buckets` (one per spread attribute); no random slot.
    pub(super) fn key_from(&self, local: &Key, buckets: &[u32]) -> Key {
        let mut key = Key::default();
        let mut n = 0;
        for (k, &slot) in key.iter_mut().zip(&self.slots) {
            *k = match slot {
                Slot::Bucket(s) => self.spreads[s].totals[buckets[s] as usize],
                _ => {
                    n += 1;
                    local[n - 1]
                }
            };
        }
        key
    }

    /// Counts a task just placed at `p` into the group and its buckets.
    pub(super) fn placed(&mut self, p: Pos) {
        if let Some(count) = self.group.get_mut(p as usize) {
            *count += 1;
        }
        for spread in &mut self.spreads {
            spread.totals[spread.buckets.of[p as usize] as usize] += 1;
        }
    }
}
