//! One cluster's instances for one [`super::schedule`] call, as dense
//! arrays indexed by position (the instances in id order), plus what the
//! call's earlier placements took: the working overlay of the view.
//!
//! What does not depend on the ask is extracted from the records once per
//! call, when an ask first needs it, and shared by the call's later asks:
//! status and agent, attribute buckets (values interned to small
//! integers), each group's task counts (kept current as tasks are placed),
//! requiresAttributes and memberOf results ([`Statics`]; memberOf only
//! where the evaluation read no fact a placement changes), and the id
//! hashes for `random`. An ask borrows these by value (`take_*`) and gives
//! them back (`put_*`, `restore`), so it can update the overlay while it
//! reads them.
//!
//! A record's strings are separate allocations: a pass over 10,000 records
//! waits on memory, not on computing. Passes therefore prefetch a few
//! instances ahead ([`Fleet::prefetch_ahead`]), and filters are evaluated
//! lazily where the ranking allows.

use std::cell::Cell;
use std::collections::BTreeMap;

use orca_core::placement::expr::{Expr, InstanceFacts};
use orca_core::task::Resources;
use orca_core::task_definition::Attribute;

use super::feasible::Misfit;
use super::rank::hash_str;
use crate::state::instances::InstanceStatus;
use crate::state::{ClusterView, InstanceRecord};

/// How many instances ahead a pass asks the CPU to fetch the memory it
/// will read (a record's strings are separate allocations, so a pass over
/// 10,000 records waits on memory, not on computing).
const PREFETCH_DISTANCE: usize = 16;

/// A hint to start loading the cache line at `p`; it never faults.
#[inline(always)]
fn prefetch<T>(p: *const T) {
    // SAFETY: SSE is part of x86_64's baseline; a prefetch reads nothing
    // and never faults, whatever the address.
    #[cfg(target_arch = "x86_64")]
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(p.cast::<i8>());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

/// An instance's position in its fleet: its rank in id order.
pub(super) type Pos = u32;

/// What this call placed on an instance beyond what the view shows.
#[derive(Debug, Default)]
struct Taken {
    resources: Resources,
    tasks: u32,
    groups: BTreeMap<String, u32>,
}

/// Each instance's bucket for one attribute: instances with the same value
/// share a bucket; no attribute and a name-only attribute are the value "".
#[derive(Debug, Default)]
pub(super) struct Buckets {
    /// The bucket of each position.
    pub(super) of: Vec<u32>,
    /// How many distinct values.
    count: usize,
}

impl Buckets {
    pub(super) fn len(&self) -> usize {
        self.count
    }
}

/// Interns one attribute's values instance after instance into [`Buckets`].
#[derive(Debug, Default)]
pub(super) struct BucketsBuilder<'v> {
    of: Vec<u32>,
    /// The values met so far, by bucket; a scan finds one among a few
    /// (zones), the index among many.
    values: Vec<&'v str>,
    index: BTreeMap<&'v str, u32>,
}

/// Past this many values, the index finds a value's bucket.
const SCANNED_VALUES: usize = 16;

impl<'v> BucketsBuilder<'v> {
    /// The attribute `name` of the next instance.
    pub(super) fn push(&mut self, instance: &'v InstanceRecord, name: &str) {
        let value = instance
            .attribute(name)
            .and_then(|a| a.value.as_deref())
            .unwrap_or("");
        let found = if self.values.len() <= SCANNED_VALUES {
            self.values
                .iter()
                .position(|v| *v == value)
                .map(|b| b as u32)
        } else {
            self.index.get(value).copied()
        };
        let bucket = found.unwrap_or_else(|| {
            let b = self.values.len() as u32;
            self.values.push(value);
            if self.values.len() > SCANNED_VALUES {
                if self.index.is_empty() {
                    self.index
                        .extend(self.values.iter().enumerate().map(|(n, v)| (*v, n as u32)));
                } else {
                    self.index.insert(value, b);
                }
            }
            b
        });
        self.of.push(bucket);
    }

    pub(super) fn finish(self) -> Buckets {
        Buckets {
            of: self.of,
            count: self.values.len(),
        }
    }
}

/// Whether the instance's agent attributes include every one of
/// `required` (requiresAttributes ignore custom attributes).
pub(super) fn has_attributes(instance: &InstanceRecord, required: &[Attribute]) -> bool {
    required.iter().all(|wanted| {
        instance
            .attributes
            .iter()
            .any(|a| a.name == wanted.name && (wanted.value.is_none() || a.value == wanted.value))
    })
}

/// A memberOf expression's result on one instance, remembered across the
/// asks of a call when it read only facts no placement changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Memo {
    Unknown,
    Holds,
    Fails,
    /// It read `runningTasksCount` or `task:group`: evaluate every time.
    Dynamic,
}

pub(super) struct Fleet<'v> {
    /// The cluster's instances in id order.
    pub(super) recs: Vec<&'v InstanceRecord>,
    /// `remaining` less what this call took.
    pub(super) free: Vec<Resources>,
    /// This call's placements, by position (few instances).
    taken: BTreeMap<Pos, Taken>,
    /// Per group: its tasks on each instance, view plus this call.
    groups: BTreeMap<String, Vec<u32>>,
    /// Per attribute name: each instance's bucket.
    buckets: BTreeMap<String, Buckets>,
    /// Per memberOf expression (by its source): remembered results.
    member_of: BTreeMap<String, Vec<Memo>>,
    /// `hash_str` of each id, for `random`; empty until first needed.
    id_hashes: Vec<u64>,
    /// Per requiresAttributes list: whether each instance has them all,
    /// as far as asks have needed to know.
    required: BTreeMap<Vec<Attribute>, Vec<Known>>,
    /// Status and agent, per instance: the misfit no ask changes.
    base: Vec<Option<Misfit>>,
}

impl<'v> Fleet<'v> {
    /// The instances of `cluster` in `view`, in id order.
    pub(super) fn new(view: &'v ClusterView, cluster: &str) -> Fleet<'v> {
        let all: Vec<&'v InstanceRecord> = view.instances.values().collect();
        let mut recs: Vec<&'v InstanceRecord> = Vec::with_capacity(all.len());
        let mut free = Vec::with_capacity(all.len());
        let mut base = Vec::with_capacity(all.len());
        for (i, r) in all.iter().enumerate() {
            if let Some(ahead) = all.get(i + 2 * PREFETCH_DISTANCE) {
                prefetch(*ahead);
                prefetch(&ahead.cluster);
            }
            if let Some(ahead) = all.get(i + PREFETCH_DISTANCE) {
                prefetch(ahead.cluster.as_ptr());
            }
            if r.cluster != cluster {
                continue;
            }
            recs.push(*r);
            free.push(r.remaining);
            base.push(match (r.status, r.agent_connected) {
                (InstanceStatus::Draining, _) => Some(Misfit::Draining),
                (InstanceStatus::Inactive, _) => Some(Misfit::Inactive),
                (InstanceStatus::Active, false) => Some(Misfit::Agent),
                (InstanceStatus::Active, true) => None,
            });
        }
        Fleet {
            recs,
            free,
            taken: BTreeMap::new(),
            groups: BTreeMap::new(),
            buckets: BTreeMap::new(),
            member_of: BTreeMap::new(),
            id_hashes: Vec::new(),
            required: BTreeMap::new(),
            base,
        }
    }

    pub(super) fn len(&self) -> usize {
        self.recs.len()
    }

    /// Starts loading what a pass at `p` will read a few instances ahead:
    /// the record, then its attribute list, then the names among them as
    /// long as one of `lengths` (the names the pass compares) and their
    /// values. Each step reads what the one before fetched, so the pass
    /// waits on one memory latency per many instances instead of several
    /// per instance.
    pub(super) fn prefetch_ahead(&self, p: Pos, lengths: &[usize]) {
        let p = p as usize;
        if let Some(r) = self.recs.get(p + 3 * PREFETCH_DISTANCE) {
            prefetch(&r.attributes);
            prefetch(&r.group_counts);
        }
        if let Some(r) = self.recs.get(p + 2 * PREFETCH_DISTANCE) {
            let attributes = r.attributes.as_ptr();
            for line in 0..r.attributes.len().div_ceil(2) {
                prefetch(attributes.wrapping_add(2 * line).cast::<u8>());
            }
        }
        if let Some(r) = self.recs.get(p + PREFETCH_DISTANCE) {
            for a in r
                .attributes
                .iter()
                .filter(|a| lengths.contains(&a.name.len()))
            {
                prefetch(a.name.as_ptr());
                if let Some(v) = &a.value {
                    prefetch(v.as_ptr());
                }
            }
        }
    }

    pub(super) fn rec(&self, p: Pos) -> &'v InstanceRecord {
        self.recs[p as usize]
    }

    /// Records a task of `group` needing `need` placed at `p`. Group counts
    /// an ask has borrowed are its own to update.
    pub(super) fn take(&mut self, p: Pos, need: Resources, group: &str) {
        let t = self.taken.entry(p).or_default();
        t.resources = t.resources.plus(need);
        t.tasks += 1;
        *t.groups.entry(group.to_string()).or_default() += 1;
        self.free[p as usize] = self.recs[p as usize].remaining.saturating_sub(t.resources);
        if let Some(counts) = self.groups.get_mut(group) {
            counts[p as usize] += 1;
        }
    }

    /// The group's tasks on each instance, if an earlier ask built them.
    pub(super) fn take_group(&mut self, group: &str) -> Option<Vec<u32>> {
        self.groups.remove(group)
    }

    /// The group's tasks on the instance at `p`, view plus this call.
    pub(super) fn group_count_at(&self, p: Pos, group: &str) -> u32 {
        let extra = self
            .taken
            .get(&p)
            .and_then(|t| t.groups.get(group).copied())
            .unwrap_or(0);
        self.recs[p as usize]
            .group_count(group)
            .saturating_add(extra)
    }

    pub(super) fn put_group(&mut self, group: String, counts: Vec<u32>) {
        self.groups.insert(group, counts);
    }

    /// Each instance's bucket for attribute `name`, if an earlier ask built them.
    pub(super) fn take_buckets(&mut self, name: &str) -> Option<Buckets> {
        self.buckets.remove(name)
    }

    pub(super) fn put_buckets(&mut self, name: String, buckets: Buckets) {
        self.buckets.insert(name, buckets);
    }

    /// Status and agent: the misfit no ask changes.
    pub(super) fn base_misfit(&self, p: Pos) -> Option<Misfit> {
        self.base[p as usize]
    }

    pub(super) fn take_id_hashes(&mut self) -> Vec<u64> {
        if self.id_hashes.is_empty() {
            return self.recs.iter().map(|r| hash_str(&r.id)).collect();
        }
        std::mem::take(&mut self.id_hashes)
    }

    pub(super) fn put_id_hashes(&mut self, hashes: Vec<u64>) {
        self.id_hashes = hashes;
    }

    /// The remembered results of `expr` (all unknown on first use).
    fn take_memos(&mut self, expr: &Expr) -> Vec<Memo> {
        self.member_of
            .remove(expr.source())
            .unwrap_or_else(|| vec![Memo::Unknown; self.recs.len()])
    }

    /// Whether every expression holds at `p` as the instance stands now,
    /// through the remembered results where they do not depend on it.
    pub(super) fn member_of_holds(&self, memos: &mut MemberOf<'_>, p: Pos) -> bool {
        for (expr, memo) in memos.exprs.iter().zip(memos.memos.iter_mut()) {
            let holds = match memo[p as usize] {
                Memo::Holds => true,
                Memo::Fails => false,
                Memo::Dynamic => expr.matches(&self.facts(p)),
                Memo::Unknown => {
                    let facts = Tracking {
                        facts: self.facts(p),
                        dynamic: Cell::new(false),
                    };
                    let holds = expr.matches(&facts);
                    memo[p as usize] = if facts.dynamic.get() {
                        Memo::Dynamic
                    } else if holds {
                        Memo::Holds
                    } else {
                        Memo::Fails
                    };
                    holds
                }
            };
            if !holds {
                return false;
            }
        }
        true
    }

    /// Whether every expression holds at `p` now, evaluated afresh.
    pub(super) fn member_of_holds_now(&self, exprs: &[&Expr], p: Pos) -> bool {
        let facts = self.facts(p);
        exprs.iter().all(|e| e.matches(&facts))
    }

    fn facts(&self, p: Pos) -> Facts<'_, 'v> {
        Facts {
            instance: self.recs[p as usize],
            taken: self.taken.get(&p),
        }
    }
}

/// Whether an instance has an ask's requiresAttributes, once looked up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Known {
    Unknown,
    Yes,
    No,
}

/// An ask's memberOf expressions with their remembered results, borrowed
/// from the fleet for the ask.
pub(super) struct MemberOf<'a> {
    exprs: Vec<&'a Expr>,
    memos: Vec<Vec<Memo>>,
}

/// The filters no placement of an ask changes (requiresAttributes, then
/// memberOf as the instance stands before the ask's own placements), each
/// evaluated the first time an instance needs it and remembered for the
/// call: an ask whose best instances fit looks at a few records, not at
/// all of them. Status and agent are [`Fleet::base_misfit`].
pub(super) struct Statics<'a> {
    required_list: &'a [Attribute],
    required: Vec<Known>,
    member_of: MemberOf<'a>,
}

impl<'a> Statics<'a> {
    pub(super) fn take(
        fleet: &mut Fleet<'_>,
        required_list: &'a [Attribute],
        exprs: Vec<&'a Expr>,
    ) -> Statics<'a> {
        let required = fleet
            .required
            .remove(required_list)
            .unwrap_or_else(|| vec![Known::Unknown; fleet.len()]);
        let memos = exprs.iter().map(|e| fleet.take_memos(e)).collect();
        Statics {
            required_list,
            required,
            member_of: MemberOf { exprs, memos },
        }
    }

    /// Why the instance at `p` cannot take the ask's tasks whatever the
    /// ask places (status and agent aside).
    pub(super) fn misfit(&mut self, fleet: &Fleet<'_>, p: Pos) -> Option<Misfit> {
        let has = match self.required[p as usize] {
            Known::Yes => true,
            Known::No => false,
            Known::Unknown => {
                let has = has_attributes(fleet.rec(p), self.required_list);
                self.required[p as usize] = if has { Known::Yes } else { Known::No };
                has
            }
        };
        if !has {
            return Some(Misfit::Attribute);
        }
        if !fleet.member_of_holds(&mut self.member_of, p) {
            return Some(Misfit::MemberOf);
        }
        None
    }

    pub(super) fn restore(self, fleet: &mut Fleet<'_>) {
        fleet
            .required
            .insert(self.required_list.to_vec(), self.required);
        let MemberOf { exprs, memos } = self.member_of;
        for (expr, memo) in exprs.into_iter().zip(memos) {
            fleet.member_of.insert(expr.source().to_string(), memo);
        }
    }
}

/// An instance as the query language sees it, with this call's placements.
struct Facts<'a, 'v> {
    instance: &'v InstanceRecord,
    taken: Option<&'a Taken>,
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
        let extra = self.taken.map_or(0, |t| t.tasks);
        u32::try_from(self.instance.task_ids.len())
            .unwrap_or(u32::MAX)
            .saturating_add(extra)
    }
    fn has_task_group(&self, group: &str) -> bool {
        let extra = self
            .taken
            .and_then(|t| t.groups.get(group).copied())
            .unwrap_or(0);
        self.instance.group_count(group).saturating_add(extra) > 0
    }
    fn task_groups(&self) -> Vec<&str> {
        let mut groups: Vec<&str> = self
            .instance
            .group_counts
            .keys()
            .map(String::as_str)
            .collect();
        if let Some(taken) = self.taken {
            groups.extend(taken.groups.keys().map(String::as_str));
            groups.sort_unstable();
            groups.dedup();
        }
        groups
    }
}

/// [`Facts`] that notes whether the expression read anything a placement
/// can change. The evaluation is a pure function of the answers it gets:
/// if it asked nothing dynamic, the answers it got hold for any overlay,
/// so its result does too.
struct Tracking<'a, 'v> {
    facts: Facts<'a, 'v>,
    dynamic: Cell<bool>,
}

impl InstanceFacts for Tracking<'_, '_> {
    fn instance_id(&self) -> &str {
        self.facts.instance_id()
    }
    fn agent_connected(&self) -> bool {
        self.facts.agent_connected()
    }
    fn agent_version(&self) -> &str {
        self.facts.agent_version()
    }
    fn attribute(&self, name: &str) -> Option<&str> {
        self.facts.attribute(name)
    }
    fn registered_at_ms(&self) -> i64 {
        self.facts.registered_at_ms()
    }
    fn running_tasks_count(&self) -> u32 {
        self.dynamic.set(true);
        self.facts.running_tasks_count()
    }
    fn has_task_group(&self, group: &str) -> bool {
        self.dynamic.set(true);
        self.facts.has_task_group(group)
    }
    fn task_groups(&self) -> Vec<&str> {
        self.dynamic.set(true);
        self.facts.task_groups()
    }
}
