//! ECS's `restartPolicy`, as a pure rule: whether a container that exited
//! is started again in place (same container, root filesystem, namespace
//! and log; the task is not replaced). As the ECS agent decides it:
//!
//! - only with `enabled`;
//! - never for an exit code in `ignoredExitCodes`;
//! - only when the run that ended lasted at least `restartAttemptPeriod`
//!   (60–1800 s, 300 s when absent): a container that exits sooner is not
//!   restarted, which also bounds restarts to one per period, so a crash
//!   loop cannot form. The agent may cap the period
//!   (`max_restart_attempt_period`, for tests and impatient operators).
//!
//! An essential container that is restarted does not stop its task; one
//! that is not restarted stops it as any essential exit does.

use std::time::{Duration, SystemTime};

use orca_core::task_definition::ContainerDefinition;
use orca_runtime::ContainerExit;

/// ECS's restartAttemptPeriod when the policy names none.
pub const DEFAULT_ATTEMPT_PERIOD: Duration = Duration::from_secs(300);

/// Whether `def`'s container, whose run began at `started_at` and ended
/// with `exit`, is restarted in place.
pub fn restarts(
    def: &ContainerDefinition,
    exit: &ContainerExit,
    started_at: Option<SystemTime>,
    max_period: Option<Duration>,
) -> bool {
    let Some(policy) = def.restart_policy.as_ref().filter(|p| p.enabled) else {
        return false;
    };
    if policy
        .ignored_exit_codes
        .iter()
        .flatten()
        .any(|&code| code == exit.exit_code)
    {
        return false;
    }
    let period = policy
        .restart_attempt_period
        .map_or(DEFAULT_ATTEMPT_PERIOD, |s| {
            Duration::from_secs(u64::from(s))
        });
    let period = max_period.map_or(period, |cap| period.min(cap));
    // A run whose start is unknown is taken as too short.
    let ran = started_at.and_then(|start| exit.exited_at.duration_since(start).ok());
    ran.is_some_and(|ran| ran >= period)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn def(policy: serde_json::Value) -> ContainerDefinition {
        serde_json::from_value(serde_json::json!({
            "name": "app", "image": "img", "restartPolicy": policy
        }))
        .unwrap_or_else(|e| panic!("{e}"))
    }

    fn exit(code: i32, ran_secs: u64) -> (ContainerExit, Option<SystemTime>) {
        let start = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        (
            ContainerExit {
                exit_code: code,
                oom_killed: false,
                exited_at: start + Duration::from_secs(ran_secs),
            },
            Some(start),
        )
    }

    #[test]
    fn restarts_after_a_run_of_at_least_the_period_unless_the_code_is_ignored() {
        let d = def(serde_json::json!({"enabled": true, "ignoredExitCodes": [0],
                                       "restartAttemptPeriod": 60}));
        let (e, s) = exit(1, 60);
        assert!(restarts(&d, &e, s, None));
        let (e, s) = exit(1, 59);
        assert!(!restarts(&d, &e, s, None), "ran less than the period");
        let (e, s) = exit(0, 600);
        assert!(!restarts(&d, &e, s, None), "ignored exit code");
        let (e, _) = exit(1, 600);
        assert!(!restarts(&d, &e, None, None), "unknown start");
    }

    #[test]
    fn the_period_defaults_to_300_s_and_the_agent_may_cap_it() {
        let d = def(serde_json::json!({"enabled": true}));
        let (e, s) = exit(137, 299);
        assert!(!restarts(&d, &e, s, None));
        let (e, s) = exit(137, 300);
        assert!(restarts(&d, &e, s, None));
        let (e, s) = exit(137, 2);
        assert!(restarts(&d, &e, s, Some(Duration::from_secs(2))));
        assert!(!restarts(&d, &e, s, Some(Duration::from_secs(3))));
    }

    #[test]
    fn no_policy_or_a_disabled_one_never_restarts() {
        let (e, s) = exit(1, 10_000);
        assert!(!restarts(
            &def(serde_json::json!({"enabled": false})),
            &e,
            s,
            None
        ));
        let plain: ContainerDefinition =
            serde_json::from_value(serde_json::json!({"name": "app", "image": "img"}))
                .unwrap_or_else(|err| panic!("{err}"));
        assert!(!restarts(&plain, &e, s, None));
    }
}
