//! The task lifecycle end to end through the controller and an in-process
//! agent on the fake runtime and fake network: RunTask, placement and
//! resources, ECS's statuses, stop codes and reasons, dependsOn, stopTimeout,
//! cleanup. The same scenarios run on real containerd in `tasks_containerd`.

use std::time::Duration;

use orca_core::Exception;
use orca_tests::agents::{
    container_named, ecs, wait_for_instances, wait_running, wait_stopped, FakeNode, FAKE_IMAGE,
};
use orca_tests::controller::InProcessController;
use serde_json::{json, Value};

use crate::support::register;

const WAIT: Duration = Duration::from_secs(20);

struct Setup {
    controller: InProcessController,
    node: FakeNode,
    client: crate::support::Client,
}

async fn setup() -> Setup {
    let controller = InProcessController::start_with(|c| {
        c.agent_heartbeat_timeout = Duration::from_secs(2);
    })
    .await
    .expect("controller");
    let node = FakeNode::start(&controller.endpoint(), |_| {})
        .await
        .expect("agent");
    let mut client = controller.client().await.expect("client");
    wait_for_instances(&mut client, "default", 1, WAIT)
        .await
        .expect("instance");
    Setup {
        controller,
        node,
        client,
    }
}

fn container(name: &str, command: &str) -> Value {
    json!({"name": name, "image": FAKE_IMAGE, "memory": 64, "command": ["sh", "-c", command]})
}

async fn register_td(client: &mut crate::support::Client, family: &str, containers: Vec<Value>) {
    let td = json!({"family": family, "containerDefinitions": containers});
    register(client, &td.to_string()).await.expect("register");
}

async fn run(client: &mut crate::support::Client, input: Value) -> Value {
    ecs(client, "RunTask", input).await.expect("run-task")
}

fn task_arn(output: &Value) -> String {
    output["tasks"][0]["taskArn"]
        .as_str()
        .expect("a task")
        .to_string()
}

#[tokio::test]
async fn a_container_exiting_3_stops_its_task_as_ecs_reports_it() {
    let mut s = setup().await;
    register_td(
        &mut s.client,
        "exit3",
        vec![container("app", "sleep 0.2; exit 3")],
    )
    .await;
    let out = run(
        &mut s.client,
        json!({"taskDefinition": "exit3", "startedBy": "tester"}),
    )
    .await;
    let t = &out["tasks"][0];
    assert_eq!(t["lastStatus"], "PROVISIONING");
    assert_eq!(t["desiredStatus"], "RUNNING");
    assert_eq!(t["startedBy"], "tester");
    assert_eq!(t["group"], "family:exit3");
    assert_eq!(t["cpu"], "0");
    assert_eq!(t["memory"], "64");
    let arn = task_arn(&out);
    assert!(
        arn.starts_with("arn:orca:ecs:local:000000000000:task/default/"),
        "{arn}"
    );

    let running = wait_running(&mut s.client, "default", &arn, WAIT)
        .await
        .unwrap();
    assert_eq!(running["lastStatus"], "RUNNING", "{running:#}");
    // While it runs, IPAM holds its address under its task id: the key the
    // idle check at the end looks for.
    let ip = running["containers"][0]["networkInterfaces"][0]["privateIpv4Address"].clone();
    assert!(ip.is_string(), "{running:#}");
    let held = ipam_allocations(&s.node);
    assert_eq!(held.get(task_id_of(&arn)), Some(&ip), "{held:?}");
    let stopped = wait_stopped(&mut s.client, "default", &arn, WAIT)
        .await
        .unwrap();
    let app = container_named(&stopped, "app");
    assert_eq!(app["exitCode"], 3, "{stopped:#}");
    assert_eq!(app["lastStatus"], "STOPPED");
    assert!(
        app["runtimeId"]
            .as_str()
            .is_some_and(|r| r.contains("-0-app")),
        "{app:#}"
    );
    assert!(
        app["imageDigest"]
            .as_str()
            .is_some_and(|d| d.starts_with("sha256:")),
        "{app:#}"
    );
    assert_eq!(stopped["stopCode"], "EssentialContainerExited");
    assert_eq!(
        stopped["stoppedReason"],
        "Essential container in task exited"
    );
    assert_eq!(stopped["desiredStatus"], "STOPPED");
    for field in [
        "createdAt",
        "pullStartedAt",
        "pullStoppedAt",
        "startedAt",
        "stoppingAt",
        "executionStoppedAt",
        "stoppedAt",
    ] {
        assert!(stopped[field].is_string(), "{field} missing: {stopped:#}");
    }
    let order = |f: &str| stopped[f].as_str().unwrap_or_default().to_string();
    assert!(order("createdAt") <= order("pullStartedAt"));
    assert!(order("pullStoppedAt") <= order("startedAt"));
    assert!(order("startedAt") <= order("stoppingAt"));
    assert!(order("executionStoppedAt") <= order("stoppedAt"));
    // The address is shown where ECS shows an awsvpc task's.
    let details = stopped["attachments"][0]["details"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(
        details.iter().any(|d| d["name"] == "privateIPv4Address"),
        "{stopped:#}"
    );
    assert!(app["networkInterfaces"][0]["privateIpv4Address"].is_string());

    // Listed as STOPPED, not RUNNING; resources are back; nothing is left.
    let running_list = ecs(&mut s.client, "ListTasks", json!({})).await.unwrap();
    assert_eq!(running_list["taskArns"], json!([]));
    let stopped_list = ecs(
        &mut s.client,
        "ListTasks",
        json!({"desiredStatus": "STOPPED"}),
    )
    .await
    .unwrap();
    assert_eq!(stopped_list["taskArns"], json!([arn]));
    assert_instance_idle(&mut s).await;
    s.node.stop().await;
}

/// The instance has all its resources back and no task, container or
/// address is left on the node.
async fn assert_instance_idle(s: &mut Setup) {
    let instances = wait_for_instances(&mut s.client, "default", 1, WAIT)
        .await
        .unwrap();
    let i = &instances[0];
    assert_eq!(i["remainingResources"], i["registeredResources"], "{i:#}");
    assert_eq!(i["runningTasksCount"], 0);
    assert_eq!(i["pendingTasksCount"], 0);
    assert_eq!(s.node.runtime.container_ids(), Vec::<String>::new());
    let left = ipam_allocations(&s.node);
    assert!(left.is_empty(), "addresses left allocated: {left:?}");
}

/// The task id → address map the node's IPAM has persisted
/// (`<data_dir>/network/ipam.json`, see `orca_net::ipam`). Every test that
/// calls it has run a task, so the file must exist: a missing or unreadable
/// file is a failure, not an empty map.
fn ipam_allocations(node: &FakeNode) -> serde_json::Map<String, Value> {
    let path = node
        .data_dir
        .path()
        .join("network")
        .join(orca_net::ipam::STATE_FILE);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    let state: Value = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("parsing {}: {e}: {text}", path.display()));
    state["allocations"]
        .as_object()
        .cloned()
        .unwrap_or_else(|| panic!("no allocations map in {}: {text}", path.display()))
}

/// The task id at the end of a task ARN (`.../task/<cluster>/<id>`), which
/// is the key IPAM records the task's address under.
fn task_id_of(arn: &str) -> &str {
    arn.rsplit('/').next().expect("an ARN has a task id")
}

#[tokio::test]
async fn tasks_get_distinct_addresses_and_reserve_resources_exactly() {
    let mut s = setup().await;
    register_td(
        &mut s.client,
        "web",
        vec![json!({"name": "web", "image": FAKE_IMAGE, "memory": 300, "cpu": 512})],
    )
    .await;
    let out = run(&mut s.client, json!({"taskDefinition": "web", "count": 3})).await;
    assert_eq!(out["tasks"].as_array().map(Vec::len), Some(3), "{out:#}");
    let mut ips = Vec::new();
    let mut held = serde_json::Map::new();
    for t in out["tasks"].as_array().unwrap() {
        let arn = t["taskArn"].as_str().unwrap();
        let r = wait_running(&mut s.client, "default", arn, WAIT)
            .await
            .unwrap();
        assert_eq!(r["lastStatus"], "RUNNING");
        let ip = r["containers"][0]["networkInterfaces"][0]["privateIpv4Address"]
            .as_str()
            .unwrap()
            .to_string();
        held.insert(task_id_of(arn).to_string(), json!(ip));
        ips.push(ip);
    }
    assert_eq!(
        ipam_allocations(&s.node),
        held,
        "IPAM holds each task's address"
    );
    ips.sort();
    ips.dedup();
    assert_eq!(ips.len(), 3, "distinct addresses: {ips:?}");
    let instances = wait_for_instances(&mut s.client, "default", 1, WAIT)
        .await
        .unwrap();
    let remaining = &instances[0]["remainingResources"];
    assert_eq!(remaining[0]["name"], "CPU");
    assert_eq!(remaining[0]["integerValue"], 2048 - 3 * 512);
    assert_eq!(remaining[1]["integerValue"], 1024 - 3 * 300);
    assert_eq!(instances[0]["runningTasksCount"], 3);

    // A fourth does not fit in memory: failures, no task.
    let out = run(&mut s.client, json!({"taskDefinition": "web"})).await;
    assert_eq!(out["tasks"], json!([]));
    assert_eq!(out["failures"][0]["reason"], "RESOURCE:MEMORY", "{out:#}");

    // Stop them all: UserInitiated with the reason; everything released.
    let listed = ecs(&mut s.client, "ListTasks", json!({"family": "web"}))
        .await
        .unwrap();
    let arns: Vec<String> = listed["taskArns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap().to_string())
        .collect();
    assert_eq!(arns.len(), 3);
    for arn in &arns {
        let stopped = ecs(
            &mut s.client,
            "StopTask",
            json!({"task": arn, "reason": "scale in"}),
        )
        .await
        .unwrap();
        assert_eq!(stopped["task"]["desiredStatus"], "STOPPED");
    }
    for arn in &arns {
        let t = wait_stopped(&mut s.client, "default", arn, WAIT)
            .await
            .unwrap();
        assert_eq!(t["stopCode"], "UserInitiated");
        assert_eq!(t["stoppedReason"], "scale in");
        assert_eq!(
            t["containers"][0]["exitCode"], 143,
            "SIGTERM ends a plain process: {t:#}"
        );
    }
    assert_instance_idle(&mut s).await;
    s.node.stop().await;
}

#[tokio::test]
async fn memory_limits_out_of_memory_and_stop_timeouts() {
    let mut s = setup().await;
    register_td(
        &mut s.client,
        "hog",
        vec![container("hog", "sleep 0.1; oom")],
    )
    .await;
    let arn = task_arn(&run(&mut s.client, json!({"taskDefinition": "hog"})).await);
    let t = wait_stopped(&mut s.client, "default", &arn, WAIT)
        .await
        .unwrap();
    let hog = container_named(&t, "hog");
    assert_eq!(hog["exitCode"], 137);
    assert!(
        hog["reason"]
            .as_str()
            .is_some_and(|r| r.starts_with("OutOfMemoryError:")),
        "{t:#}"
    );

    // A container ignoring SIGTERM is killed after its stopTimeout.
    let mut stubborn = container("stubborn", "ignore-sigterm");
    stubborn["stopTimeout"] = json!(2);
    register_td(&mut s.client, "stubborn", vec![stubborn]).await;
    let arn = task_arn(&run(&mut s.client, json!({"taskDefinition": "stubborn"})).await);
    wait_running(&mut s.client, "default", &arn, WAIT)
        .await
        .unwrap();
    let asked = std::time::Instant::now();
    ecs(&mut s.client, "StopTask", json!({"task": arn}))
        .await
        .unwrap();
    let t = wait_stopped(&mut s.client, "default", &arn, WAIT)
        .await
        .unwrap();
    assert!(
        asked.elapsed() >= Duration::from_secs(2),
        "killed before its stopTimeout"
    );
    assert_eq!(container_named(&t, "stubborn")["exitCode"], 137, "{t:#}");
    assert_eq!(t["stopCode"], "UserInitiated");
    assert_eq!(t["stoppedReason"], "Task stopped by user");
    s.node.stop().await;
}

#[tokio::test]
async fn essential_and_non_essential_containers_and_depends_on() {
    let mut s = setup().await;
    let mut sidecar = container("sidecar", "sleep 0.2; exit 1");
    sidecar["essential"] = json!(false);
    register_td(
        &mut s.client,
        "pair",
        vec![container("app", "sleep 1.5; exit 0"), sidecar],
    )
    .await;
    let arn = task_arn(&run(&mut s.client, json!({"taskDefinition": "pair"})).await);
    // The sidecar stops; the task keeps running.
    let t = wait_for(&mut s, &arn, |t| {
        container_named(t, "sidecar")["lastStatus"] == "STOPPED"
    })
    .await;
    assert_eq!(t["lastStatus"], "RUNNING", "{t:#}");
    assert_eq!(container_named(&t, "sidecar")["exitCode"], 1);
    assert_eq!(container_named(&t, "app")["lastStatus"], "RUNNING");
    // The essential one exits: the task stops.
    let t = wait_stopped(&mut s.client, "default", &arn, WAIT)
        .await
        .unwrap();
    assert_eq!(t["stopCode"], "EssentialContainerExited");
    assert_eq!(container_named(&t, "app")["exitCode"], 0);

    // SUCCESS: the init container runs to exit 0 before the app starts.
    let mut init = container("init", "sleep 0.5; exit 0");
    init["essential"] = json!(false);
    let mut app = container("app", "sleep 0.3; exit 0");
    app["dependsOn"] = json!([{"containerName": "init", "condition": "SUCCESS"}]);
    register_td(&mut s.client, "ordered", vec![app.clone(), init.clone()]).await;
    let arn = task_arn(&run(&mut s.client, json!({"taskDefinition": "ordered"})).await);
    let t = wait_stopped(&mut s.client, "default", &arn, WAIT)
        .await
        .unwrap();
    assert_eq!(container_named(&t, "init")["exitCode"], 0);
    assert_eq!(container_named(&t, "app")["exitCode"], 0);
    let starts = s.node.runtime.starts();
    let id = |name: &str| {
        container_named(&t, name)["runtimeId"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let at = |name: &str| {
        starts
            .iter()
            .find(|(i, _)| *i == id(name))
            .map(|(_, at)| *at)
            .expect("started")
    };
    assert!(
        at("app") >= at("init") + Duration::from_millis(450),
        "the app started before init had exited"
    );

    // A failing init: the app never starts and the task fails to start.
    init["command"] = json!(["sh", "-c", "exit 2"]);
    register_td(&mut s.client, "ordered", vec![app, init]).await;
    let arn = task_arn(&run(&mut s.client, json!({"taskDefinition": "ordered"})).await);
    let t = wait_stopped(&mut s.client, "default", &arn, WAIT)
        .await
        .unwrap();
    assert_eq!(t["stopCode"], "TaskFailedToStart", "{t:#}");
    assert!(container_named(&t, "app")["exitCode"].is_null());
    assert!(
        t["stoppedReason"]
            .as_str()
            .unwrap_or_default()
            .contains("init exited with code 2"),
        "{t:#}"
    );
    s.node.stop().await;
}

async fn wait_for(s: &mut Setup, arn: &str, done: impl Fn(&Value) -> bool) -> Value {
    orca_tests::agents::wait_for_task(&mut s.client, "default", arn, WAIT, done)
        .await
        .unwrap()
}

#[tokio::test]
async fn bad_images_bad_requests_and_failures() {
    let mut s = setup().await;
    register_td(
        &mut s.client,
        "bad",
        vec![json!({"name": "app", "image": "registry.test/missing:1", "memory": 32})],
    )
    .await;
    let arn = task_arn(&run(&mut s.client, json!({"taskDefinition": "bad"})).await);
    let t = wait_stopped(&mut s.client, "default", &arn, WAIT)
        .await
        .unwrap();
    assert_eq!(t["stopCode"], "TaskFailedToStart", "{t:#}");
    let reason = container_named(&t, "app")["reason"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(reason.starts_with("CannotPullContainerError:"), "{reason}");
    assert!(t["stoppedReason"]
        .as_str()
        .unwrap_or_default()
        .starts_with("CannotPullContainerError:"));

    let e = ecs(&mut s.client, "RunTask", json!({"taskDefinition": "nope"}))
        .await
        .unwrap_err();
    assert_eq!(e.exception, Exception::ClientException, "{e}");
    let e = ecs(
        &mut s.client,
        "RunTask",
        json!({"taskDefinition": "bad", "count": 11}),
    )
    .await
    .unwrap_err();
    assert_eq!(
        (e.exception, e.field.as_deref()),
        (Exception::InvalidParameterException, Some("count"))
    );
    let e = ecs(
        &mut s.client,
        "RunTask",
        json!({"taskDefinition": "bad", "overrides": {"containerOverrides": [{"name": "ghost"}]}}),
    )
    .await
    .unwrap_err();
    assert_eq!(
        e.field.as_deref(),
        Some("overrides.containerOverrides[0].name"),
        "{e}"
    );
    let e = ecs(
        &mut s.client,
        "RunTask",
        json!({"taskDefinition": "bad", "colour": "red"}),
    )
    .await
    .unwrap_err();
    assert_eq!(
        (e.exception, e.field.as_deref()),
        (Exception::ClientException, Some("colour"))
    );
    let e = ecs(
        &mut s.client,
        "RunTask",
        json!({"taskDefinition": "bad", "cluster": "nowhere"}),
    )
    .await
    .unwrap_err();
    assert_eq!(e.exception, Exception::ClusterNotFoundException);

    // Too large for any instance: failures with the resource.
    register_td(
        &mut s.client,
        "huge",
        vec![json!({"name": "app", "image": FAKE_IMAGE, "memory": 4096})],
    )
    .await;
    let out = run(&mut s.client, json!({"taskDefinition": "huge"})).await;
    assert_eq!(out["tasks"], json!([]));
    assert_eq!(out["failures"][0]["reason"], "RESOURCE:MEMORY", "{out:#}");
    // Overrides count: a small memory override fits.
    let out = run(&mut s.client, json!({"taskDefinition": "huge", "overrides": {"containerOverrides": [{"name": "app", "memory": 64, "command": ["sh", "-c", "exit 5"], "environment": [{"name": "A", "value": "1"}]}]}})).await;
    let arn = task_arn(&out);
    assert_eq!(out["tasks"][0]["memory"], "64");
    let t = wait_stopped(&mut s.client, "default", &arn, WAIT)
        .await
        .unwrap();
    assert_eq!(container_named(&t, "app")["exitCode"], 5);
    let spec = s
        .node
        .runtime
        .spec(container_named(&t, "app")["runtimeId"].as_str().unwrap());
    // The container was removed; what it was created with is not kept.
    assert!(spec.is_none());

    // DescribeTasks: MISSING failures.
    let d = ecs(
        &mut s.client,
        "DescribeTasks",
        json!({"tasks": [arn, "0123456789abcdef0123456789abcdef"]}),
    )
    .await
    .unwrap();
    assert_eq!(d["tasks"].as_array().map(Vec::len), Some(1));
    assert_eq!(d["failures"][0]["reason"], "MISSING");
    let e = ecs(
        &mut s.client,
        "StopTask",
        json!({"task": "0123456789abcdef0123456789abcdef"}),
    )
    .await
    .unwrap_err();
    assert_eq!(e.exception, Exception::InvalidParameterException);
    s.node.stop().await;
}

#[tokio::test]
async fn client_tokens_make_run_task_idempotent() {
    let mut s = setup().await;
    register_td(&mut s.client, "idem", vec![container("app", "sleep 30")]).await;
    let input = json!({"taskDefinition": "idem", "count": 2, "clientToken": "abc"});
    let first = run(&mut s.client, input.clone()).await;
    let again = run(&mut s.client, input).await;
    let arns = |o: &Value| {
        o["tasks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["taskArn"].clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(arns(&first).len(), 2);
    assert_eq!(arns(&first), arns(&again), "a retry returns the same tasks");
    let e = ecs(
        &mut s.client,
        "RunTask",
        json!({"taskDefinition": "idem", "count": 1, "clientToken": "abc"}),
    )
    .await
    .unwrap_err();
    assert_eq!(e.field.as_deref(), Some("clientToken"));
    let listed = ecs(&mut s.client, "ListTasks", json!({"startedBy": "nobody"}))
        .await
        .unwrap();
    assert_eq!(listed["taskArns"], json!([]));
    let listed = ecs(&mut s.client, "ListTasks", json!({"family": "idem"}))
        .await
        .unwrap();
    assert_eq!(listed["taskArns"].as_array().map(Vec::len), Some(2));
    s.node.stop().await;
}

#[tokio::test]
async fn an_agent_that_goes_away_is_shown_disconnected() {
    let mut s = setup().await;
    let instances = wait_for_instances(&mut s.client, "default", 1, WAIT)
        .await
        .unwrap();
    let arn = instances[0]["containerInstanceArn"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(instances[0]["agentConnected"], true);
    let attrs = instances[0]["attributes"].as_array().unwrap();
    assert!(attrs
        .iter()
        .any(|a| a["name"] == "orca.os-type" && a["value"] == "linux"));
    s.node.stop().await;
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let d = ecs(
            &mut s.client,
            "DescribeContainerInstances",
            json!({"containerInstances": [arn]}),
        )
        .await
        .unwrap();
        if d["containerInstances"][0]["agentConnected"] == false {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "still connected: {d:#}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // No task is placed on an instance whose agent is gone.
    register_td(&mut s.client, "late", vec![container("app", "exit 0")]).await;
    let out = run(&mut s.client, json!({"taskDefinition": "late"})).await;
    assert_eq!(out["failures"][0]["reason"], "AGENT", "{out:#}");
    drop(s.controller);
}

#[tokio::test]
async fn an_agent_registers_again_when_the_controllers_forget_it() {
    let addr = orca_tests::controller::free_addr().expect("addr");
    let first = InProcessController::start_with(|c| c.listen = addr)
        .await
        .expect("controller");
    let node = FakeNode::start(&addr.to_string(), |_| {})
        .await
        .expect("agent");
    let mut client = first.client().await.expect("client");
    let before = wait_for_instances(&mut client, "default", 1, WAIT)
        .await
        .unwrap();
    let old_arn = before[0]["containerInstanceArn"].clone();
    // The control plane is rebuilt from nothing at the same address.
    first.running.stop().await.expect("stop");
    let second = InProcessController::start_with(|c| c.listen = addr)
        .await
        .expect("controller again");
    let mut client = second.client().await.expect("client");
    let after = wait_for_instances(&mut client, "default", 1, WAIT)
        .await
        .unwrap();
    // The agent chose its instance id and saved it before it first
    // registered: the rebuilt control plane knows it by the same id.
    assert_eq!(
        after[0]["containerInstanceArn"], old_arn,
        "registered again as the same instance"
    );
    let subnet = |i: &Value| {
        i["attributes"]
            .as_array()
            .and_then(|a| a.iter().find(|x| x["name"] == "orca.task-subnet"))
            .map(|x| x["value"].clone())
    };
    assert_eq!(
        subnet(&after[0]),
        subnet(&before[0]),
        "the node keeps its task subnet"
    );
    // And it runs work for the new control plane.
    register_td(&mut client, "again", vec![container("app", "exit 7")]).await;
    let arn = task_arn(&run(&mut client, json!({"taskDefinition": "again"})).await);
    let t = wait_stopped(&mut client, "default", &arn, WAIT)
        .await
        .unwrap();
    assert_eq!(container_named(&t, "app")["exitCode"], 7, "{t:#}");
    node.stop().await;
}
