//! One cluster's instances for one [`super::schedule`] call, as dense
//! arrays indexed by position (the instances in id order), plus what the
//! call's earlier placements took: the working overlay of the view.
//!
//! The columns come from the state's placement index
//! (`crate::state::placement_index`), which `apply` keeps current, so a
//! call reads no record to learn them: resources left and availability
//! (status and agent) are copied out when the call first touches the
//! cluster, each group's counts, attribute buckets and id hashes when an
//! ask first needs them. These are sequential copies of dense columns
//! (tens of microseconds at 10,000 instances), shared by the call's later
//! asks: an ask borrows them by value (`take_*`) and gives them back
//! (`put_*`, `restore`), so it can update the overlay while it reads them.
//!
//! Records are read only by the static filters (requiresAttributes,
//! memberOf: [`Statics`]), lazily, by id, for the instances that come up as
//! best, and remembered for the call. A pass that needs every record (a
//! failure's tally, `random` with static filters) walks them once
//! ([`Fleet::load_records`]).

use std::cell::{Cell, OnceCell};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::LazyLock;

use orca_core::placement::expr::{Expr, InstanceFacts};
use orca_core::task::Resources;
use orca_core::task_definition::Attribute;

use super::feasible::Misfit;
use crate::state::host_ports::PortKey;
use crate::state::placement_index::{Availability, ClusterIndex};
use crate::state::{ClusterView, InstanceRecord};

/// An instance's position in its fleet: its rank in id order.
pub(super) type Pos = u32;

/// The index of a cluster no instance registered in.
static NO_INSTANCES: LazyLock<ClusterIndex> = LazyLock::new(ClusterIndex::default);

/// What this call placed on an instance beyond what the view shows.
#[derive(Debug, Default)]
struct Taken {
    resources: Resources,
    tasks: u32,
    groups: BTreeMap<String, u32>,
    /// Static host ports this call's placements hold here.
    ports: BTreeSet<PortKey>,
    /// Task addresses this call's placements take here.
    addresses: u32,
}

/// Each instance's bucket for one attribute: instances with the same value
/// share a bucket; no attribute and a name-only attribute are the value "".
/// Bucket numbers mean nothing beyond that (the index reuses freed ones).
#[derive(Debug, Default)]
pub(super) struct Buckets {
    /// The bucket of each position.
    pub(super) of: Vec<u32>,
    /// One more than the highest bucket.
    count: usize,
}

impl Buckets {
    pub(super) fn len(&self) -> usize {
        self.count
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
    /// Where the records are, for the static filters.
    view: &'v ClusterView,
    /// The cluster's name, to walk its records.
    cluster: String,
    /// The cluster's placement index: ids and columns by position.
    index: &'v ClusterIndex,
    /// Every record by position, once a pass needed them all; until
    /// then [`Fleet::rec`] looks one up by id.
    recs: OnceCell<Vec<&'v InstanceRecord>>,
    /// `remaining` less what this call took.
    pub(super) free: Vec<Resources>,
    /// Free task addresses less what this call took (RESOURCE:ENI).
    pub(super) free_addresses: Vec<u32>,
    /// This call's placements, by position (few instances).
    taken: BTreeMap<Pos, Taken>,
    /// Per group: its tasks on each instance, view plus this call.
    groups: BTreeMap<String, Vec<u32>>,
    /// Per attribute name: each instance's bucket.
    buckets: BTreeMap<String, Buckets>,
    /// Per memberOf expression (by its source): remembered results.
    member_of: BTreeMap<String, Vec<Memo>>,
    /// The id hash of each instance, for `random`; empty until first needed.
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
        let index = view
            .placement_index
            .cluster(cluster)
            .unwrap_or(&NO_INSTANCES);
        let mut free = Vec::with_capacity(index.len());
        let mut free_addresses = Vec::with_capacity(index.len());
        let mut base = Vec::with_capacity(index.len());
        for dense in index.dense() {
            free.push(dense.remaining);
            free_addresses.push(dense.free_addresses);
            base.push(match dense.availability {
                Availability::Open => None,
                Availability::Inactive => Some(Misfit::Inactive),
                Availability::Draining => Some(Misfit::Draining),
                Availability::AgentDisconnected => Some(Misfit::Agent),
            });
        }
        Fleet {
            view,
            cluster: cluster.to_string(),
            index,
            recs: OnceCell::new(),
            free,
            free_addresses,
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
        self.free.len()
    }

    /// The id of the instance at `p`.
    pub(super) fn id(&self, p: Pos) -> &'v str {
        &self.index.ids()[p as usize]
    }

    /// The record of the instance at `p`.
    pub(super) fn rec(&self, p: Pos) -> &'v InstanceRecord {
        if let Some(recs) = self.recs.get() {
            return recs[p as usize];
        }
        self.view
            .instances
            .get(self.id(p))
            .expect("the placement index names recorded instances only")
    }

    /// Makes [`Fleet::rec`] an array read, for a pass over every instance:
    /// one walk of the records costs less than a lookup by id for each.
    pub(super) fn load_records(&self) {
        self.recs.get_or_init(|| {
            let recs: Vec<&'v InstanceRecord> = self
                .view
                .instances
                .values()
                .filter(|r| r.cluster == self.cluster)
                .collect();
            debug_assert_eq!(recs.len(), self.len(), "index and records disagree");
            recs
        });
    }

    /// Records a task of `group` needing `need` and `addresses` placed at
    /// `p`. Group counts an ask has borrowed are its own to update.
    pub(super) fn take(
        &mut self,
        p: Pos,
        (need, addresses): (Resources, u32),
        group: &str,
        ports: &[PortKey],
    ) {
        let t = self.taken.entry(p).or_default();
        t.ports.extend(ports.iter().copied());
        t.resources = t.resources.plus(need);
        t.addresses = t.addresses.saturating_add(addresses);
        t.tasks += 1;
        *t.groups.entry(group.to_string()).or_default() += 1;
        let dense = &self.index.dense()[p as usize];
        self.free[p as usize] = dense.remaining.saturating_sub(t.resources);
        self.free_addresses[p as usize] = dense.free_addresses.saturating_sub(t.addresses);
        if let Some(counts) = self.groups.get_mut(group) {
            counts[p as usize] += 1;
        }
    }

    /// Whether one of `ports` is reserved or taken at `p`, in the view or
    /// by this call's placements. Reads the record (no column holds ports).
    pub(super) fn ports_clash(&self, p: Pos, ports: &[PortKey]) -> bool {
        if ports.is_empty() {
            return false;
        }
        let rec = self.rec(p);
        let taken = self.taken.get(&p);
        ports
            .iter()
            .any(|&k| !rec.port_free(k) || taken.is_some_and(|t| t.ports.contains(&k)))
    }

    /// The group's tasks on each instance, view plus this call: an earlier
    /// ask's, else from the index when `needed`, else empty.
    pub(super) fn take_group(&mut self, group: &str, needed: bool) -> Vec<u32> {
        if let Some(counts) = self.groups.remove(group) {
            return counts;
        }
        if !needed {
            return Vec::new();
        }
        let mut counts: Vec<u32> = match self.index.group(group) {
            Some(column) => column.counts().iter().copied().collect(),
            None => vec![0; self.len()],
        };
        for (&p, taken) in &self.taken {
            if let Some(&extra) = taken.groups.get(group) {
                counts[p as usize] = counts[p as usize].saturating_add(extra);
            }
        }
        counts
    }

    pub(super) fn put_group(&mut self, group: String, counts: Vec<u32>) {
        self.groups.insert(group, counts);
    }

    /// Each instance's bucket for attribute `name`.
    pub(super) fn take_buckets(&mut self, name: &str) -> Buckets {
        if let Some(buckets) = self.buckets.remove(name) {
            return buckets;
        }
        match self.index.attribute(name) {
            Some(column) => Buckets {
                of: column.buckets().iter().copied().collect(),
                count: column.bucket_count(),
            },
            // Every instance has "".
            None => Buckets {
                of: vec![0; self.len()],
                count: 1,
            },
        }
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
            return self.index.dense().iter().map(|d| d.id_hash).collect();
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
            .unwrap_or_else(|| vec![Memo::Unknown; self.len()])
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
            instance: self.rec(p),
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

    /// Whether [`Statics::misfit`] reads records (else it costs nothing).
    pub(super) fn reads_records(&self) -> bool {
        !self.required_list.is_empty() || !self.member_of.exprs.is_empty()
    }

    /// Why the instance at `p` cannot take the ask's tasks whatever the
    /// ask places (status and agent aside).
    pub(super) fn misfit(&mut self, fleet: &Fleet<'_>, p: Pos) -> Option<Misfit> {
        let has = match self.required[p as usize] {
            Known::Yes => true,
            Known::No => false,
            Known::Unknown => {
                let has = self.required_list.is_empty()
                    || has_attributes(fleet.rec(p), self.required_list);
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
