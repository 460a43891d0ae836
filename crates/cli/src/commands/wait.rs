//! `orca wait services-stable | services-inactive | tasks-running |
//! tasks-stopped`, as the aws CLI's waiters (botocore's ECS waiters): the
//! describe call every `--delay` seconds until the condition holds (exit 0),
//! a failure state is seen or `--max-attempts` run out (exit 255, naming
//! why). `--wait` on create-service and update-service follows a rollout
//! (`follow_rollout`).

use std::time::Duration;

use serde_json::{json, Value};

use super::{describe_services, describe_tasks, shape, Ctx};
use crate::failover::Call;

/// The aws CLI's exit code for a waiter that failed or timed out.
pub const WAITER_FAILED: u8 = 255;

#[derive(clap::Subcommand, Debug)]
pub enum Waiter {
    /// Until every service has one deployment and runningCount == desiredCount.
    ServicesStable(ServiceArgs),
    /// Until every service is INACTIVE.
    ServicesInactive(ServiceArgs),
    /// Until every task is RUNNING (fails if one STOPPED).
    TasksRunning(TaskArgs),
    /// Until every task is STOPPED.
    TasksStopped(TaskArgs),
}

#[derive(clap::Args, Debug, Clone)]
pub struct ServiceArgs {
    #[arg(long)]
    pub cluster: Option<String>,
    #[arg(long, num_args = 1.., required = true)]
    pub services: Vec<String>,
    /// Seconds between looks (the aws CLI: 15).
    #[arg(long, default_value_t = 15.0)]
    pub delay: f64,
    #[arg(long, default_value_t = 40)]
    pub max_attempts: u32,
}

#[derive(clap::Args, Debug, Clone)]
pub struct TaskArgs {
    #[arg(long)]
    pub cluster: Option<String>,
    #[arg(long, num_args = 1.., required = true)]
    pub tasks: Vec<String>,
    /// Seconds between looks (the aws CLI: 6).
    #[arg(long, default_value_t = 6.0)]
    pub delay: f64,
    #[arg(long, default_value_t = 100)]
    pub max_attempts: u32,
}

/// What one look found.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    Done,
    Failed(String),
    Waiting,
}

fn items<'a>(v: &'a Value, key: &str) -> Vec<&'a Value> {
    v[key]
        .as_array()
        .map(|a| a.iter().collect())
        .unwrap_or_default()
}

fn missing(v: &Value) -> Option<String> {
    items(v, "failures")
        .iter()
        .find(|f| f["reason"] == "MISSING")
        .map(|f| format!("{} is MISSING", f["arn"].as_str().unwrap_or("?")))
}

/// botocore's ServicesStable.
pub fn services_stable(described: &Value) -> Verdict {
    if let Some(why) = missing(described) {
        return Verdict::Failed(why);
    }
    let services = items(described, "services");
    if let Some(s) = services
        .iter()
        .find(|s| s["status"] == "DRAINING" || s["status"] == "INACTIVE")
    {
        return Verdict::Failed(format!(
            "service {} is {}",
            s["serviceName"].as_str().unwrap_or("?"),
            s["status"].as_str().unwrap_or("?")
        ));
    }
    let stable = services.iter().all(|s| {
        s["deployments"].as_array().map(Vec::len) == Some(1)
            && s["runningCount"] == s["desiredCount"]
    });
    if stable {
        Verdict::Done
    } else {
        Verdict::Waiting
    }
}

/// botocore's ServicesInactive.
pub fn services_inactive(described: &Value) -> Verdict {
    if let Some(why) = missing(described) {
        return Verdict::Failed(why);
    }
    if items(described, "services")
        .iter()
        .any(|s| s["status"] == "INACTIVE")
    {
        Verdict::Done
    } else {
        Verdict::Waiting
    }
}

/// botocore's TasksRunning.
pub fn tasks_running(described: &Value) -> Verdict {
    if let Some(why) = missing(described) {
        return Verdict::Failed(why);
    }
    let tasks = items(described, "tasks");
    if let Some(t) = tasks.iter().find(|t| t["lastStatus"] == "STOPPED") {
        return Verdict::Failed(format!(
            "task {} is STOPPED: {}",
            t["taskArn"].as_str().unwrap_or("?"),
            t["stoppedReason"].as_str().unwrap_or("")
        ));
    }
    if tasks.iter().all(|t| t["lastStatus"] == "RUNNING") {
        Verdict::Done
    } else {
        Verdict::Waiting
    }
}

/// botocore's TasksStopped.
pub fn tasks_stopped(described: &Value) -> Verdict {
    if items(described, "tasks")
        .iter()
        .all(|t| t["lastStatus"] == "STOPPED")
    {
        Verdict::Done
    } else {
        Verdict::Waiting
    }
}

async fn describe(ctx: &Ctx, waiter: &Waiter) -> anyhow::Result<Value> {
    let text = |v: &Option<String>| v.clone().map(Value::String);
    let list = |v: &[String]| Some(Value::Array(v.iter().cloned().map(Value::String).collect()));
    match waiter {
        Waiter::ServicesStable(a) | Waiter::ServicesInactive(a) => {
            let input = shape::input_object([
                ("cluster", text(&a.cluster)),
                ("services", list(&a.services)),
            ]);
            let reply = ctx
                .ecs(
                    describe_services::OPERATION,
                    Call::Read,
                    shape::ecs_json_request(input),
                    |mut c, r| async move { c.describe_services(r).await },
                )
                .await?;
            shape::ecs_json(&reply)
        }
        Waiter::TasksRunning(a) | Waiter::TasksStopped(a) => {
            let input =
                shape::input_object([("cluster", text(&a.cluster)), ("tasks", list(&a.tasks))]);
            let reply = ctx
                .ecs(
                    describe_tasks::OPERATION,
                    Call::Read,
                    shape::ecs_json_request(input),
                    |mut c, r| async move { c.describe_tasks(r).await },
                )
                .await?;
            shape::ecs_json(&reply)
        }
    }
}

/// Runs the waiter; returns the exit code (0 or [`WAITER_FAILED`]).
pub async fn run(waiter: &Waiter, ctx: &Ctx) -> anyhow::Result<u8> {
    let (name, check, delay, attempts): (&str, fn(&Value) -> Verdict, f64, u32) = match waiter {
        Waiter::ServicesStable(a) => ("ServicesStable", services_stable, a.delay, a.max_attempts),
        Waiter::ServicesInactive(a) => (
            "ServicesInactive",
            services_inactive,
            a.delay,
            a.max_attempts,
        ),
        Waiter::TasksRunning(a) => ("TasksRunning", tasks_running, a.delay, a.max_attempts),
        Waiter::TasksStopped(a) => ("TasksStopped", tasks_stopped, a.delay, a.max_attempts),
    };
    let pause = Duration::from_secs_f64(delay.max(0.0));
    for attempt in 1..=attempts.max(1) {
        let described = describe(ctx, waiter).await?;
        match check(&described) {
            Verdict::Done => return Ok(0),
            Verdict::Failed(why) => {
                eprintln!(
                    "Waiter {name} failed: Waiter encountered a terminal failure state: {why}"
                );
                return Ok(WAITER_FAILED);
            }
            Verdict::Waiting if attempt == attempts.max(1) => break,
            Verdict::Waiting => tokio::time::sleep(pause).await,
        }
    }
    eprintln!("Waiter {name} failed: Max attempts exceeded");
    Ok(WAITER_FAILED)
}

/// `--wait` after create-service or update-service: follows the deployment
/// the call started (the service's primary) to steady state, printing each
/// deployment's counts when they change and each new event to stderr.
/// Ok(()) once it COMPLETED with every task running; an error naming the
/// reason if it FAILED (rolled back or not).
pub async fn follow_rollout(
    ctx: &Ctx,
    cluster: Option<String>,
    output: &Value,
) -> anyhow::Result<()> {
    let service = &output["service"];
    let name = service["serviceName"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let deployment = service["deployments"][0]["id"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let waiter = Waiter::ServicesStable(ServiceArgs {
        cluster,
        services: vec![name.clone()],
        delay: 1.0,
        max_attempts: u32::MAX,
    });
    let mut seen_events: std::collections::BTreeSet<String> = items(service, "events")
        .iter()
        .filter_map(|e| e["id"].as_str().map(str::to_string))
        .collect();
    let mut last_line = String::new();
    loop {
        let described = describe(ctx, &waiter).await?;
        let s = described["services"].get(0).cloned().unwrap_or(json!({}));
        let mut events: Vec<&Value> = items(&s, "events");
        events.reverse();
        for e in events {
            if let Some(id) = e["id"].as_str() {
                if seen_events.insert(id.to_string()) {
                    eprintln!("{}", e["message"].as_str().unwrap_or_default());
                }
            }
        }
        let line = items(&s, "deployments")
            .iter()
            .map(|d| {
                format!(
                    "{} {} {}: running {}/{} pending {} {}",
                    d["status"].as_str().unwrap_or("?"),
                    d["id"].as_str().unwrap_or("?"),
                    d["taskDefinition"]
                        .as_str()
                        .unwrap_or("?")
                        .rsplit('/')
                        .next()
                        .unwrap_or("?"),
                    d["runningCount"],
                    d["desiredCount"],
                    d["pendingCount"],
                    d["rolloutState"].as_str().unwrap_or("?"),
                )
            })
            .collect::<Vec<_>>()
            .join("; ");
        if line != last_line {
            eprintln!("{line}");
            last_line = line;
        }
        let ours = items(&s, "deployments")
            .into_iter()
            .find(|d| d["id"] == deployment.as_str())
            .cloned();
        match ours {
            Some(d) if d["rolloutState"] == "FAILED" => anyhow::bail!(
                "deployment {deployment} of service {name} failed: {}",
                d["rolloutStateReason"].as_str().unwrap_or("")
            ),
            None if !deployment.is_empty() => anyhow::bail!(
                "deployment {deployment} of service {name} was replaced before it completed (rolled back or superseded)"
            ),
            _ => {}
        }
        if services_stable(&described) == Verdict::Done
            && s["deployments"][0]["id"] == deployment.as_str()
            && s["deployments"][0]["rolloutState"] == "COMPLETED"
        {
            return Ok(());
        }
        if let Verdict::Failed(why) = services_stable(&described) {
            anyhow::bail!("service {name}: {why}");
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn services_stable_follows_botocore() {
        let svc = |deployments: usize, running: u32, desired: u32, status: &str| {
            json!({"serviceName": "web", "status": status, "runningCount": running, "desiredCount": desired,
                   "deployments": vec![json!({}); deployments]})
        };
        let one = |s: Value| json!({"services": [s], "failures": []});
        assert_eq!(services_stable(&one(svc(1, 3, 3, "ACTIVE"))), Verdict::Done);
        assert_eq!(
            services_stable(&one(svc(2, 3, 3, "ACTIVE"))),
            Verdict::Waiting
        );
        assert_eq!(
            services_stable(&one(svc(1, 2, 3, "ACTIVE"))),
            Verdict::Waiting
        );
        assert!(matches!(
            services_stable(&one(svc(1, 0, 0, "DRAINING"))),
            Verdict::Failed(_)
        ));
        assert!(matches!(
            services_stable(&json!({"services": [], "failures": [{"arn": "web", "reason": "MISSING"}]})),
            Verdict::Failed(m) if m.contains("MISSING")
        ));
    }

    #[test]
    fn task_waiters_follow_botocore() {
        let tasks = |statuses: &[&str]| json!({"tasks": statuses.iter().map(|s| json!({"taskArn": "t", "lastStatus": s})).collect::<Vec<_>>(), "failures": []});
        assert_eq!(
            tasks_running(&tasks(&["RUNNING", "RUNNING"])),
            Verdict::Done
        );
        assert_eq!(
            tasks_running(&tasks(&["RUNNING", "PENDING"])),
            Verdict::Waiting
        );
        assert!(matches!(
            tasks_running(&tasks(&["RUNNING", "STOPPED"])),
            Verdict::Failed(_)
        ));
        assert_eq!(
            tasks_stopped(&tasks(&["STOPPED", "STOPPED"])),
            Verdict::Done
        );
        assert_eq!(
            tasks_stopped(&tasks(&["STOPPED", "RUNNING"])),
            Verdict::Waiting
        );
        assert_eq!(
            services_inactive(&json!({"services": [{"status": "INACTIVE"}], "failures": []})),
            Verdict::Done
        );
    }
}
