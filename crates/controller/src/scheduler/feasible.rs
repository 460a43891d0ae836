//! Filtering: whether an instance can take one more task of an ask, and if
//! not, ECS's reason. Reasons are tallied so a failure names the closest
//! instance once per reason with how many instances it ruled out, instead of
//! ECS's one entry per instance (useless at 10,000 instances).

use std::collections::BTreeMap;

use orca_core::placement::{expr::InstanceFacts, Constraint};
use orca_core::task::{Failure, Resources};

use super::{Overlay, PlacementAsk};
use crate::state::instances::InstanceStatus;
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
        }
    }
}

/// An instance as the query language sees it, with this plan's placements.
struct Facts<'a, 'v> {
    overlay: &'a Overlay<'v>,
    instance: &'a InstanceRecord,
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
        self.overlay.running_tasks(self.instance)
    }
    fn has_task_group(&self, group: &str) -> bool {
        self.overlay.group_count(self.instance, group) > 0
    }
    fn task_groups(&self) -> Vec<&str> {
        let mut groups: Vec<&str> = self
            .instance
            .group_counts
            .keys()
            .map(String::as_str)
            .collect();
        if let Some(taken) = self.overlay.taken.get(self.instance.id.as_str()) {
            groups.extend(taken.groups.keys().map(String::as_str));
            groups.sort_unstable();
            groups.dedup();
        }
        groups
    }
}

fn has_attribute(
    instance: &InstanceRecord,
    wanted: &orca_core::task_definition::Attribute,
) -> bool {
    instance
        .attributes
        .iter()
        .any(|a| a.name == wanted.name && (wanted.value.is_none() || a.value == wanted.value))
}

fn member_of_holds(overlay: &Overlay<'_>, instance: &InstanceRecord, ask: &PlacementAsk) -> bool {
    let facts = Facts { overlay, instance };
    ask.constraints.iter().all(|c| match c {
        Constraint::MemberOf(expr) => expr.matches(&facts),
        Constraint::DistinctInstance => true,
    })
}

/// The filters no placement of the ask can change: status, agent,
/// attributes, and memberOf as the instance stands before the ask.
pub(super) fn static_misfit(
    overlay: &Overlay<'_>,
    instance: &InstanceRecord,
    ask: &PlacementAsk,
) -> Option<Misfit> {
    match instance.status {
        InstanceStatus::Active => {}
        InstanceStatus::Draining => return Some(Misfit::Draining),
        InstanceStatus::Inactive => return Some(Misfit::Inactive),
    }
    if !instance.agent_connected {
        return Some(Misfit::Agent);
    }
    if !ask
        .required_attributes
        .iter()
        .all(|a| has_attribute(instance, a))
    {
        return Some(Misfit::Attribute);
    }
    if !member_of_holds(overlay, instance, ask) {
        return Some(Misfit::MemberOf);
    }
    None
}

/// The filters this plan's own placements can change: memberOf again on an
/// instance the plan has placed on (`task:group`, `runningTasksCount`),
/// distinctInstance, memory and CPU.
pub(super) fn dynamic_misfit(
    overlay: &Overlay<'_>,
    instance: &InstanceRecord,
    ask: &PlacementAsk,
) -> Option<Misfit> {
    let touched = overlay.taken.contains_key(instance.id.as_str());
    if touched && !member_of_holds(overlay, instance, ask) {
        return Some(Misfit::MemberOf);
    }
    let distinct = ask
        .constraints
        .iter()
        .any(|c| matches!(c, Constraint::DistinctInstance));
    if distinct && overlay.group_count(instance, &ask.group) > 0 {
        return Some(Misfit::DistinctInstance);
    }
    let free = overlay.free(instance);
    if ask.need.memory > free.memory {
        return Some(Misfit::Memory);
    }
    if ask.need.cpu > free.cpu {
        return Some(Misfit::Cpu);
    }
    None
}

/// How many instances each reason ruled out, and the closest of them.
#[derive(Debug, Default)]
pub(super) struct Tally {
    by_reason: BTreeMap<Misfit, Entry>,
}

#[derive(Debug)]
struct Entry {
    count: usize,
    /// The closest instance: most of the short resource free, else the
    /// first by ARN.
    closest_arn: String,
    closest_free: Resources,
}

impl Tally {
    pub(super) fn add(&mut self, misfit: Misfit, instance: &InstanceRecord, free: Resources) {
        self.note(
            misfit,
            Entry {
                count: 1,
                closest_arn: instance.arn.clone(),
                closest_free: free,
            },
        );
    }

    pub(super) fn merge(mut self, other: Tally) -> Tally {
        for (misfit, entry) in other.by_reason {
            self.note(misfit, entry);
        }
        self
    }

    /// Adds `entry`'s count to the reason's and keeps the closer instance.
    fn note(&mut self, misfit: Misfit, entry: Entry) {
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
                    arn: Some(e.closest_arn),
                    reason: misfit.reason().to_string(),
                    detail: Some(detail),
                }
            })
            .collect()
    }
}
