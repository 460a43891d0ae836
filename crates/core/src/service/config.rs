//! A service's deployment configuration, in ECS's JSON, and the arithmetic
//! ECS defines on it (ecs-semantics.md 4.2, 4.3): the bounds a rolling
//! deployment stays within and the circuit breaker's failure threshold.

use serde::{Deserialize, Serialize};

use super::SchedulingStrategy;
use crate::error::{ApiError, Exception};

/// ECS's `deploymentConfiguration`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeploymentConfiguration {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deployment_circuit_breaker: Option<DeploymentCircuitBreaker>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub maximum_percent: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub minimum_healthy_percent: Option<u32>,
    /// CloudWatch alarms: stored and returned; orca has no CloudWatch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alarms: Option<serde_json::Value>,
    /// ROLLING (the only one orca runs) or BLUE_GREEN (refused).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strategy: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bake_time_in_minutes: Option<u32>,
}

/// ECS's `deploymentCircuitBreaker`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeploymentCircuitBreaker {
    pub enable: bool,
    pub rollback: bool,
    /// Whether a task that turns healthy resets the failure count (default true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reset_on_healthy_task: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threshold_configuration: Option<ThresholdConfiguration>,
}

/// ECS's `thresholdConfiguration`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ThresholdConfiguration {
    #[serde(rename = "type")]
    pub kind: ThresholdType,
    pub value: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ThresholdType {
    Count,
    BoundedPercent,
    UnboundedPercent,
}

/// The bounds and breaker a deployment runs with, defaults applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeploymentRules {
    pub minimum_healthy_percent: u32,
    pub maximum_percent: u32,
    pub breaker: Option<Breaker>,
}

/// An enabled circuit breaker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Breaker {
    pub rollback: bool,
    pub reset_on_healthy_task: bool,
    pub threshold: ThresholdType,
    pub value: u32,
}

/// ECS's floor and ceiling on the BOUNDED_PERCENT threshold.
pub const BREAKER_MIN_THRESHOLD: u32 = 3;
pub const BREAKER_MAX_THRESHOLD: u32 = 200;

impl DeploymentRules {
    /// Fewest tasks that must stay healthy: `ceil(desired × min% / 100)`.
    pub fn minimum_healthy(&self, desired: u32) -> u32 {
        (u64::from(desired) * u64::from(self.minimum_healthy_percent)).div_ceil(100) as u32
    }

    /// Most tasks running or pending: `floor(desired × max% / 100)`, but
    /// never below the desired count itself when max is at least 100.
    pub fn maximum_total(&self, desired: u32) -> u32 {
        (u64::from(desired) * u64::from(self.maximum_percent) / 100) as u32
    }
}

impl Breaker {
    /// How many failed tasks fail the deployment.
    pub fn threshold(&self, desired: u32) -> u32 {
        let percent_of =
            |desired: u32| (u64::from(desired) * u64::from(self.value)).div_ceil(100) as u32;
        match self.threshold {
            ThresholdType::Count => self.value.max(1),
            ThresholdType::BoundedPercent => {
                percent_of(desired).clamp(BREAKER_MIN_THRESHOLD, BREAKER_MAX_THRESHOLD)
            }
            ThresholdType::UnboundedPercent => percent_of(desired).max(1),
        }
    }
}

impl DeploymentConfiguration {
    /// The rules this configuration gives a service of `strategy`, with
    /// ECS's defaults (REPLICA 100/200, DAEMON 0/100).
    pub fn rules(&self, strategy: SchedulingStrategy) -> DeploymentRules {
        let (min, max) = match strategy {
            SchedulingStrategy::Replica => (100, 200),
            SchedulingStrategy::Daemon => (0, 100),
        };
        let breaker = self
            .deployment_circuit_breaker
            .as_ref()
            .filter(|b| b.enable)
            .map(|b| {
                let (threshold, value) = b
                    .threshold_configuration
                    .as_ref()
                    .map_or((ThresholdType::BoundedPercent, 50), |t| (t.kind, t.value));
                Breaker {
                    rollback: b.rollback,
                    reset_on_healthy_task: b.reset_on_healthy_task.unwrap_or(true),
                    threshold,
                    value,
                }
            });
        DeploymentRules {
            minimum_healthy_percent: self.minimum_healthy_percent.unwrap_or(min),
            maximum_percent: self.maximum_percent.unwrap_or(max),
            breaker,
        }
    }

    /// ECS's rules on the configuration; `path` is where it sits in the
    /// request (`deploymentConfiguration`).
    pub fn validate(&self, strategy: SchedulingStrategy, path: &str) -> Result<(), ApiError> {
        let invalid = |field: &str, message: String| {
            ApiError::field(
                Exception::InvalidParameterException,
                format!("{path}.{field}"),
                message,
            )
        };
        if let Some(max) = self.maximum_percent {
            if !(100..=2000).contains(&max) && strategy == SchedulingStrategy::Replica {
                return Err(invalid(
                    "maximumPercent",
                    format!("{max} is out of range: it must be between 100 and 2000"),
                ));
            }
            if strategy == SchedulingStrategy::Daemon && max != 100 {
                return Err(invalid(
                    "maximumPercent",
                    format!("{max} is not allowed: a DAEMON service's maximumPercent must be 100"),
                ));
            }
        }
        if let Some(min) = self.minimum_healthy_percent {
            if min > 100 {
                return Err(invalid(
                    "minimumHealthyPercent",
                    format!("{min} is out of range: it must be between 0 and 100"),
                ));
            }
        }
        if let Some(strategy) = self.strategy.as_deref() {
            match strategy {
                "ROLLING" => {}
                "BLUE_GREEN" => {
                    return Err(ApiError::field(
                        Exception::UnsupportedFeatureException,
                        format!("{path}.strategy"),
                        "BLUE_GREEN deployments are not supported by orca: use ROLLING",
                    ))
                }
                other => {
                    return Err(invalid(
                        "strategy",
                        format!("unknown value '{other}': expected ROLLING or BLUE_GREEN"),
                    ))
                }
            }
        }
        if let Some(t) = self
            .deployment_circuit_breaker
            .as_ref()
            .and_then(|b| b.threshold_configuration.as_ref())
        {
            let field = "deploymentCircuitBreaker.thresholdConfiguration.value";
            match t.kind {
                ThresholdType::Count if t.value == 0 => {
                    return Err(invalid(
                        field,
                        "a COUNT threshold must be at least 1".into(),
                    ))
                }
                ThresholdType::BoundedPercent | ThresholdType::UnboundedPercent
                    if !(1..=100).contains(&t.value) =>
                {
                    return Err(invalid(
                        field,
                        format!(
                            "{} is out of range: a percentage must be between 1 and 100",
                            t.value
                        ),
                    ))
                }
                _ => {}
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(min: u32, max: u32) -> DeploymentRules {
        DeploymentRules {
            minimum_healthy_percent: min,
            maximum_percent: max,
            breaker: None,
        }
    }

    #[test]
    fn bounds_round_as_ecs_documents() {
        // 75 % of 2 rounds up to 2: nothing may be stopped first.
        assert_eq!(rules(75, 200).minimum_healthy(2), 2);
        // 125 % of 3 rounds down to 3: nothing extra may be started.
        assert_eq!(rules(100, 125).maximum_total(3), 3);
        assert_eq!(rules(50, 200).minimum_healthy(3), 2);
        assert_eq!(rules(50, 200).maximum_total(3), 6);
        assert_eq!(rules(0, 100).minimum_healthy(5), 0);
        assert_eq!(rules(100, 200).maximum_total(0), 0);
    }

    #[test]
    fn breaker_thresholds_follow_each_type() {
        let breaker = |threshold, value| Breaker {
            rollback: true,
            reset_on_healthy_task: true,
            threshold,
            value,
        };
        let bounded = breaker(ThresholdType::BoundedPercent, 50);
        // clamp(ceil(0.5 × desired), 3, 200).
        assert_eq!(bounded.threshold(1), 3);
        assert_eq!(bounded.threshold(25), 13);
        assert_eq!(bounded.threshold(400), 200);
        assert_eq!(bounded.threshold(800), 200);
        let unbounded = breaker(ThresholdType::UnboundedPercent, 50);
        assert_eq!(unbounded.threshold(1), 1);
        assert_eq!(unbounded.threshold(800), 400);
        assert_eq!(breaker(ThresholdType::Count, 7).threshold(1000), 7);
    }

    #[test]
    fn defaults_depend_on_the_scheduling_strategy() {
        let none = DeploymentConfiguration::default();
        assert_eq!(none.rules(SchedulingStrategy::Replica), rules(100, 200));
        assert_eq!(none.rules(SchedulingStrategy::Daemon), rules(0, 100));
        let with_breaker = DeploymentConfiguration {
            deployment_circuit_breaker: Some(DeploymentCircuitBreaker {
                enable: true,
                rollback: true,
                ..Default::default()
            }),
            ..Default::default()
        };
        let b = with_breaker
            .rules(SchedulingStrategy::Replica)
            .breaker
            .expect("enabled");
        assert_eq!(
            (b.threshold, b.value, b.reset_on_healthy_task),
            (ThresholdType::BoundedPercent, 50, true)
        );
    }

    #[test]
    fn bad_configurations_name_the_field() {
        let check = |json: &str, strategy| {
            let c: DeploymentConfiguration = serde_json::from_str(json).expect("json");
            c.validate(strategy, "deploymentConfiguration")
                .err()
                .and_then(|e| e.field)
        };
        let field = |f: &str| Some(format!("deploymentConfiguration.{f}"));
        assert_eq!(
            check(r#"{"maximumPercent": 50}"#, SchedulingStrategy::Replica),
            field("maximumPercent")
        );
        assert_eq!(
            check(r#"{"maximumPercent": 200}"#, SchedulingStrategy::Daemon),
            field("maximumPercent")
        );
        assert_eq!(
            check(
                r#"{"minimumHealthyPercent": 101}"#,
                SchedulingStrategy::Replica
            ),
            field("minimumHealthyPercent")
        );
        assert_eq!(
            check(r#"{"strategy": "BLUE_GREEN"}"#, SchedulingStrategy::Replica),
            field("strategy")
        );
        assert_eq!(
            check(
                r#"{"deploymentCircuitBreaker": {"enable": true, "rollback": true, "thresholdConfiguration": {"type": "BOUNDED_PERCENT", "value": 0}}}"#,
                SchedulingStrategy::Replica
            ),
            field("deploymentCircuitBreaker.thresholdConfiguration.value")
        );
        assert_eq!(
            check(
                r#"{"minimumHealthyPercent": 50, "maximumPercent": 200}"#,
                SchedulingStrategy::Replica
            ),
            None
        );
    }
}
