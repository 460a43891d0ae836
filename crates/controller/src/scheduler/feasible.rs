//! Filtering: whether an instance can take one more task of an ask, and if
//! not, ECS's reason. Reasons are tallied so a failure names the closest
//! instance once per reason with how many instances it ruled out, instead of
//! ECS's one entry per instance (useless at 10,000 instances).

use std::collections::BTreeMap;

use orca_core::task::{Failure, Resources};

use crate::state::InstanceRecord;

/// Why an instance cannot take a task, in the order the pipeline checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Misfit {
    /// Deregistered.
    Inactive,
    /// DRAINING: no new placements.
    Draining,
    /// The agent is not connected.
    Agent,
    /// A requiresAttributes entry the instance lacks.
    Attribute,
    MemberOf,
    DistinctInstance,
    Memory,
    Cpu,
    /// A static host port of the ask is reserved or held by a task there.
    Ports,
    /// Fewer task addresses free in the instance's task subnet than the
    /// task takes (ECS's name for running out of awsvpc ENIs).
    Addresses,
}

impl Misfit {
    /// ECS's `failures[].reason`.
    pub fn reason(self) -> &'static str {
        match self {
            Misfit::Inactive => "INACTIVE",
            Misfit::Draining => "DRAINING",
            Misfit::Agent => "AGENT",
            Misfit::Attribute => "ATTRIBUTE",
            Misfit::MemberOf => "MemberOf placement constraint unsatisfied.",
            Misfit::DistinctInstance => "DistinctInstance placement constraint unsatisfied.",
            Misfit::Memory => "RESOURCE:MEMORY",
            Misfit::Cpu => "RESOURCE:CPU",
            Misfit::Ports => "RESOURCE:PORTS",
            Misfit::Addresses => "RESOURCE:ENI",
        }
    }
}

/// How many instances each reason ruled out, and the closest of them.
/// Built only when an ask fails; it borrows the ARNs and copies the
/// winners' at the end.
#[derive(Debug, Default)]
pub(super) struct Tally<'v> {
    by_reason: BTreeMap<Misfit, Entry<'v>>,
}

#[derive(Debug)]
struct Entry<'v> {
    count: usize,
    /// The closest instance: most of the short resource free, else the
    /// first by ARN.
    closest_arn: &'v str,
    closest_free: Resources,
}

impl<'v> Tally<'v> {
    pub(super) fn add(&mut self, misfit: Misfit, instance: &'v InstanceRecord, free: Resources) {
        self.note(
            misfit,
            Entry {
                count: 1,
                closest_arn: &instance.arn,
                closest_free: free,
            },
        );
    }

    pub(super) fn merge(mut self, other: Tally<'v>) -> Tally<'v> {
        for (misfit, entry) in other.by_reason {
            self.note(misfit, entry);
        }
        self
    }

    /// Adds `entry`'s count to the reason's and keeps the closer instance.
    fn note(&mut self, misfit: Misfit, entry: Entry<'v>) {
        let Some(e) = self.by_reason.get_mut(&misfit) else {
            self.by_reason.insert(misfit, entry);
            return;
        };
        e.count += entry.count;
        let closer = match misfit {
            Misfit::Memory => entry.closest_free.memory > e.closest_free.memory,
            Misfit::Cpu => entry.closest_free.cpu > e.closest_free.cpu,
            _ => entry.closest_arn < e.closest_arn,
        };
        if closer {
            e.closest_arn = entry.closest_arn;
            e.closest_free = entry.closest_free;
        }
    }

    /// ECS's failures, one per reason, in the pipeline's order.
    pub(super) fn failures(self, need: Resources) -> Vec<Failure> {
        if self.by_reason.is_empty() {
            return vec![Failure {
                arn: None,
                reason: "RESOURCE:CPU".to_string(),
                detail: Some("no container instance in the cluster".to_string()),
            }];
        }
        self.by_reason
            .into_iter()
            .map(|(misfit, e)| {
                let instances = if e.count == 1 { "instance" } else { "instances" };
                let detail = match misfit {
                    Misfit::Memory => format!(
                        "ruled out {} container {instances}; the closest has {} MiB free, the task needs {}",
                        e.count, e.closest_free.memory, need.memory
                    ),
                    Misfit::Cpu => format!(
                        "ruled out {} container {instances}; the closest has {} CPU units free, the task needs {}",
                        e.count, e.closest_free.cpu, need.cpu
                    ),
                    _ => format!("ruled out {} container {instances}", e.count),
                };
                Failure {
                    arn: Some(e.closest_arn.to_string()),
                    reason: misfit.reason().to_string(),
                    detail: Some(detail),
                }
            })
            .collect()
    }
}
