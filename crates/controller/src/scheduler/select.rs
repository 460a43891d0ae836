//! Picking the best feasible instance of an ask, task after task, without
//! a pass over every instance per task.
//!
//! What a placement changes: the chosen instance's own state (resources
//! left, the group's count on it, memberOf facts), and, for each spread
//! attribute, the total of the chosen instance's bucket, which is the key
//! of every instance in that bucket. Nothing else moves during an ask.
//!
//! [`Classes`] (no `random` slot): instances that share every spread bucket
//! form a class; within a class the bucket slots are equal, so the order is
//! the local slots' (binpack, spread by instance) then the position, kept
//! in a heap per class. Each task compares the classes' tops by their full
//! keys (classes are few: the zones, or their combinations), places on the
//! winner, pops it and pushes it back with its new local key if it still
//! fits. A task costs O(classes + log n).
//!
//! [`Scan`] (`random` among the slots: every key changes on every task):
//! one pass over the feasible instances per task, on dense arrays.
//!
//! Both hold the instances that fit as the ask starts (status, agent,
//! distinctInstance, resources: dense checks); an instance that does not
//! fit then never fits later in the ask (only a placement on it would
//! change its state), and the one placed on is checked again. The static
//! filters that read the records (requiresAttributes, memberOf) are
//! applied lazily by [`Classes`]: a class's top is vetted before it
//! competes and dropped if it fails, so an ask whose best instances fit
//! reads a few records, not all of them. [`Scan`] vets every candidate
//! first.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};

use orca_core::task::Resources;

use super::fleet::Pos;
use super::rank::{Key, Ranking};

/// The feasible instances of an ask, in the structure its slots allow.
pub(super) enum Selector {
    Classes(Classes),
    Scan(Scan),
}

impl Selector {
    /// Over `feasible` (positions in increasing order).
    pub(super) fn new(ranking: &Ranking, free: &[Resources], feasible: Vec<Pos>) -> Selector {
        if ranking.has_random() {
            Selector::Scan(Scan { feasible })
        } else {
            Selector::Classes(Classes::new(ranking, free, feasible))
        }
    }

    /// The instance the `task`th task goes to, if any fits. `vet` tells
    /// whether a candidate passes the static filters (a [`Scan`]'s were
    /// all vetted before); one that does not is dropped for the ask.
    pub(super) fn best(
        &mut self,
        ranking: &Ranking,
        free: &[Resources],
        task: u64,
        vet: &mut impl FnMut(Pos) -> bool,
    ) -> Option<Pos> {
        match self {
            Selector::Classes(c) => c.best(ranking, vet),
            Selector::Scan(s) => s.best(ranking, free, task),
        }
    }

    /// After a placement on `p` (returned by the last [`Selector::best`]):
    /// keep it with its new key if it still fits, else drop it.
    pub(super) fn update(&mut self, ranking: &Ranking, free: &[Resources], p: Pos, fits: bool) {
        match self {
            Selector::Classes(c) => c.update(ranking, free, p, fits),
            Selector::Scan(s) => {
                if !fits {
                    if let Ok(i) = s.feasible.binary_search(&p) {
                        s.feasible.remove(i);
                    }
                }
            }
        }
    }
}

pub(super) struct Scan {
    /// Positions, increasing.
    feasible: Vec<Pos>,
}

impl Scan {
    fn best(&self, ranking: &Ranking, free: &[Resources], task: u64) -> Option<Pos> {
        let mut best: Option<(Key, Pos)> = None;
        for &p in &self.feasible {
            let key = ranking.key(free, p, task);
            // Strictly smaller: on a tie the lower position (id) stays.
            if best.as_ref().is_none_or(|(b, _)| key < *b) {
                best = Some((key, p));
            }
        }
        best.map(|(_, p)| p)
    }
}

/// A heap entry: the local key, then the position.
type Entry = Reverse<(Key, Pos)>;

pub(super) struct Classes {
    /// The class of each position (meaningful for feasible ones).
    class_of: Vec<u32>,
    /// Per class: its bucket in each spread attribute of the ask.
    buckets: Vec<Vec<u32>>,
    /// Per class: its feasible instances by local key, then position.
    heaps: Vec<BinaryHeap<Entry>>,
}

impl Classes {
    fn new(ranking: &Ranking, free: &[Resources], feasible: Vec<Pos>) -> Classes {
        let n = free.len();
        let mut class_of = vec![0u32; n];
        let mut buckets: Vec<Vec<u32>> = Vec::new();
        match ranking.spreads.len() {
            0 => buckets.push(Vec::new()),
            // One spread attribute: the class is the bucket.
            1 => {
                let of = &ranking.spreads[0].buckets.of;
                for &p in &feasible {
                    class_of[p as usize] = of[p as usize];
                }
                buckets = (0..ranking.spreads[0].buckets.len() as u32)
                    .map(|b| vec![b])
                    .collect();
            }
            _ => {
                let mut index: BTreeMap<Vec<u32>, u32> = BTreeMap::new();
                for &p in &feasible {
                    let tuple: Vec<u32> = ranking
                        .spreads
                        .iter()
                        .map(|s| s.buckets.of[p as usize])
                        .collect();
                    let next = index.len() as u32;
                    let class = *index.entry(tuple.clone()).or_insert_with(|| {
                        buckets.push(tuple);
                        next
                    });
                    class_of[p as usize] = class;
                }
            }
        }
        let mut entries: Vec<Vec<Entry>> = (0..buckets.len()).map(|_| Vec::new()).collect();
        for p in feasible {
            entries[class_of[p as usize] as usize].push(Reverse((ranking.local_key(free, p), p)));
        }
        let heaps = entries.into_iter().map(BinaryHeap::from).collect();
        Classes {
            class_of,
            buckets,
            heaps,
        }
    }

    fn best(&mut self, ranking: &Ranking, vet: &mut impl FnMut(Pos) -> bool) -> Option<Pos> {
        let mut best: Option<(Key, Pos)> = None;
        for (heap, buckets) in self.heaps.iter_mut().zip(&self.buckets) {
            while heap.peek().is_some_and(|Reverse((_, p))| !vet(*p)) {
                heap.pop();
            }
            let Some(Reverse((local, p))) = heap.peek() else {
                continue;
            };
            let candidate = (ranking.key_from(local, buckets), *p);
            if best.as_ref().is_none_or(|b| candidate < *b) {
                best = Some(candidate);
            }
        }
        best.map(|(_, p)| p)
    }

    fn update(&mut self, ranking: &Ranking, free: &[Resources], p: Pos, fits: bool) {
        let heap = &mut self.heaps[self.class_of[p as usize] as usize];
        let top = heap.pop();
        debug_assert_eq!(top.map(|Reverse((_, q))| q), Some(p), "placed off the top");
        if fits {
            heap.push(Reverse((ranking.local_key(free, p), p)));
        }
    }
}
