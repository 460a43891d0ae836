//! RunTask's `overrides`: per-container command, environment, cpu and
//! memory, and task-level cpu and memory; checked against the task
//! definition, then folded into the containers the agent runs and into the
//! resources the task reserves.

use serde::{Deserialize, Serialize};

use crate::error::{ApiError, Exception};
use crate::task_definition::{
    parse_cpu, parse_memory, ContainerDefinition, KeyValuePair, TaskDefinition,
};

/// ECS's `TaskOverride`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskOverride {
    #[serde(default)]
    pub container_overrides: Vec<ContainerOverride>,
    /// Task CPU units (normalised to a number string once validated).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu: Option<String>,
    /// Task memory in MiB (normalised to a number string once validated).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub execution_role_arn: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_role_arn: Option<String>,
}

/// ECS's `ContainerOverride`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerOverride {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment: Option<Vec<KeyValuePair>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_reservation: Option<u32>,
}

/// What a task reserves on its container instance.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Resources {
    /// CPU units (1024 per core).
    pub cpu: u64,
    /// MiB.
    pub memory: u64,
}

impl Resources {
    pub fn fits_in(self, free: Resources) -> bool {
        self.cpu <= free.cpu && self.memory <= free.memory
    }

    pub fn saturating_sub(self, other: Resources) -> Resources {
        Resources {
            cpu: self.cpu.saturating_sub(other.cpu),
            memory: self.memory.saturating_sub(other.memory),
        }
    }

    /// Each amount capped at `cap`'s.
    pub fn min_each(self, cap: Resources) -> Resources {
        Resources {
            cpu: self.cpu.min(cap.cpu),
            memory: self.memory.min(cap.memory),
        }
    }

    pub fn plus(self, other: Resources) -> Resources {
        Resources {
            cpu: self.cpu.saturating_add(other.cpu),
            memory: self.memory.saturating_add(other.memory),
        }
    }
}

/// Checks `overrides` (found at `path`) against `definition`: every named
/// container exists, at most once; cpu and memory values are valid (task
/// values are normalised to CPU units / MiB). ECS's wording where it has one.
pub fn validate_overrides(
    overrides: &mut TaskOverride,
    definition: &TaskDefinition,
    path: &str,
) -> Result<(), ApiError> {
    let invalid = |field: String, message: String| {
        ApiError::field(Exception::InvalidParameterException, field, message)
    };
    if let Some(cpu) = overrides.cpu.as_deref() {
        let units = parse_cpu(cpu).map_err(|rule| invalid(format!("{path}.cpu"), rule))?;
        overrides.cpu = Some(units.to_string());
    }
    if let Some(memory) = overrides.memory.as_deref() {
        let mib = parse_memory(memory).map_err(|rule| invalid(format!("{path}.memory"), rule))?;
        if mib == 0 {
            return Err(invalid(
                format!("{path}.memory"),
                "must be at least 1 MiB".into(),
            ));
        }
        overrides.memory = Some(mib.to_string());
    }
    let mut seen = std::collections::BTreeSet::new();
    for (i, o) in overrides.container_overrides.iter().enumerate() {
        let at = format!("{path}.containerOverrides[{i}]");
        if !definition
            .spec
            .container_definitions
            .iter()
            .any(|c| c.name == o.name)
        {
            return Err(invalid(
                format!("{at}.name"),
                format!(
                    "Override for container named {} is not a container in the TaskDefinition.",
                    o.name
                ),
            ));
        }
        if !seen.insert(o.name.as_str()) {
            return Err(invalid(
                format!("{at}.name"),
                format!("container {} is overridden more than once", o.name),
            ));
        }
        if let (Some(hard), Some(soft)) = (o.memory, o.memory_reservation) {
            if soft > hard {
                return Err(invalid(
                    format!("{at}.memoryReservation"),
                    format!("{soft} MiB is more than the container's memory limit of {hard} MiB"),
                ));
            }
        }
        if o.memory == Some(0) {
            return Err(invalid(
                format!("{at}.memory"),
                "must be at least 1 MiB".into(),
            ));
        }
        if let Some(env) = &o.environment {
            for (j, kv) in env.iter().enumerate() {
                if kv.name.is_empty() {
                    return Err(invalid(
                        format!("{at}.environment[{j}].name"),
                        "must not be empty".into(),
                    ));
                }
            }
        }
    }
    Ok(())
}

/// The container definition the agent runs: the definition with the
/// container's override applied (command replaced, environment merged with
/// the override winning by name, cpu and memory replaced).
pub fn effective_container(
    definition: &ContainerDefinition,
    overrides: &TaskOverride,
) -> ContainerDefinition {
    let mut c = definition.clone();
    let Some(o) = overrides
        .container_overrides
        .iter()
        .find(|o| o.name == definition.name)
    else {
        return c;
    };
    if let Some(command) = &o.command {
        c.command = Some(command.clone());
    }
    if let Some(extra) = &o.environment {
        let mut env = c.environment.take().unwrap_or_default();
        for kv in extra {
            match env.iter_mut().find(|e| e.name == kv.name) {
                Some(existing) => existing.value = kv.value.clone(),
                None => env.push(kv.clone()),
            }
        }
        c.environment = Some(env);
    }
    if let Some(cpu) = o.cpu {
        c.cpu = Some(cpu);
    }
    if let Some(memory) = o.memory {
        c.memory = Some(memory);
    }
    if let Some(reservation) = o.memory_reservation {
        c.memory_reservation = Some(reservation);
    }
    c
}

/// What the task reserves, as ECS computes it for the EC2 launch type: the
/// task-level cpu / memory when set (override first), otherwise the sum over
/// containers of cpu and of memory (or memoryReservation when memory is unset).
pub fn task_resources(definition: &TaskDefinition, overrides: &TaskOverride) -> Resources {
    let containers: Vec<ContainerDefinition> = definition
        .spec
        .container_definitions
        .iter()
        .map(|c| effective_container(c, overrides))
        .collect();
    let task_cpu = overrides
        .cpu
        .as_deref()
        .or(definition.spec.cpu.as_deref())
        .and_then(|c| parse_cpu(c).ok());
    let task_memory = overrides
        .memory
        .as_deref()
        .or(definition.spec.memory.as_deref())
        .and_then(|m| parse_memory(m).ok());
    let cpu = match task_cpu {
        Some(units) => u64::from(units),
        None => containers
            .iter()
            .map(|c| u64::from(c.cpu.unwrap_or(0)))
            .sum(),
    };
    let memory = match task_memory {
        Some(mib) => u64::from(mib),
        None => containers
            .iter()
            .map(|c| u64::from(c.memory.or(c.memory_reservation).unwrap_or(0)))
            .sum(),
    };
    Resources { cpu, memory }
}
