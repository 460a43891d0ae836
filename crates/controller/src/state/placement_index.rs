//! The scheduler's index of the container instances, kept current by
//! `apply` and carried from view to view, so a `schedule` call reads dense
//! columns instead of walking 10,000 records (issue 8: "no per-call
//! rebuild of the cluster").
//!
//! Per cluster ([`ClusterIndex`]): the instance ids in id order (an
//! instance's *position* is its rank in that order, the scheduler's tie
//! break), and by position: resources left (task addresses included) and
//! availability (status and agent), the id's hash for `random`, each attribute's value interned to
//! a bucket number (custom attributes over the agent's; none and a
//! name-only attribute are the value ""), and each task group's tasks.
//!
//! Positions: an instance registered later may sort anywhere in id order,
//! which shifts the positions after it. Every column is an `imbl::Vector`
//! (an RRB tree), where inserting at a position costs O(log n) and shares
//! the rest, so positions stay plain id ranks: the scheduler needs no
//! permutation, and the layout is a function of the records (rebuilding
//! gives the same positions). Registration-order slots with a separate
//! id-order permutation were the alternative; they would make the layout
//! depend on history and cost the scheduler a gather per column per call.
//!
//! Clones are cheap: every field is a persistent structure, and `apply`
//! copies only the chunks (64 entries) and paths it changes. Creating a
//! column (an attribute name or a task group appearing in a cluster for
//! the first time) costs one O(instances) allocation; a column goes away
//! when no instance has a value or a task of it, so the columns are those
//! of the live attributes and groups.
//!
//! The index is derived data: it is not serialized, and it is rebuilt
//! from the records whenever a state is restored ([`PlacementIndex::build`],
//! called by `ClusterState::rebuild_indexes`). Bucket *numbers* depend on
//! the order values appeared in, so two indexes are equal when they hold
//! the same facts ([`PlacementIndex::canonical`]); the scheduler's plans
//! depend only on which positions share a bucket, never on its number.

use std::collections::BTreeMap;
use std::sync::Arc;

use imbl::{OrdMap, OrdSet, Vector};
use orca_core::task::Resources;

use super::instances::{InstanceRecord, InstanceStatus};

/// FNV-1a of an instance id: the instance's part of a `random` key.
pub fn id_hash(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    })
}

/// Whether an instance takes placements at all, and if not, the first
/// reason in the scheduler's order (status before agent).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Availability {
    Open,
    Inactive,
    Draining,
    AgentDisconnected,
}

impl Availability {
    pub fn of(record: &InstanceRecord) -> Availability {
        match (record.status, record.agent_connected) {
            (InstanceStatus::Draining, _) => Availability::Draining,
            (InstanceStatus::Inactive, _) => Availability::Inactive,
            (InstanceStatus::Active, false) => Availability::AgentDisconnected,
            (InstanceStatus::Active, true) => Availability::Open,
        }
    }
}

/// The fixed-size facts of one instance, one column entry per position.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dense {
    /// The record's `remaining`.
    pub remaining: Resources,
    /// The record's [`InstanceRecord::free_addresses`] (RESOURCE:ENI).
    pub free_addresses: u32,
    pub availability: Availability,
    /// [`id_hash`] of the id, computed once at registration.
    pub id_hash: u64,
}

impl Dense {
    fn of(record: &InstanceRecord) -> Dense {
        Dense {
            remaining: record.remaining,
            free_addresses: record.free_addresses(),
            availability: Availability::of(record),
            id_hash: id_hash(&record.id),
        }
    }
}

/// One attribute name's values across a cluster, interned to buckets.
#[derive(Debug, Clone)]
pub struct AttributeColumn {
    /// Each position's bucket; bucket 0 is "" (no value).
    of: Vector<u32>,
    /// Each bucket's value; None for a bucket freed for reuse.
    values: Vector<Option<Arc<str>>>,
    /// How many positions each bucket holds.
    sizes: Vector<u32>,
    /// The bucket of each value in use ("" included).
    lookup: OrdMap<Arc<str>, u32>,
    /// Buckets no position holds, reused lowest first so churning values
    /// do not grow the bucket count.
    free: OrdSet<u32>,
}

impl AttributeColumn {
    /// `len` positions, all "".
    fn blank(len: usize) -> AttributeColumn {
        let empty: Arc<str> = Arc::from("");
        AttributeColumn {
            of: std::iter::repeat_n(0, len).collect(),
            values: Vector::unit(Some(empty.clone())),
            sizes: Vector::unit(len as u32),
            lookup: OrdMap::unit(empty, 0),
            free: OrdSet::new(),
        }
    }

    /// Each position's bucket.
    pub fn buckets(&self) -> &Vector<u32> {
        &self.of
    }

    /// One more than the highest bucket number.
    pub fn bucket_count(&self) -> usize {
        self.values.len()
    }

    fn value(&self, p: usize) -> &str {
        self.values[self.of[p] as usize].as_deref().unwrap_or("")
    }

    fn all_blank(&self) -> bool {
        self.sizes[0] as usize == self.of.len()
    }

    fn intern(&mut self, value: &str) -> u32 {
        if let Some(&b) = self.lookup.get(value) {
            return b;
        }
        let value: Arc<str> = Arc::from(value);
        let b = match self.free.remove_min() {
            Some(b) => {
                self.values.set(b as usize, Some(value.clone()));
                b
            }
            None => {
                self.values.push_back(Some(value.clone()));
                self.sizes.push_back(0);
                (self.values.len() - 1) as u32
            }
        };
        self.lookup.insert(value, b);
        b
    }

    fn set(&mut self, p: usize, value: &str) {
        let old = self.of[p];
        if self.value(p) == value {
            return;
        }
        let new = self.intern(value);
        self.of.set(p, new);
        self.sizes[new as usize] += 1;
        self.sizes[old as usize] -= 1;
        if self.sizes[old as usize] == 0 && old != 0 {
            if let Some(gone) = self.values.set(old as usize, None) {
                self.lookup.remove(&gone);
            }
            self.free.insert(old);
        }
    }

    fn insert_blank(&mut self, p: usize) {
        self.of.insert(p, 0);
        self.sizes[0] += 1;
    }
}

/// One task group's tasks on each instance of a cluster.
#[derive(Debug, Clone)]
pub struct GroupColumn {
    /// Each position's count (the record's `group_count`).
    of: Vector<u32>,
    /// Their sum: the column goes away at zero.
    total: u64,
}

impl GroupColumn {
    pub fn counts(&self) -> &Vector<u32> {
        &self.of
    }
}

/// One cluster's instances by position (rank in id order).
#[derive(Debug, Clone, Default)]
pub struct ClusterIndex {
    /// Instance ids, increasing.
    ids: Vector<Arc<str>>,
    dense: Vector<Dense>,
    /// By attribute name: every name some instance has a value for.
    attributes: OrdMap<String, AttributeColumn>,
    /// By task group: every group with a task on some instance.
    groups: OrdMap<String, GroupColumn>,
}

impl ClusterIndex {
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    pub fn ids(&self) -> &Vector<Arc<str>> {
        &self.ids
    }

    pub fn dense(&self) -> &Vector<Dense> {
        &self.dense
    }

    /// The column of attribute `name`; None when every instance has "".
    pub fn attribute(&self, name: &str) -> Option<&AttributeColumn> {
        self.attributes.get(name)
    }

    /// The column of task group `group`; None when it has no task here.
    pub fn group(&self, group: &str) -> Option<&GroupColumn> {
        self.groups.get(group)
    }

    fn find(&self, id: &str) -> Result<usize, usize> {
        self.ids.binary_search_by(|x| (**x).cmp(id))
    }

    /// Adds a newly registered instance at its rank, blank in every column,
    /// then fills in its facts.
    fn insert(&mut self, record: &InstanceRecord) {
        let p = match self.find(&record.id) {
            Ok(p) => p,
            Err(p) => {
                self.ids.insert(p, Arc::from(record.id.as_str()));
                self.dense.insert(p, Dense::of(record));
                let names: Vec<String> = self.attributes.keys().cloned().collect();
                for name in names {
                    if let Some(column) = self.attributes.get_mut(&name) {
                        column.insert_blank(p);
                    }
                }
                let groups: Vec<String> = self.groups.keys().cloned().collect();
                for group in groups {
                    if let Some(column) = self.groups.get_mut(&group) {
                        column.of.insert(p, 0);
                    }
                }
                p
            }
        };
        self.sync_dense(p, record);
        self.sync_attributes(p, record);
        for (group, &count) in &record.group_counts {
            self.sync_group(p, group, count);
        }
    }

    fn sync_dense(&mut self, p: usize, record: &InstanceRecord) {
        let dense = Dense::of(record);
        if self.dense[p] != dense {
            self.dense.set(p, dense);
        }
    }

    /// Sets every attribute column at `p` to the record's values: the
    /// names it has, and the names whose column holds a value for it now.
    fn sync_attributes(&mut self, p: usize, record: &InstanceRecord) {
        // The value the scheduler reads: `InstanceRecord::attribute`'s
        // (custom over the agent's, the first of a repeated name).
        let values: BTreeMap<&str, &str> = record
            .all_attributes()
            .map(|a| {
                let value = record.attribute(&a.name).and_then(|a| a.value.as_deref());
                (a.name.as_str(), value.unwrap_or(""))
            })
            .collect();
        let stale: Vec<String> = self
            .attributes
            .iter()
            .filter(|(name, column)| column.of[p] != 0 && !values.contains_key(name.as_str()))
            .map(|(name, _)| name.clone())
            .collect();
        for name in stale {
            self.set_attribute(p, &name, "");
        }
        for (name, value) in values {
            self.set_attribute(p, name, value);
        }
    }

    fn set_attribute(&mut self, p: usize, name: &str, value: &str) {
        let n = self.ids.len();
        let column = match self.attributes.get_mut(name) {
            Some(column) => column,
            None if value.is_empty() => return,
            None => self
                .attributes
                .entry(name.to_string())
                .or_insert_with(|| AttributeColumn::blank(n)),
        };
        column.set(p, value);
        if column.all_blank() {
            self.attributes.remove(name);
        }
    }

    fn sync_group(&mut self, p: usize, group: &str, count: u32) {
        let n = self.ids.len();
        let column = match self.groups.get_mut(group) {
            Some(column) => column,
            None if count == 0 => return,
            None => self
                .groups
                .entry(group.to_string())
                .or_insert_with(|| GroupColumn {
                    of: std::iter::repeat_n(0, n).collect(),
                    total: 0,
                }),
        };
        let old = column.of[p];
        if old == count {
            return;
        }
        column.of.set(p, count);
        column.total = column.total + u64::from(count) - u64::from(old);
        if column.total == 0 {
            self.groups.remove(group);
        }
    }
}

/// Every cluster's [`ClusterIndex`], by cluster name.
#[derive(Debug, Clone, Default)]
pub struct PlacementIndex {
    clusters: OrdMap<String, ClusterIndex>,
}

impl PlacementIndex {
    /// The index of `instances`, built from scratch (after a restore, and
    /// to check the one `apply` keeps).
    pub fn build(instances: &OrdMap<String, InstanceRecord>) -> PlacementIndex {
        let mut index = PlacementIndex::default();
        // Id order: each insert lands at the end of its cluster.
        for record in instances.values() {
            index.upsert(record);
        }
        index
    }

    pub fn cluster(&self, name: &str) -> Option<&ClusterIndex> {
        self.clusters.get(name)
    }

    /// A registered instance: inserted at its rank if new, else its
    /// resources, availability and attributes brought up to date (a
    /// registration changes no task counts).
    pub fn upsert(&mut self, record: &InstanceRecord) {
        self.clusters
            .entry(record.cluster.clone())
            .or_default()
            .insert(record);
    }

    /// Calls `f` with the instance's cluster and position; a record not in
    /// the index (a bug) is indexed whole instead.
    fn at(&mut self, record: &InstanceRecord, f: impl FnOnce(&mut ClusterIndex, usize)) {
        if let Some(cluster) = self.clusters.get_mut(record.cluster.as_str()) {
            if let Ok(p) = cluster.find(&record.id) {
                f(cluster, p);
                return;
            }
        }
        self.upsert(record);
    }

    /// After the record's resources, status or agent changed.
    pub fn sync_dense(&mut self, record: &InstanceRecord) {
        self.at(record, |c, p| c.sync_dense(p, record));
    }

    /// After the record's agent or custom attributes changed.
    pub fn sync_attributes(&mut self, record: &InstanceRecord) {
        self.at(record, |c, p| c.sync_attributes(p, record));
    }

    /// After the record's resources and its count of `group` changed (a
    /// task placed or released).
    pub fn sync_task(&mut self, record: &InstanceRecord, group: &str) {
        self.at(record, |c, p| {
            c.sync_dense(p, record);
            c.sync_group(p, group, record.group_count(group));
        });
    }

    /// The facts the index holds, independent of bucket numbering and of
    /// the order values appeared in: what two indexes must agree on.
    pub fn canonical(&self) -> BTreeMap<String, CanonicalCluster> {
        self.clusters
            .iter()
            .map(|(name, c)| {
                let attributes = c
                    .attributes
                    .iter()
                    .map(|(n, col)| {
                        let values = (0..col.of.len()).map(|p| col.value(p).to_string());
                        (n.clone(), values.collect())
                    })
                    .collect();
                let groups = c
                    .groups
                    .iter()
                    .map(|(g, col)| (g.clone(), col.of.iter().copied().collect()))
                    .collect();
                let canonical = CanonicalCluster {
                    ids: c.ids.iter().map(|id| id.to_string()).collect(),
                    dense: c.dense.iter().copied().collect(),
                    attributes,
                    groups,
                };
                (name.clone(), canonical)
            })
            .collect()
    }

    /// The index's own bookkeeping: column lengths, bucket sizes, the
    /// value lookup, group totals, no all-blank or empty column.
    pub fn check_consistency(&self) -> Result<(), IndexMismatch> {
        let fail = |what: String| Err(IndexMismatch(what));
        for (cluster, c) in &self.clusters {
            let n = c.ids.len();
            if c.dense.len() != n || c.ids.iter().zip(c.ids.iter().skip(1)).any(|(a, b)| a >= b) {
                return fail(format!(
                    "cluster {cluster}: ids unordered or columns uneven"
                ));
            }
            for (name, col) in &c.attributes {
                let mut sizes = vec![0u32; col.values.len()];
                for &b in &col.of {
                    sizes[b as usize] += 1;
                }
                let lookup_ok = col.lookup.iter().all(|(v, &b)| {
                    col.values.get(b as usize).and_then(|x| x.as_deref()) == Some(&**v)
                });
                let free_ok = col.values.iter().enumerate().all(|(b, v)| {
                    v.is_none() == col.free.contains(&(b as u32)) && (v.is_some() || sizes[b] == 0)
                });
                if col.of.len() != n
                    || sizes != col.sizes.iter().copied().collect::<Vec<_>>()
                    || !lookup_ok
                    || !free_ok
                    || col.lookup.len() + col.free.len() != col.values.len()
                    || col.all_blank()
                {
                    return fail(format!(
                        "cluster {cluster}: attribute column {name} inconsistent"
                    ));
                }
            }
            for (group, col) in &c.groups {
                let total: u64 = col.of.iter().map(|&x| u64::from(x)).sum();
                if col.of.len() != n || total != col.total || total == 0 {
                    return fail(format!(
                        "cluster {cluster}: group column {group} inconsistent"
                    ));
                }
            }
        }
        Ok(())
    }
}

/// One cluster's index as plain facts by position (see
/// [`PlacementIndex::canonical`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CanonicalCluster {
    pub ids: Vec<String>,
    pub dense: Vec<Dense>,
    pub attributes: BTreeMap<String, Vec<String>>,
    pub groups: BTreeMap<String, Vec<u32>>,
}

/// The index kept by `apply` disagrees with the records.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("placement index out of step with the records: {0}")]
pub struct IndexMismatch(pub String);

/// Equal when they hold the same facts (bucket numbers aside).
impl PartialEq for PlacementIndex {
    fn eq(&self, other: &Self) -> bool {
        self.canonical() == other.canonical()
    }
}
