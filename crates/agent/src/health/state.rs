//! ECS's (Docker's) health check rules as a pure state machine: given each
//! check's verdict and when it came, the container's health status; and a
//! task's health from its essential containers. No I/O, no clock of its
//! own: the caller passes the time.

use std::time::Duration;

use orca_core::task::HealthStatus;
use orca_core::task_definition::{
    HealthCheck, DEFAULT_HEALTH_CHECK_INTERVAL, DEFAULT_HEALTH_CHECK_RETRIES,
    DEFAULT_HEALTH_CHECK_TIMEOUT,
};
use orca_runtime::ExecStatus;
use tokio::time::Instant;

/// A container definition's `healthCheck`, with ECS's defaults filled in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthConfig {
    /// What is exec'd: `CMD x y` → `[x, y]`, `CMD-SHELL x` → `/bin/sh -c x`.
    pub args: Vec<String>,
    pub interval: Duration,
    pub timeout: Duration,
    /// Consecutive failures (outside the start period) that make it UNHEALTHY.
    pub retries: u32,
    /// From the container's start, failures do not count for this long.
    pub start_period: Duration,
}

impl HealthConfig {
    /// None for `["NONE"]` (or anything that names no command): no check.
    /// The agent honours the values as given; ECS's minimums (interval 5 s,
    /// timeout 2 s) are enforced by task definition validation.
    pub fn from_definition(check: &HealthCheck) -> Option<HealthConfig> {
        let (kind, rest) = check.command.split_first()?;
        let args = match kind.as_str() {
            "CMD" if !rest.is_empty() => rest.to_vec(),
            "CMD-SHELL" if !rest.is_empty() => {
                vec!["/bin/sh".into(), "-c".into(), rest.join(" ")]
            }
            _ => return None,
        };
        let secs =
            |v: Option<u32>, default: u32| Duration::from_secs(u64::from(v.unwrap_or(default)));
        Some(HealthConfig {
            args,
            interval: secs(check.interval, DEFAULT_HEALTH_CHECK_INTERVAL)
                .max(Duration::from_secs(1)),
            timeout: secs(check.timeout, DEFAULT_HEALTH_CHECK_TIMEOUT).max(Duration::from_secs(1)),
            retries: check.retries.unwrap_or(DEFAULT_HEALTH_CHECK_RETRIES).max(1),
            start_period: secs(check.start_period, 0),
        })
    }
}

/// One check's verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Pass,
    Fail,
}

impl Verdict {
    /// Exit 0 passes; any other exit, and running past the timeout, fails.
    pub fn of(status: ExecStatus) -> Verdict {
        match status {
            ExecStatus::Exited(0) => Verdict::Pass,
            ExecStatus::Exited(_) | ExecStatus::TimedOut => Verdict::Fail,
        }
    }
}

/// One container's health.
#[derive(Debug, Clone)]
pub struct HealthState {
    status: HealthStatus,
    /// Failures in a row that counted (outside the start period).
    failures: u32,
    /// Failures before this do not count.
    grace_until: Instant,
    retries: u32,
}

impl HealthState {
    /// A container started at `started_at`: UNKNOWN until a verdict.
    pub fn new(config: &HealthConfig, started_at: Instant) -> HealthState {
        HealthState {
            status: HealthStatus::Unknown,
            failures: 0,
            grace_until: started_at + config.start_period,
            retries: config.retries,
        }
    }

    pub fn status(&self) -> HealthStatus {
        self.status
    }

    /// Takes a check's verdict (the check ended `at`); returns the status.
    /// One pass makes it HEALTHY (also within the start period); `retries`
    /// counted failures in a row make it UNHEALTHY; failures within the
    /// start period do not count.
    pub fn record(&mut self, verdict: Verdict, at: Instant) -> HealthStatus {
        match verdict {
            Verdict::Pass => {
                self.failures = 0;
                self.status = HealthStatus::Healthy;
            }
            Verdict::Fail if at < self.grace_until => {}
            Verdict::Fail => {
                self.failures = self.failures.saturating_add(1);
                if self.failures >= self.retries {
                    self.status = HealthStatus::Unhealthy;
                }
            }
        }
        self.status
    }
}

/// One container's part in its task's health.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Member {
    pub essential: bool,
    pub has_check: bool,
    pub status: HealthStatus,
}

/// A task's health from its essential containers that have a check: any
/// UNHEALTHY → UNHEALTHY, all HEALTHY → HEALTHY, otherwise (and when there
/// are none) UNKNOWN.
pub fn task_health(members: impl IntoIterator<Item = Member>) -> HealthStatus {
    let mut any = false;
    let mut all_healthy = true;
    for m in members.into_iter().filter(|m| m.essential && m.has_check) {
        any = true;
        match m.status {
            HealthStatus::Unhealthy => return HealthStatus::Unhealthy,
            HealthStatus::Healthy => {}
            HealthStatus::Unknown => all_healthy = false,
        }
    }
    if any && all_healthy {
        HealthStatus::Healthy
    } else {
        HealthStatus::Unknown
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use HealthStatus::*;

    fn config(retries: u32, start_period: u64) -> HealthConfig {
        HealthConfig {
            args: vec!["true".into()],
            interval: Duration::from_secs(5),
            timeout: Duration::from_secs(2),
            retries,
            start_period: Duration::from_secs(start_period),
        }
    }

    fn secs(t0: Instant, s: u64) -> Instant {
        t0 + Duration::from_secs(s)
    }

    #[test]
    fn unhealthy_after_retries_consecutive_failures_and_not_before() {
        let t0 = Instant::now();
        let mut h = HealthState::new(&config(3, 0), t0);
        assert_eq!(h.status(), Unknown);
        assert_eq!(h.record(Verdict::Fail, secs(t0, 5)), Unknown);
        assert_eq!(h.record(Verdict::Fail, secs(t0, 10)), Unknown);
        assert_eq!(h.record(Verdict::Fail, secs(t0, 15)), Unhealthy);
        // One pass heals it; the count starts over.
        assert_eq!(h.record(Verdict::Pass, secs(t0, 20)), Healthy);
        assert_eq!(h.record(Verdict::Fail, secs(t0, 25)), Healthy);
        assert_eq!(h.record(Verdict::Fail, secs(t0, 30)), Healthy);
        assert_eq!(h.record(Verdict::Pass, secs(t0, 35)), Healthy);
        assert_eq!(h.record(Verdict::Fail, secs(t0, 40)), Healthy);
        assert_eq!(h.record(Verdict::Fail, secs(t0, 45)), Healthy);
        assert_eq!(h.record(Verdict::Fail, secs(t0, 50)), Unhealthy);
    }

    #[test]
    fn a_pass_in_the_start_period_is_healthy_at_once() {
        let t0 = Instant::now();
        let mut h = HealthState::new(&config(3, 60), t0);
        assert_eq!(h.record(Verdict::Pass, secs(t0, 5)), Healthy);
    }

    #[test]
    fn failures_in_the_start_period_do_not_count() {
        let t0 = Instant::now();
        let mut h = HealthState::new(&config(2, 20), t0);
        for s in [5, 10, 15, 19] {
            assert_eq!(h.record(Verdict::Fail, secs(t0, s)), Unknown, "at {s}s");
        }
        // From the end of the start period on, failures count.
        assert_eq!(h.record(Verdict::Fail, secs(t0, 20)), Unknown);
        assert_eq!(h.record(Verdict::Fail, secs(t0, 25)), Unhealthy);
    }

    #[test]
    fn a_timeout_is_a_failure() {
        assert_eq!(Verdict::of(ExecStatus::TimedOut), Verdict::Fail);
        assert_eq!(Verdict::of(ExecStatus::Exited(1)), Verdict::Fail);
        assert_eq!(Verdict::of(ExecStatus::Exited(0)), Verdict::Pass);
        let t0 = Instant::now();
        let mut h = HealthState::new(&config(1, 0), t0);
        assert_eq!(
            h.record(Verdict::of(ExecStatus::TimedOut), secs(t0, 7)),
            Unhealthy
        );
    }

    #[test]
    fn task_health_comes_from_essential_containers_with_checks() {
        let m = |essential, has_check, status| Member {
            essential,
            has_check,
            status,
        };
        assert_eq!(task_health([]), Unknown);
        assert_eq!(task_health([m(true, false, Unknown)]), Unknown);
        assert_eq!(task_health([m(true, true, Healthy)]), Healthy);
        assert_eq!(
            task_health([m(true, true, Healthy), m(true, false, Unknown)]),
            Healthy,
            "containers without a check do not count"
        );
        assert_eq!(
            task_health([m(true, true, Healthy), m(false, true, Unhealthy)]),
            Healthy,
            "non-essential containers do not count"
        );
        assert_eq!(
            task_health([m(true, true, Healthy), m(true, true, Unknown)]),
            Unknown
        );
        assert_eq!(
            task_health([m(true, true, Unknown), m(true, true, Unhealthy)]),
            Unhealthy
        );
    }

    #[test]
    fn commands_and_defaults() {
        let check = |cmd: &[&str]| HealthCheck {
            command: cmd.iter().map(|s| s.to_string()).collect(),
            interval: None,
            timeout: None,
            retries: None,
            start_period: None,
        };
        let c = HealthConfig::from_definition(&check(&["CMD-SHELL", "curl -f x || exit 1"]))
            .expect("a check");
        assert_eq!(c.args, ["/bin/sh", "-c", "curl -f x || exit 1"]);
        assert_eq!(
            (c.interval, c.timeout, c.retries, c.start_period),
            (
                Duration::from_secs(30),
                Duration::from_secs(5),
                3,
                Duration::ZERO
            )
        );
        let c =
            HealthConfig::from_definition(&check(&["CMD", "/bin/check", "-v"])).expect("a check");
        assert_eq!(c.args, ["/bin/check", "-v"]);
        assert_eq!(HealthConfig::from_definition(&check(&["NONE"])), None);
        assert_eq!(HealthConfig::from_definition(&check(&["CMD"])), None);
    }
}
