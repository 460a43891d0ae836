//! Rules spanning containers: essential containers, ports, FireLens,
//! dependsOn conditions and cycles, and the task's cpu/memory totals.

use std::collections::BTreeMap;

use super::container::ContainerDefinition;
use super::enums::{ContainerCondition, LogDriver};
use super::validate::client;
use super::validate_container::TaskContext;
use super::validate_ports::validate_port_uniqueness;
use crate::error::ApiError;

/// Rules spanning containers.
pub(crate) fn validate_across(
    containers: &[ContainerDefinition],
    ctx: &TaskContext<'_>,
    index: &BTreeMap<&str, usize>,
) -> Result<(), ApiError> {
    if !containers.iter().any(ContainerDefinition::is_essential) {
        return Err(client(
            "containerDefinitions",
            "at least one container must be essential",
        ));
    }
    validate_port_uniqueness(containers, ctx.mode)?;

    let firelens: Vec<usize> = (0..containers.len())
        .filter(|i| {
            containers
                .get(*i)
                .is_some_and(|c| c.firelens_configuration.is_some())
        })
        .collect();
    if let Some(second) = firelens.get(1) {
        return Err(client(
            format!("containerDefinitions[{second}].firelensConfiguration"),
            "only one container of a task may have a firelensConfiguration",
        ));
    }
    for (i, c) in containers.iter().enumerate() {
        let awsfirelens = c
            .log_configuration
            .as_ref()
            .is_some_and(|l| l.log_driver == LogDriver::Awsfirelens);
        if awsfirelens && firelens.is_empty() {
            return Err(client(
                format!("containerDefinitions[{i}].logConfiguration.logDriver"),
                "awsfirelens requires a container with a firelensConfiguration",
            ));
        }
    }

    for (i, c) in containers.iter().enumerate() {
        for (j, dep) in c.depends_on.iter().flatten().enumerate() {
            let Some(target) = index
                .get(dep.container_name.as_str())
                .and_then(|t| containers.get(*t))
            else {
                continue;
            };
            let path = format!("containerDefinitions[{i}].dependsOn[{j}].condition");
            match dep.condition {
                ContainerCondition::Complete | ContainerCondition::Success
                    if target.is_essential() =>
                {
                    return Err(client(
                        path,
                        format!(
                            "{} cannot target the essential container '{}'",
                            dep.condition, target.name
                        ),
                    ));
                }
                ContainerCondition::Healthy if target.health_check.is_none() => {
                    return Err(client(
                        path,
                        format!("HEALTHY requires '{}' to have a healthCheck", target.name),
                    ));
                }
                _ => {}
            }
        }
    }
    if let Some((i, j, cycle)) = find_cycle(containers, index) {
        return Err(client(
            format!("containerDefinitions[{i}].dependsOn[{j}]"),
            format!("dependsOn forms a cycle: {}", cycle.join(" -> ")),
        ));
    }

    if let Some(task_cpu) = ctx.cpu {
        let total: u64 = containers
            .iter()
            .map(|c| u64::from(c.cpu.unwrap_or(0)))
            .sum();
        if total > u64::from(task_cpu) {
            return Err(client(
                "cpu",
                format!(
                    "the containers reserve {total} CPU units, more than the task's {task_cpu}"
                ),
            ));
        }
    }
    if let Some(task_memory) = ctx.memory {
        let total: u64 = containers
            .iter()
            .map(|c| u64::from(c.memory.unwrap_or(0)))
            .sum();
        if total > u64::from(task_memory) {
            return Err(client(
                "memory",
                format!(
                    "the containers' memory limits add up to {total} MiB, more than the task's \
                     {task_memory} MiB"
                ),
            ));
        }
    }
    Ok(())
}

/// The first dependsOn cycle in a depth-first walk in input order: the
/// container and entry that close it, and the container names along it.
fn find_cycle(
    containers: &[ContainerDefinition],
    index: &BTreeMap<&str, usize>,
) -> Option<(usize, usize, Vec<String>)> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        OnStack,
        Done,
    }
    fn visit(
        i: usize,
        containers: &[ContainerDefinition],
        index: &BTreeMap<&str, usize>,
        marks: &mut [Mark],
        stack: &mut Vec<usize>,
    ) -> Option<(usize, usize, Vec<String>)> {
        if let Some(m) = marks.get_mut(i) {
            *m = Mark::OnStack;
        }
        stack.push(i);
        let deps = containers
            .get(i)
            .and_then(|c| c.depends_on.as_deref())
            .unwrap_or_default();
        for (j, dep) in deps.iter().enumerate() {
            let Some(&t) = index.get(dep.container_name.as_str()) else {
                continue;
            };
            match marks.get(t).copied() {
                Some(Mark::OnStack) => {
                    let start = stack.iter().position(|s| *s == t).unwrap_or(0);
                    let mut names: Vec<String> = stack
                        .get(start..)
                        .unwrap_or_default()
                        .iter()
                        .filter_map(|s| containers.get(*s).map(|c| c.name.clone()))
                        .collect();
                    names.push(dep.container_name.clone());
                    return Some((i, j, names));
                }
                Some(Mark::New) => {
                    if let Some(found) = visit(t, containers, index, marks, stack) {
                        return Some(found);
                    }
                }
                _ => {}
            }
        }
        stack.pop();
        if let Some(m) = marks.get_mut(i) {
            *m = Mark::Done;
        }
        None
    }
    let mut marks = vec![Mark::New; containers.len()];
    for i in 0..containers.len() {
        if marks.get(i) == Some(&Mark::New) {
            let mut stack = Vec::new();
            if let Some(found) = visit(i, containers, index, &mut marks, &mut stack) {
                return Some(found);
            }
        }
    }
    None
}
