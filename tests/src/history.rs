//! A linearizability checker for task-definition registration histories.
//!
//! Clients record each operation's invocation and completion on one global
//! logical clock ([`tick`]), so "A completed before B was invoked" is
//! `a.complete < b.invoke`. The model, per family: a counter; each applied
//! `Register` takes the next revision; `ReadLatest` (describe by family)
//! returns the current counter (0: nothing registered yet). A describe that
//! answers "not found" is recorded as `Ok(0)`, a read of "absent": it is
//! checked like any other read (a stale "absent" is a [`ViolationKind::StaleRead`]).
//!
//! Outcomes: `Ok(rev)`; `Unknown` (timed out or the connection was lost: it may
//! or may not have taken effect, possibly long after its completion);
//! `Failed` (definitely not applied). Failed reads and reads with unknown
//! outcome constrain nothing.
//!
//! [`History::check`] first looks for the named violations (duplicate
//! revision, real-time order between registers, a stale read, a read from the
//! future, non-monotonic reads, a lost or phantom revision, a gap), each with a
//! readable description, then runs a complete check: revision `k` takes
//! effect at a point `p_k` within its register's window (an unacknowledged
//! revision is given to an `Unknown` register, earliest invoked first), the
//! points increase with `k`, and a read returning `r` needs
//! `p_r < its completion` and `p_(r+1) > its invocation`. Such points exist iff
//! for every `k` every lower bound of revisions `1..=k` is below the upper
//! bound of `k`.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

static SEQ: AtomicU64 = AtomicU64::new(1);

/// The next instant of the process-wide logical clock.
pub fn tick() -> u64 {
    SEQ.fetch_add(1, Ordering::SeqCst)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpKind {
    Register,
    ReadLatest,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Ok(u64),
    Unknown,
    Failed,
}

impl Outcome {
    /// The outcome of a register call, conservatively: only errors a server
    /// returns before proposing (validation, not found, permission) count as
    /// `Failed`; anything else may have been applied.
    pub fn of_register(result: &Result<u64, tonic::Status>) -> Outcome {
        use tonic::Code;
        match result {
            Ok(rev) => Outcome::Ok(*rev),
            Err(s) => match s.code() {
                Code::InvalidArgument
                | Code::NotFound
                | Code::AlreadyExists
                | Code::PermissionDenied
                | Code::Unauthenticated
                | Code::OutOfRange
                | Code::Unimplemented => Outcome::Failed,
                _ => Outcome::Unknown,
            },
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Op {
    pub kind: OpKind,
    pub family: String,
    /// Who ran it (for the report only).
    pub client: usize,
    pub invoke: u64,
    pub complete: u64,
    pub outcome: Outcome,
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match self.kind {
            OpKind::Register => "register",
            OpKind::ReadLatest => "read",
        };
        write!(
            f,
            "client {} {what} {} [{}..{}] -> {:?}",
            self.client, self.family, self.invoke, self.complete, self.outcome
        )
    }
}

/// An operation invoked and not yet completed.
#[derive(Debug)]
#[must_use = "complete it with History::complete"]
pub struct Pending {
    kind: OpKind,
    family: String,
    client: usize,
    invoke: u64,
}

/// The operations of a run; share it between clients behind an `Arc`.
#[derive(Debug, Default)]
pub struct History {
    ops: Mutex<Vec<Op>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ViolationKind {
    DuplicateRevision,
    RegisterOrder,
    StaleRead,
    ReadFromFuture,
    NonMonotonicRead,
    LostRevision,
    PhantomRevision,
    Gap,
    NotLinearizable,
}

/// What went wrong, for a human.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    pub kind: ViolationKind,
    pub family: String,
    pub description: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:?} in family {}: {}",
            self.kind, self.family, self.description
        )
    }
}

impl std::error::Error for Violation {}

impl History {
    pub fn new() -> Self {
        Self::default()
    }

    /// Marks the invocation of an operation now.
    pub fn invoke(&self, kind: OpKind, family: &str, client: usize) -> Pending {
        Pending {
            kind,
            family: family.to_string(),
            client,
            invoke: tick(),
        }
    }

    /// Marks its completion now.
    pub fn complete(&self, pending: Pending, outcome: Outcome) {
        let complete = tick();
        self.push(Op {
            kind: pending.kind,
            family: pending.family,
            client: pending.client,
            invoke: pending.invoke,
            complete,
            outcome,
        });
    }

    /// Adds an operation built by hand.
    pub fn push(&self, op: Op) {
        self.ops.lock().unwrap_or_else(|e| e.into_inner()).push(op);
    }

    pub fn ops(&self) -> Vec<Op> {
        self.ops.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Every operation, one a line, in invocation order (for failure messages).
    pub fn dump(&self) -> String {
        let mut ops = self.ops();
        ops.sort_by_key(|o| o.invoke);
        ops.iter().map(|o| format!("{o}\n")).collect()
    }

    /// Checks the history alone.
    pub fn check(&self) -> Result<(), Violation> {
        check_ops(&self.ops(), None)
    }

    /// Checks the history against the revisions stored at the end, per
    /// family (a family missing from `finals` stored nothing).
    pub fn check_final(&self, finals: &BTreeMap<String, Vec<u64>>) -> Result<(), Violation> {
        check_ops(&self.ops(), Some(finals))
    }
}

/// Checks `ops`, optionally against the final stored revisions per family.
pub fn check_ops(ops: &[Op], finals: Option<&BTreeMap<String, Vec<u64>>>) -> Result<(), Violation> {
    let mut families: BTreeMap<&str, Vec<&Op>> = BTreeMap::new();
    for op in ops {
        families.entry(op.family.as_str()).or_default().push(op);
    }
    if let Some(finals) = finals {
        for f in finals.keys() {
            families.entry(f.as_str()).or_default();
        }
    }
    for (family, ops) in families {
        let stored = finals.map(|f| f.get(family).cloned().unwrap_or_default());
        Family::new(family, &ops).check(stored.as_deref())?;
    }
    Ok(())
}

struct Family<'a> {
    name: &'a str,
    acked: Vec<(u64, &'a Op)>,
    unknown: Vec<&'a Op>,
    reads: Vec<(u64, &'a Op)>,
}

impl<'a> Family<'a> {
    fn new(name: &'a str, ops: &[&'a Op]) -> Self {
        let mut me = Family {
            name,
            acked: vec![],
            unknown: vec![],
            reads: vec![],
        };
        for &op in ops {
            match (op.kind, op.outcome) {
                (OpKind::Register, Outcome::Ok(r)) => me.acked.push((r, op)),
                (OpKind::Register, Outcome::Unknown) => me.unknown.push(op),
                (OpKind::ReadLatest, Outcome::Ok(r)) => me.reads.push((r, op)),
                _ => {}
            }
        }
        me.acked.sort_by_key(|&(r, o)| (r, o.invoke));
        me.unknown.sort_by_key(|o| o.invoke);
        me
    }

    fn violation(&self, kind: ViolationKind, description: String) -> Violation {
        Violation {
            kind,
            family: self.name.to_string(),
            description,
        }
    }

    fn check(&self, stored: Option<&[u64]>) -> Result<(), Violation> {
        use ViolationKind::*;
        let writer: BTreeMap<u64, &Op> = self.acked.iter().map(|&(r, o)| (r, o)).collect();
        for pair in self.acked.windows(2) {
            if pair[0].0 == pair[1].0 {
                let d = format!(
                    "revision {} acknowledged twice: {} and {}",
                    pair[0].0, pair[0].1, pair[1].1
                );
                return Err(self.violation(DuplicateRevision, d));
            }
        }
        for &(ra, a) in &self.acked {
            for &(rb, b) in &self.acked {
                if a.complete < b.invoke && ra > rb {
                    let d =
                        format!("{a} completed before {b} was invoked, yet got the later revision");
                    return Err(self.violation(RegisterOrder, d));
                }
            }
        }
        for &(r, read) in &self.reads {
            for &(ra, a) in &self.acked {
                if a.complete < read.invoke && r < ra {
                    let d = format!(
                        "{read} was invoked after {a} completed but returned an older revision"
                    );
                    return Err(self.violation(StaleRead, d));
                }
                if read.complete < a.invoke && r >= ra {
                    let d = format!(
                        "{read} completed before {a} was invoked but returned revision {r}"
                    );
                    return Err(self.violation(ReadFromFuture, d));
                }
            }
            if r > 0
                && !writer.contains_key(&r)
                && !self.unknown.iter().any(|u| u.invoke < read.complete)
            {
                let d =
                    format!("{read} returned a revision no register could have produced by then");
                return Err(self.violation(ReadFromFuture, d));
            }
            for &(r2, read2) in &self.reads {
                if read.complete < read2.invoke && r2 < r {
                    let d = format!(
                        "{read} completed before {read2} was invoked, which saw an older revision"
                    );
                    return Err(self.violation(NonMonotonicRead, d));
                }
            }
        }
        let mut max = self.acked.last().map_or(0, |&(r, _)| r);
        max = max.max(self.reads.iter().map(|&(r, _)| r).max().unwrap_or(0));
        if let Some(stored) = stored {
            let mut set = stored.to_vec();
            set.sort_unstable();
            for &(r, a) in &self.acked {
                if set.binary_search(&r).is_err() {
                    let d =
                        format!("{a} was acknowledged but revision {r} is not stored at the end");
                    return Err(self.violation(LostRevision, d));
                }
            }
            for &(r, read) in &self.reads {
                if r > 0 && set.binary_search(&r).is_err() {
                    let d = format!("{read} returned revision {r}, which is not stored at the end");
                    return Err(self.violation(LostRevision, d));
                }
            }
            max = max.max(set.last().copied().unwrap_or(0));
            let expected: Vec<u64> = (1..=set.last().copied().unwrap_or(0)).collect();
            if set != expected {
                let d = format!("stored revisions {set:?} are not 1..=max without gaps or repeats");
                return Err(self.violation(Gap, d));
            }
        }
        let unacked = (1..=max).filter(|r| !writer.contains_key(r)).count();
        if unacked > self.unknown.len() {
            let d = format!(
                "revisions 1..={max} exist but only {} were acknowledged and {} registers had an unknown outcome (did a failed register apply?)",
                self.acked.len(),
                self.unknown.len()
            );
            return Err(self.violation(PhantomRevision, d));
        }
        self.check_points(max, &writer)
    }

    /// The complete check (see the module documentation).
    fn check_points(&self, max: u64, writer: &BTreeMap<u64, &'a Op>) -> Result<(), Violation> {
        let n = max as usize;
        // Bounds on p_k with their reasons; index 0 is p_1.
        let mut lo: Vec<(u64, String)> = vec![(0, String::new()); n + 1];
        let mut hi: Vec<(u64, String)> = vec![(u64::MAX, String::new()); n + 1];
        let mut unknown = self.unknown.iter();
        for k in 1..=max {
            let op = match writer.get(&k) {
                Some(&op) => op,
                None => match unknown.next() {
                    Some(&op) => op,
                    None => return Ok(()), // reported as PhantomRevision already
                },
            };
            let idx = (k - 1) as usize;
            lo[idx] = (op.invoke, format!("it was produced by {op}"));
            if matches!(op.outcome, Outcome::Ok(_)) {
                hi[idx] = (op.complete, format!("{op} completed"));
            }
        }
        for &(r, read) in &self.reads {
            if r >= 1 && read.complete < hi[(r - 1) as usize].0 {
                hi[(r - 1) as usize] = (read.complete, format!("{read} had seen it"));
            }
            if r < max && read.invoke > lo[r as usize].0 {
                lo[r as usize] = (read.invoke, format!("{read} had not seen it"));
            }
        }
        let mut floor: (u64, String, u64) = (0, String::new(), 0);
        for k in 1..=max {
            let idx = (k - 1) as usize;
            if lo[idx].0 >= floor.0 {
                floor = (lo[idx].0, lo[idx].1.clone(), k);
            }
            if floor.0 >= hi[idx].0 {
                let d = format!(
                    "revision {} must take effect after tick {} ({}) and revision {k} no later than tick {} ({}), so no order of the operations explains the history",
                    floor.2, floor.0, floor.1, hi[idx].0, hi[idx].1
                );
                return Err(self.violation(ViolationKind::NotLinearizable, d));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
