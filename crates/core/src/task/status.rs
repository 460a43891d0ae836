//! The ordered statuses of a task and its containers, as ECS reports them.
//!
//! A task's `lastStatus` only moves forward through [`TaskStatus`]'s order
//! (PROVISIONING → ... → STOPPED); `desiredStatus` is RUNNING or STOPPED and is
//! the controller's. A container's `lastStatus` moves PENDING → RUNNING →
//! STOPPED. The ordering is the derive order, so `a < b` means "a comes first".

use serde::{Deserialize, Serialize};

/// A task's lastStatus (and desiredStatus, which is RUNNING or STOPPED).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TaskStatus {
    /// Placed; the agent is preparing its network namespace.
    Provisioning,
    /// The agent is pulling images and creating containers.
    Pending,
    /// Containers started; the task is being made reachable.
    Activating,
    Running,
    /// The task is leaving service (no load balancer yet: short).
    Deactivating,
    /// Containers are being stopped.
    Stopping,
    /// The network namespace is being torn down.
    Deprovisioning,
    Stopped,
}

impl TaskStatus {
    pub const ALL: [TaskStatus; 8] = [
        TaskStatus::Provisioning,
        TaskStatus::Pending,
        TaskStatus::Activating,
        TaskStatus::Running,
        TaskStatus::Deactivating,
        TaskStatus::Stopping,
        TaskStatus::Deprovisioning,
        TaskStatus::Stopped,
    ];

    pub fn name(self) -> &'static str {
        match self {
            TaskStatus::Provisioning => "PROVISIONING",
            TaskStatus::Pending => "PENDING",
            TaskStatus::Activating => "ACTIVATING",
            TaskStatus::Running => "RUNNING",
            TaskStatus::Deactivating => "DEACTIVATING",
            TaskStatus::Stopping => "STOPPING",
            TaskStatus::Deprovisioning => "DEPROVISIONING",
            TaskStatus::Stopped => "STOPPED",
        }
    }

    pub fn parse(name: &str) -> Option<TaskStatus> {
        TaskStatus::ALL.into_iter().find(|s| s.name() == name)
    }

    pub fn is_terminal(self) -> bool {
        self == TaskStatus::Stopped
    }

    /// ECS counts PROVISIONING, PENDING and ACTIVATING tasks as pending.
    pub fn is_pending(self) -> bool {
        self < TaskStatus::Running
    }
}

/// A container's lastStatus.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ContainerStatus {
    Pending,
    Running,
    Stopped,
}

impl ContainerStatus {
    pub fn name(self) -> &'static str {
        match self {
            ContainerStatus::Pending => "PENDING",
            ContainerStatus::Running => "RUNNING",
            ContainerStatus::Stopped => "STOPPED",
        }
    }
}

/// A container's or task's healthStatus. A task's is derived from its
/// essential containers; a container without a health check stays UNKNOWN.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum HealthStatus {
    Healthy,
    Unhealthy,
    #[default]
    Unknown,
}

impl HealthStatus {
    pub fn name(self) -> &'static str {
        match self {
            HealthStatus::Healthy => "HEALTHY",
            HealthStatus::Unhealthy => "UNHEALTHY",
            HealthStatus::Unknown => "UNKNOWN",
        }
    }

    /// ECS's names; anything else is UNKNOWN (data written before health
    /// was typed held only these three).
    pub fn parse(name: &str) -> HealthStatus {
        match name {
            "HEALTHY" => HealthStatus::Healthy,
            "UNHEALTHY" => HealthStatus::Unhealthy,
            _ => HealthStatus::Unknown,
        }
    }
}

/// Why a task stopped (ECS's stopCode).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum StopCode {
    TaskFailedToStart,
    EssentialContainerExited,
    UserInitiated,
    ServiceSchedulerInitiated,
    SpotInterruption,
    TerminationNotice,
    /// The task's container instance lost contact with the controllers for
    /// longer than the loss grace (ECS: the host's health failed).
    InfrastructureHealth,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_are_ordered_as_ecs_reports_them() {
        let mut sorted = TaskStatus::ALL;
        sorted.sort();
        assert_eq!(sorted, TaskStatus::ALL);
        assert!(TaskStatus::Activating.is_pending());
        assert!(!TaskStatus::Running.is_pending());
        for s in TaskStatus::ALL {
            assert_eq!(TaskStatus::parse(s.name()), Some(s));
            assert_eq!(
                serde_json::to_string(&s).unwrap_or_default(),
                format!("\"{}\"", s.name())
            );
        }
        assert!(ContainerStatus::Pending < ContainerStatus::Stopped);
    }
}
