//! One cluster's instances for one [`super::schedule`] call, as dense
//! arrays indexed by position (the instances in id order), plus what the
//! call's earlier placements took: the working overlay of the view.
//!
//! The arrays that do not depend on the ask are built once per call and
//! shared by its asks: attribute buckets (values interned to small
//! integers), each group's task counts (kept current as tasks are placed),
//! memberOf results that read only static facts, and the id hashes for
//! `random`. An ask borrows them by value (`take_*`) and gives them back
//! (`put_*`), so it can update the overlay while it reads them.

use std::cell::Cell;
use std::collections::BTreeMap;

use orca_core::placement::expr::{Expr, InstanceFacts};
use orca_core::task::Resources;

use super::rank::hash_str;
use crate::state::{ClusterView, InstanceRecord};

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
}

impl<'v> Fleet<'v> {
    /// The instances of `cluster` in `view`, in id order.
    pub(super) fn new(view: &'v ClusterView, cluster: &str) -> Fleet<'v> {
        let recs: Vec<&'v InstanceRecord> = view
            .instances
            .values()
            .filter(|i| i.cluster == cluster)
            .collect();
        let free = recs.iter().map(|r| r.remaining).collect();
        Fleet {
            recs,
            free,
            taken: BTreeMap::new(),
            groups: BTreeMap::new(),
            buckets: BTreeMap::new(),
            member_of: BTreeMap::new(),
            id_hashes: Vec::new(),
        }
    }

    pub(super) fn len(&self) -> usize {
        self.recs.len()
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

    /// The group's tasks on each instance (built on first use).
    pub(super) fn take_group(&mut self, group: &str) -> Vec<u32> {
        if let Some(counts) = self.groups.remove(group) {
            return counts;
        }
        self.recs
            .iter()
            .enumerate()
            .map(|(p, r)| {
                let extra = self
                    .taken
                    .get(&(p as Pos))
                    .and_then(|t| t.groups.get(group).copied())
                    .unwrap_or(0);
                r.group_count(group) + extra
            })
            .collect()
    }

    pub(super) fn put_group(&mut self, group: String, counts: Vec<u32>) {
        self.groups.insert(group, counts);
    }

    /// Each instance's bucket for attribute `name` (built on first use).
    pub(super) fn take_buckets(&mut self, name: &str) -> Buckets {
        if let Some(b) = self.buckets.remove(name) {
            return b;
        }
        let mut values: Vec<&str> = Vec::new();
        let mut index: BTreeMap<&str, u32> = BTreeMap::new();
        let of = self
            .recs
            .iter()
            .map(|r| {
                let value = r
                    .attribute(name)
                    .and_then(|a| a.value.as_deref())
                    .unwrap_or("");
                // A few values (zones) are found by a scan; many by the map.
                if values.len() <= 16 {
                    if let Some(b) = values.iter().position(|v| *v == value) {
                        return b as u32;
                    }
                } else if let Some(&b) = index.get(value) {
                    return b;
                }
                let b = values.len() as u32;
                values.push(value);
                if values.len() > 16 {
                    if index.is_empty() {
                        index.extend(values.iter().enumerate().map(|(n, v)| (*v, n as u32)));
                    } else {
                        index.insert(value, b);
                    }
                }
                b
            })
            .collect();
        Buckets {
            of,
            count: values.len(),
        }
    }

    pub(super) fn put_buckets(&mut self, name: String, buckets: Buckets) {
        self.buckets.insert(name, buckets);
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

/// An ask's memberOf expressions with their remembered results, borrowed
/// from the fleet for the ask.
pub(super) struct MemberOf<'a> {
    exprs: Vec<&'a Expr>,
    memos: Vec<Vec<Memo>>,
}

impl<'a> MemberOf<'a> {
    pub(super) fn take(fleet: &mut Fleet<'_>, exprs: Vec<&'a Expr>) -> MemberOf<'a> {
        let memos = exprs.iter().map(|e| fleet.take_memos(e)).collect();
        MemberOf { exprs, memos }
    }

    pub(super) fn restore(self, fleet: &mut Fleet<'_>) {
        for (expr, memo) in self.exprs.into_iter().zip(self.memos) {
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
