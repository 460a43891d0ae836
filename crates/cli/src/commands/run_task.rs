//! `orca run-task`: starts tasks from a task definition, from `--cli-input-json`
//! (sent verbatim) and/or flags (which override the JSON's keys); prints
//! ECS's RunTask output.
//!
//! With `--wait` it follows the tasks instead: every status change goes to
//! stderr (`<taskArn>: PENDING -> RUNNING`, containers' exit codes as they
//! stop) until every task is STOPPED; then the final DescribeTasks output is
//! printed, each task's stopped reason goes to stderr, and the command exits
//! with the essential container's exit code ([`wait_exit_code`]). When no
//! task started it prints the RunTask output, the failures on stderr and
//! exits 254; when some tasks started and others did not, a run whose tasks
//! all exit 0 still exits 254. Ctrl-C stops the waiting (exit 130), not the
//! tasks.

use super::{describe_tasks, shape, Ctx};
use crate::exit::{self, CliError};
use crate::failover::Call;
use crate::input;
use crate::output::{self, OutputFormat};
use serde_json::{json, Map, Value};
use std::collections::{BTreeSet, HashMap};
use std::io::Write;
use std::time::Duration;

pub const OPERATION: &str = "RunTask";

/// How often `--wait` describes the tasks.
const POLL: Duration = Duration::from_millis(200);
/// The exit code after Ctrl-C during `--wait` (128 + SIGINT, as shells report it).
const INTERRUPTED: u8 = 130;

#[derive(clap::Args, Debug, Default)]
pub struct Args {
    /// The whole input as JSON (inline or file://path); flags override its keys.
    #[arg(long)]
    pub cli_input_json: Option<String>,
    /// Name or ARN; defaults to `default`.
    #[arg(long)]
    pub cluster: Option<String>,
    /// `family`, `family:revision` or a task definition ARN.
    #[arg(long, required_unless_present = "cli_input_json")]
    pub task_definition: Option<String>,
    /// How many tasks to start (1 to 10).
    #[arg(long)]
    pub count: Option<u32>,
    /// JSON, file:// or shorthand: `containerOverrides=[{name=app,command=[sh,-c,exit 3]}]`.
    #[arg(long)]
    pub overrides: Option<String>,
    #[arg(long)]
    pub started_by: Option<String>,
    #[arg(long)]
    pub group: Option<String>,
    /// Makes the call idempotent: a retry with the same token returns the same tasks.
    #[arg(long)]
    pub client_token: Option<String>,
    /// EC2, EXTERNAL or FARGATE.
    #[arg(long)]
    pub launch_type: Option<String>,
    /// JSON or shorthand: `awsvpcConfiguration={subnets=[s1],assignPublicIp=DISABLED}`.
    #[arg(long)]
    pub network_configuration: Option<String>,
    /// `key=k,value=v` (or JSON), one per tag.
    #[arg(long, num_args = 1..)]
    pub tags: Vec<String>,
    #[arg(long, overrides_with = "no_enable_execute_command")]
    pub enable_execute_command: bool,
    #[arg(long, overrides_with = "enable_execute_command")]
    pub no_enable_execute_command: bool,
    #[arg(long, overrides_with = "no_enable_ecs_managed_tags")]
    pub enable_ecs_managed_tags: bool,
    #[arg(long, overrides_with = "enable_ecs_managed_tags")]
    pub no_enable_ecs_managed_tags: bool,
    /// TASK_DEFINITION, SERVICE or NONE.
    #[arg(long)]
    pub propagate_tags: Option<String>,
    /// orca's: stop the task (UserInitiated) once it has been RUNNING this
    /// many seconds.
    #[arg(long)]
    pub run_timeout_seconds: Option<u32>,
    #[arg(long)]
    pub reference_id: Option<String>,
    #[arg(long)]
    pub platform_version: Option<String>,
    #[arg(long, num_args = 1..)]
    pub placement_constraints: Vec<String>,
    #[arg(long, num_args = 1..)]
    pub placement_strategy: Vec<String>,
    #[arg(long, num_args = 1..)]
    pub capacity_provider_strategy: Vec<String>,
    /// Follow the tasks until they stop and exit with the essential container's exit code.
    #[arg(long)]
    pub wait: bool,
}

/// `--overrides`: ECS's task-level `cpu` and `memory` are strings ("256",
/// "0.5 vCPU"), which shorthand's `cpu=256` would make a number.
fn overrides(raw: &str) -> Result<Value, CliError> {
    let mut value = input::structure("--overrides", raw)?;
    if let Some(m) = value.as_object_mut() {
        for key in ["cpu", "memory"] {
            if let Some(n @ Value::Number(_)) = m.get(key) {
                let text = n.to_string();
                m.insert(key.to_string(), Value::String(text));
            }
        }
    }
    Ok(value)
}

/// The flags given, as ECS input keys, in ECS's order.
fn flag_keys(a: &Args) -> Result<Map<String, Value>, CliError> {
    let text = |v: &Option<String>| v.clone().map(Value::String);
    Ok(shape::input_object([
        ("cluster", text(&a.cluster)),
        ("taskDefinition", text(&a.task_definition)),
        ("count", a.count.map(Value::from)),
        (
            "overrides",
            a.overrides.as_deref().map(overrides).transpose()?,
        ),
        ("startedBy", text(&a.started_by)),
        ("group", text(&a.group)),
        ("clientToken", text(&a.client_token)),
        ("launchType", text(&a.launch_type)),
        (
            "networkConfiguration",
            input::optional_structure(
                "--network-configuration",
                a.network_configuration.as_deref(),
            )?,
        ),
        ("tags", input::optional_structures("--tags", &a.tags)?),
        (
            "enableExecuteCommand",
            shape::switch(a.enable_execute_command, a.no_enable_execute_command),
        ),
        (
            "enableECSManagedTags",
            shape::switch(a.enable_ecs_managed_tags, a.no_enable_ecs_managed_tags),
        ),
        ("propagateTags", text(&a.propagate_tags)),
        ("runTimeoutSeconds", a.run_timeout_seconds.map(Value::from)),
        ("referenceId", text(&a.reference_id)),
        ("platformVersion", text(&a.platform_version)),
        (
            "placementConstraints",
            input::optional_structures("--placement-constraints", &a.placement_constraints)?,
        ),
        (
            "placementStrategy",
            input::optional_structures("--placement-strategy", &a.placement_strategy)?,
        ),
        (
            "capacityProviderStrategy",
            input::optional_structures(
                "--capacity-provider-strategy",
                &a.capacity_provider_strategy,
            )?,
        ),
    ]))
}

/// The `input_json` to send: `--cli-input-json` with the flags' keys laid over it.
pub fn build_input(a: &Args) -> Result<String, CliError> {
    input::merge_cli_input(a.cli_input_json.as_deref(), flag_keys(a)?)
}

pub async fn run(args: &Args, ctx: &Ctx) -> anyhow::Result<Value> {
    let request = orca_api::v1::EcsJsonRequest {
        input_json: build_input(args)?,
    };
    let reply = ctx
        .ecs(OPERATION, Call::Write, request, |mut c, r| async move {
            c.run_task(r).await
        })
        .await?;
    shape::ecs_json(&reply)
}

/// `run-task --wait`: prints what the module documentation says and returns
/// the exit code.
pub async fn run_and_wait(args: &Args, ctx: &Ctx, format: OutputFormat) -> anyhow::Result<u8> {
    let started = run(args, ctx).await?;
    let failures = items(&started, "failures");
    for f in &failures {
        note(&format!("failure: {}", failure_line(f)));
    }
    let tasks = items(&started, "tasks");
    let Some(first) = tasks.first() else {
        output::print(format, OPERATION, &started)?;
        return Ok(exit::SERVICE);
    };
    let cluster = text(first, "clusterArn").to_string();
    for t in &tasks {
        note(&format!(
            "{}: {}",
            text(t, "taskArn"),
            text(t, "lastStatus")
        ));
    }
    let interrupted = async {
        // Without a handler Ctrl-C ends the process anyway; never fire here then.
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    let described = tokio::select! {
        r = follow(ctx, &cluster, &tasks) => r?,
        () = interrupted => {
            note("interrupted: the tasks keep running (stop them with `orca stop-task`)");
            return Ok(INTERRUPTED);
        }
    };
    output::print(format, describe_tasks::OPERATION, &described)?;
    let stopped = items(&described, "tasks");
    for t in &stopped {
        let line = stopped_line(t);
        if tasks.len() > 1 {
            note(&format!("{}: {line}", text(t, "taskArn")));
        } else {
            note(&line);
        }
    }
    let mut code = wait_exit_code(&stopped);
    if code == 0 && (stopped.len() < tasks.len() || !failures.is_empty()) {
        code = exit::SERVICE;
    }
    Ok(code)
}

/// How long a task may be reported MISSING before `--wait` gives up on it.
const MISSING_GRACE: std::time::Duration = std::time::Duration::from_secs(5);

fn seen_described(described: &Value, arn: &str) -> bool {
    items(described, "tasks")
        .iter()
        .any(|t| text(t, "taskArn") == arn)
}

/// Describes `tasks` every [`POLL`] until all are STOPPED (or MISSING),
/// reporting changes on stderr; returns the last DescribeTasks output.
async fn follow(ctx: &Ctx, cluster: &str, tasks: &[Value]) -> anyhow::Result<Value> {
    let arns: Vec<String> = tasks
        .iter()
        .map(|t| text(t, "taskArn").to_string())
        .collect();
    let mut seen: HashMap<String, Value> =
        arns.iter().cloned().zip(tasks.iter().cloned()).collect();
    let mut missing = BTreeSet::new();
    // A controller that is a follower may not have applied the RunTask yet:
    // a task counts as MISSING only once it stays missing for a while.
    let mut missing_since: HashMap<String, std::time::Instant> = HashMap::new();
    loop {
        tokio::time::sleep(POLL).await;
        let input = shape::input_object([
            ("cluster", Some(json!(cluster))),
            ("tasks", Some(json!(arns))),
        ]);
        let described = describe_tasks::describe(ctx, input).await?;
        for t in items(&described, "tasks") {
            let arn = text(&t, "taskArn").to_string();
            if let Some(before) = seen.get(&arn) {
                for line in progress(before, &t) {
                    note(&line);
                }
            }
            seen.insert(arn, t);
        }
        for f in items(&described, "failures") {
            let arn = text(&f, "arn").to_string();
            if !arns.contains(&arn) || seen_described(&described, &arn) {
                continue;
            }
            let since = *missing_since
                .entry(arn.clone())
                .or_insert_with(std::time::Instant::now);
            if since.elapsed() >= MISSING_GRACE && missing.insert(arn) {
                note(&failure_line(&f));
            }
        }
        let done = arns.iter().all(|a| {
            missing.contains(a)
                || seen
                    .get(a)
                    .is_some_and(|t| text(t, "lastStatus") == "STOPPED")
        });
        if done {
            return Ok(described);
        }
    }
}

/// The stderr lines for one task's change from `before` to `after`: each
/// container that stopped (with its exit code or reason), then the task's
/// status change.
pub fn progress(before: &Value, after: &Value) -> Vec<String> {
    let arn = text(after, "taskArn");
    let mut lines = Vec::new();
    let old_containers = items(before, "containers");
    for c in items(after, "containers") {
        let name = text(&c, "name");
        let was = old_containers
            .iter()
            .find(|o| text(o, "name") == name)
            .map_or("", |o| text(o, "lastStatus"));
        if text(&c, "lastStatus") == "STOPPED" && was != "STOPPED" {
            lines.push(format!("{arn}: container {name} {}", container_end(&c)));
        }
    }
    let (old, new) = (text(before, "lastStatus"), text(after, "lastStatus"));
    if old != new {
        lines.push(format!("{arn}: {old} -> {new}"));
    }
    lines
}

/// How a stopped container ended: `exited with code 3`, or its reason.
fn container_end(c: &Value) -> String {
    match (c.get("exitCode").and_then(Value::as_i64), text(c, "reason")) {
        (Some(code), "") => format!("exited with code {code}"),
        (Some(code), reason) => format!("exited with code {code} ({reason})"),
        (None, "") => "stopped without an exit code".to_string(),
        (None, reason) => format!("stopped: {reason}"),
    }
}

/// `stopped reason: ... (stop code: ...)`.
fn stopped_line(task: &Value) -> String {
    let reason = text(task, "stoppedReason");
    let reason = if reason.is_empty() { "none" } else { reason };
    match text(task, "stopCode") {
        "" => format!("stopped reason: {reason}"),
        code => format!("stopped reason: {reason} (stop code: {code})"),
    }
}

/// What `--wait` exits with for the stopped `tasks`: each task's code is the
/// exit code of its first essential container (containers are essential
/// unless marked otherwise) that has one, or 1 when none has (the task
/// failed to start); codes outside 0..=255 become 1. The result is the first
/// non-zero task code, else 0; no tasks at all is 1.
pub fn wait_exit_code(tasks: &[Value]) -> u8 {
    if tasks.is_empty() {
        return 1;
    }
    tasks
        .iter()
        .map(task_exit_code)
        .find(|&code| code != 0)
        .unwrap_or(0)
}

fn task_exit_code(task: &Value) -> u8 {
    items(task, "containers")
        .iter()
        .filter(|c| c.get("essential").and_then(Value::as_bool).unwrap_or(true))
        .find_map(|c| c.get("exitCode").and_then(Value::as_i64))
        .map_or(1, |code| u8::try_from(code).unwrap_or(1))
}

fn failure_line(f: &Value) -> String {
    let arn = text(f, "arn");
    let mut line = if arn.is_empty() {
        text(f, "reason").to_string()
    } else {
        format!("{arn}: {}", text(f, "reason"))
    };
    let detail = text(f, "detail");
    if !detail.is_empty() {
        line.push_str(&format!(" ({detail})"));
    }
    line
}

/// The list under `key`, empty when there is none.
fn items(v: &Value, key: &str) -> Vec<Value> {
    v.get(key)
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
}

/// The string under `key`, empty when there is none.
fn text<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or_default()
}

/// One progress line on stderr; a closed stderr is not worth failing over.
fn note(line: &str) {
    let _ = writeln!(std::io::stderr(), "{line}");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(a: &Args) -> anyhow::Result<Value> {
        Ok(serde_json::from_str(&build_input(a)?)?)
    }

    #[test]
    fn flags_build_the_input() -> anyhow::Result<()> {
        let a = Args {
            cluster: Some("prod".into()),
            task_definition: Some("web:3".into()),
            count: Some(2),
            overrides: Some(
                "containerOverrides=[{name=app,command=[sh,-c,exit 3],environment=[{name=N,value=1}],memory=64}],cpu=512"
                    .into(),
            ),
            started_by: Some("me".into()),
            launch_type: Some("EC2".into()),
            network_configuration: Some(
                "awsvpcConfiguration={subnets=[s1,s2],assignPublicIp=DISABLED}".into(),
            ),
            tags: vec!["key=team,value=core".into()],
            enable_execute_command: true,
            ..Args::default()
        };
        let got = build_input(&a)?;
        assert_eq!(
            got,
            json!({
                "cluster": "prod",
                "taskDefinition": "web:3",
                "count": 2,
                "overrides": {
                    "containerOverrides": [{
                        "name": "app",
                        "command": ["sh", "-c", "exit 3"],
                        "environment": [{"name": "N", "value": "1"}],
                        "memory": 64
                    }],
                    "cpu": "512"
                },
                "startedBy": "me",
                "launchType": "EC2",
                "networkConfiguration": {"awsvpcConfiguration": {"subnets": ["s1", "s2"], "assignPublicIp": "DISABLED"}},
                "tags": [{"key": "team", "value": "core"}],
                "enableExecuteCommand": true
            })
            .to_string()
        );
        let a = Args {
            task_definition: Some("web".into()),
            overrides: Some(
                "{\"containerOverrides\": [{\"name\": \"app\", \"command\": [\"true\"]}]}".into(),
            ),
            no_enable_execute_command: true,
            ..Args::default()
        };
        assert_eq!(
            parsed(&a)?,
            json!({
                "taskDefinition": "web",
                "overrides": {"containerOverrides": [{"name": "app", "command": ["true"]}]},
                "enableExecuteCommand": false
            })
        );
        Ok(())
    }

    #[test]
    fn overrides_from_a_file_and_cli_input_json_overridden_by_flags() -> anyhow::Result<()> {
        let mut f = tempfile::NamedTempFile::new()?;
        write!(
            f,
            "{{\"containerOverrides\": [{{\"name\": \"app\", \"cpu\": 128}}]}}"
        )?;
        let doc = "{\"taskDefinition\": \"a\", \"count\": 3}";
        let a = Args {
            cli_input_json: Some(doc.into()),
            overrides: Some(format!("file://{}", f.path().display())),
            count: Some(1),
            ..Args::default()
        };
        assert_eq!(
            parsed(&a)?,
            json!({"taskDefinition": "a", "count": 1, "overrides": {"containerOverrides": [{"name": "app", "cpu": 128}]}})
        );
        let a = Args {
            cli_input_json: Some(doc.into()),
            wait: true,
            ..Args::default()
        };
        assert_eq!(build_input(&a)?, doc);
        let a = Args {
            task_definition: Some("a".into()),
            overrides: Some("containerOverrides=[{name=app".into()),
            ..Args::default()
        };
        assert!(matches!(build_input(&a), Err(CliError::Usage(m)) if m.contains("'--overrides'")));
        Ok(())
    }

    fn container(name: &str, essential: bool, exit_code: Option<i64>) -> Value {
        let mut c = json!({"name": name, "essential": essential, "lastStatus": "STOPPED"});
        if let (Some(code), Some(m)) = (exit_code, c.as_object_mut()) {
            m.insert("exitCode".into(), json!(code));
        }
        c
    }

    fn task(containers: Vec<Value>) -> Value {
        json!({"taskArn": "arn:t", "lastStatus": "STOPPED", "containers": containers})
    }

    #[test]
    fn the_exit_code_is_the_essential_containers() {
        let exit3 = task(vec![
            container("side", false, Some(7)),
            container("app", true, Some(3)),
        ]);
        assert_eq!(wait_exit_code(std::slice::from_ref(&exit3)), 3);
        let ok = task(vec![container("app", true, Some(0))]);
        assert_eq!(wait_exit_code(std::slice::from_ref(&ok)), 0);
        // Failed to start: no exit code anywhere.
        let failed = task(vec![container("app", true, None)]);
        assert_eq!(wait_exit_code(std::slice::from_ref(&failed)), 1);
        // The first essential container with an exit code counts.
        let second = task(vec![
            container("a", true, None),
            container("b", true, Some(4)),
        ]);
        assert_eq!(wait_exit_code(&[second]), 4);
        // Essential unless marked otherwise.
        let unmarked = json!({"containers": [{"name": "x", "exitCode": 9}]});
        assert_eq!(wait_exit_code(&[unmarked]), 9);
        // Several tasks: the first non-zero.
        assert_eq!(wait_exit_code(&[ok.clone(), exit3.clone(), failed]), 3);
        assert_eq!(wait_exit_code(&[ok.clone(), ok]), 0);
        assert_eq!(wait_exit_code(&[]), 1);
        // Out of range.
        assert_eq!(
            wait_exit_code(&[task(vec![container("a", true, Some(256))])]),
            1
        );
        assert_eq!(
            wait_exit_code(&[task(vec![container("a", true, Some(-1))])]),
            1
        );
        assert_eq!(
            wait_exit_code(&[task(vec![container("a", true, Some(255))])]),
            255
        );
    }

    #[test]
    fn progress_reports_status_changes_and_exit_codes() {
        let before = json!({"taskArn": "arn:t", "lastStatus": "RUNNING", "containers": [
            {"name": "app", "lastStatus": "RUNNING"},
            {"name": "side", "lastStatus": "STOPPED", "exitCode": 0}
        ]});
        let after = json!({"taskArn": "arn:t", "lastStatus": "STOPPED", "stopCode": "EssentialContainerExited",
            "stoppedReason": "Essential container in task exited", "containers": [
            {"name": "app", "lastStatus": "STOPPED", "exitCode": 3},
            {"name": "side", "lastStatus": "STOPPED", "exitCode": 0}
        ]});
        assert_eq!(
            progress(&before, &after),
            [
                "arn:t: container app exited with code 3",
                "arn:t: RUNNING -> STOPPED"
            ]
        );
        assert!(progress(&after, &after).is_empty());
        assert_eq!(
            stopped_line(&after),
            "stopped reason: Essential container in task exited (stop code: EssentialContainerExited)"
        );
        let pulled = json!({"name": "app", "lastStatus": "STOPPED", "reason": "CannotPullContainerError: x"});
        assert_eq!(
            container_end(&pulled),
            "stopped: CannotPullContainerError: x"
        );
        assert_eq!(
            failure_line(&json!({"arn": "a", "reason": "RESOURCE:MEMORY", "detail": "d"})),
            "a: RESOURCE:MEMORY (d)"
        );
    }
}
