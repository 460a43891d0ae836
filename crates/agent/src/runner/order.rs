//! dependsOn: whether a container may start, given how the containers it
//! depends on are doing. Pure, so the ordering rules are tested alone.
//!
//! START: the dependency has started. COMPLETE: it has exited. SUCCESS: it
//! has exited 0 (any other exit means the dependent can never start).
//! HEALTHY: the dependency's health check has passed (HEALTHY). ECS checks
//! this condition only at startup: a dependency that is UNHEALTHY, that has
//! no health check, or that exited before it was HEALTHY means the
//! dependent can never start, and the task fails to start.

use orca_core::task::HealthStatus;
use orca_core::task_definition::{ContainerCondition, ContainerDependency};

/// How far a container has got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    NotStarted,
    /// Running, with its health (None: it has no health check).
    Running(Option<HealthStatus>),
    Exited(i32),
    /// It could not be pulled, created or started.
    Failed,
}

/// May the container start?
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Readiness {
    Ready,
    Wait,
    /// A condition can no longer be met.
    Never(String),
}

/// The verdict of one HEALTHY dependency.
fn healthy(name: &str, p: Progress) -> Readiness {
    match p {
        Progress::NotStarted | Progress::Running(Some(HealthStatus::Unknown)) => Readiness::Wait,
        Progress::Running(Some(HealthStatus::Healthy)) => Readiness::Ready,
        Progress::Running(Some(HealthStatus::Unhealthy)) => Readiness::Never(format!(
            "dependency {name} is UNHEALTHY; its HEALTHY condition cannot be met"
        )),
        Progress::Running(None) => Readiness::Never(format!(
            "dependency {name} has no health check; its HEALTHY condition cannot be met"
        )),
        Progress::Exited(code) => Readiness::Never(format!(
            "dependency {name} exited with code {code} before it was HEALTHY"
        )),
        Progress::Failed => Readiness::Never(format!("dependency {name} failed to start")),
    }
}

/// Evaluates `deps` with `progress_of` giving each named container's state.
pub fn readiness(
    deps: &[ContainerDependency],
    progress_of: impl Fn(&str) -> Progress,
) -> Readiness {
    let mut ready = true;
    for dep in deps {
        let name = dep.container_name.as_str();
        let p = progress_of(name);
        let verdict = match (dep.condition, p) {
            (_, Progress::Failed) => Readiness::Never(format!("dependency {name} failed to start")),
            (ContainerCondition::Healthy, p) => healthy(name, p),
            (ContainerCondition::Start, Progress::NotStarted) => Readiness::Wait,
            (ContainerCondition::Start, _) => Readiness::Ready,
            (ContainerCondition::Complete, Progress::Exited(_)) => Readiness::Ready,
            (ContainerCondition::Complete, _) => Readiness::Wait,
            (ContainerCondition::Success, Progress::Exited(0)) => Readiness::Ready,
            (ContainerCondition::Success, Progress::Exited(code)) => Readiness::Never(format!(
                "dependency {name} exited with code {code}; its SUCCESS condition cannot be met"
            )),
            (ContainerCondition::Success, _) => Readiness::Wait,
        };
        match verdict {
            Readiness::Never(why) => return Readiness::Never(why),
            Readiness::Wait => ready = false,
            Readiness::Ready => {}
        }
    }
    if ready {
        Readiness::Ready
    } else {
        Readiness::Wait
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dep(name: &str, condition: ContainerCondition) -> ContainerDependency {
        ContainerDependency {
            container_name: name.to_string(),
            condition,
        }
    }

    #[test]
    fn conditions_as_ecs_defines_them() {
        use ContainerCondition::*;
        use Progress::*;
        let cases = [
            (Start, NotStarted, Readiness::Wait),
            (Start, Running(None), Readiness::Ready),
            (Start, Exited(1), Readiness::Ready),
            (Complete, Running(None), Readiness::Wait),
            (Complete, Exited(7), Readiness::Ready),
            (Success, Running(None), Readiness::Wait),
            (Healthy, NotStarted, Readiness::Wait),
            (
                Healthy,
                Running(Some(HealthStatus::Unknown)),
                Readiness::Wait,
            ),
            (
                Healthy,
                Running(Some(HealthStatus::Healthy)),
                Readiness::Ready,
            ),
            (Success, Exited(0), Readiness::Ready),
        ];
        for (condition, progress, expected) in cases {
            assert_eq!(
                readiness(&[dep("init", condition)], |_| progress),
                expected,
                "{condition:?} with {progress:?}"
            );
        }
        assert!(matches!(
            readiness(&[dep("init", Success)], |_| Exited(2)),
            Readiness::Never(_)
        ));
        assert!(matches!(
            readiness(&[dep("init", Start)], |_| Failed),
            Readiness::Never(_)
        ));
        // Every dependency must hold.
        let deps = [dep("a", Start), dep("b", Success)];
        let state = |n: &str| if n == "a" { Running(None) } else { NotStarted };
        assert_eq!(readiness(&deps, state), Readiness::Wait);
        assert_eq!(readiness(&[], |_| NotStarted), Readiness::Ready);
    }

    #[test]
    fn healthy_that_can_no_longer_be_met_is_never() {
        use ContainerCondition::Healthy;
        use Progress::*;
        for p in [
            Running(Some(HealthStatus::Unhealthy)),
            Running(None),
            Exited(0),
            Failed,
        ] {
            let r = readiness(&[dep("db", Healthy)], |_| p);
            assert!(
                matches!(&r, Readiness::Never(why) if why.contains("db")),
                "{p:?}: {r:?}"
            );
        }
    }
}
