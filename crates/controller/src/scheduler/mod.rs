//! Placement: which container instance each task of a RunTask goes to.
//!
//! Pure and deterministic: a function of the instances' state and the
//! request, with ties broken by instance id; no I/O, no clock. The leader
//! runs it over its applied state and proposes the result; `apply` re-checks
//! each placement against the resources left when the entry commits.
//!
//! Today's strategy is first-fit over the cluster's connected instances in
//! id order (the full scheduler, with binpack/spread and constraints, is a
//! later issue).

use std::collections::BTreeMap;

use orca_core::task::{Failure, Resources};

use crate::state::InstanceRecord;

/// A task could not be placed on this instance: ECS's failure reasons.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Misfit {
    /// The instance's agent is not connected.
    Agent,
    Memory,
    Cpu,
}

impl Misfit {
    pub fn reason(self) -> &'static str {
        match self {
            Misfit::Agent => "AGENT",
            Misfit::Memory => "RESOURCE:MEMORY",
            Misfit::Cpu => "RESOURCE:CPU",
        }
    }
}

/// The result of placing `count` identical tasks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlacementPlan {
    /// One instance id per placed task.
    pub instances: Vec<String>,
    /// ECS's failures for the tasks that did not fit: one per instance
    /// considered, naming why it could not take another task.
    pub failures: Vec<Failure>,
}

/// Places `count` tasks needing `need` each on `instances` (the cluster's),
/// first fit in id order.
pub fn first_fit<'a>(
    instances: impl IntoIterator<Item = &'a InstanceRecord>,
    need: Resources,
    count: usize,
) -> PlacementPlan {
    let mut candidates: BTreeMap<&str, (&InstanceRecord, Resources)> = instances
        .into_iter()
        .map(|i| (i.id.as_str(), (i, i.remaining)))
        .collect();
    let mut placed = Vec::with_capacity(count);
    for _ in 0..count {
        let found = candidates
            .iter_mut()
            .find(|(_, (i, free))| i.agent_connected && need.fits_in(*free));
        match found {
            Some((id, (_, free))) => {
                *free = free.saturating_sub(need);
                placed.push((*id).to_string());
            }
            None => break,
        }
    }
    let failures = if placed.len() < count {
        candidates
            .values()
            .map(|(i, free)| Failure {
                arn: Some(i.arn.clone()),
                reason: misfit(i, *free, need).reason().to_string(),
                detail: None,
            })
            .collect()
    } else {
        Vec::new()
    };
    PlacementPlan {
        instances: placed,
        failures,
    }
}

fn misfit(instance: &InstanceRecord, free: Resources, need: Resources) -> Misfit {
    if !instance.agent_connected {
        Misfit::Agent
    } else if need.memory > free.memory {
        Misfit::Memory
    } else {
        Misfit::Cpu
    }
}

#[cfg(test)]
mod tests;
