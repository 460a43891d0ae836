//! `table` output for tasks, container instances and their attributes: one
//! row each, the columns an operator scans for, instead of a box per nested
//! object.
//!
//! Tasks (RunTask, StopTask, DescribeTasks): the task ID (the ARN's last
//! part), its task definition as `family:revision`, last and desired status,
//! stop code and containers as `name STATUS (exit N)`. Container instances
//! (DescribeContainerInstances, UpdateContainerInstancesState,
//! DeregisterContainerInstance): the instance ID, hostname, status, whether
//! the agent is connected, running and pending task counts, and CPU and
//! memory as `remaining/registered`. Attributes (ListAttributes,
//! PutAttributes, DeleteAttributes): name, value and the instance ID they
//! are on. A page token follows in a box of its own, failures in their own
//! table.

use comfy_table::{presets, Table};
use serde_json::Value;

/// The table for `operation`'s output, or `None` when it has no table of its own.
pub fn render(operation: &str, response: &Value) -> Option<String> {
    let rows = match operation {
        "RunTask" | "DescribeTasks" => tasks_table(list(response, "tasks")),
        "StopTask" => tasks_table(response.get("task").into_iter().cloned().collect()),
        "DescribeContainerInstances" | "UpdateContainerInstancesState" => {
            instances_table(list(response, "containerInstances"))
        }
        "DeregisterContainerInstance" => instances_table(
            response
                .get("containerInstance")
                .into_iter()
                .cloned()
                .collect(),
        ),
        "ListAttributes" | "PutAttributes" | "DeleteAttributes" => {
            attributes_table(list(response, "attributes"))
        }
        _ => return None,
    };
    let mut out = format!("{operation}\n{rows}\n");
    for key in ["NextToken", "nextToken"] {
        if let Some(token) = response.get(key).and_then(Value::as_str) {
            let mut t = new_table();
            t.add_row([key, token]);
            out.push_str(&format!("{t}\n"));
        }
    }
    let failures = list(response, "failures");
    if !failures.is_empty() {
        let mut t = new_table();
        t.set_header(["arn", "reason", "detail"]);
        for f in &failures {
            t.add_row([text(f, "arn"), text(f, "reason"), text(f, "detail")]);
        }
        out.push_str(&format!("failures\n{t}\n"));
    }
    Some(out)
}

fn tasks_table(tasks: Vec<Value>) -> Table {
    let mut t = new_table();
    t.set_header([
        "task",
        "taskDefinition",
        "lastStatus",
        "desiredStatus",
        "stopCode",
        "containers",
    ]);
    for task in &tasks {
        let containers: Vec<String> = list(task, "containers").iter().map(container).collect();
        t.add_row([
            last_part(text(task, "taskArn"), '/').to_string(),
            last_part(text(task, "taskDefinitionArn"), '/').to_string(),
            text(task, "lastStatus").to_string(),
            text(task, "desiredStatus").to_string(),
            text(task, "stopCode").to_string(),
            containers.join(", "),
        ]);
    }
    t
}

/// `app STOPPED (exit 3)`.
fn container(c: &Value) -> String {
    let mut s = format!("{} {}", text(c, "name"), text(c, "lastStatus"));
    if let Some(code) = c.get("exitCode").and_then(Value::as_i64) {
        s.push_str(&format!(" (exit {code})"));
    }
    s
}

fn instances_table(instances: Vec<Value>) -> Table {
    let mut t = new_table();
    t.set_header([
        "containerInstance",
        "hostname",
        "status",
        "agentConnected",
        "running",
        "pending",
        "cpu (remaining/registered)",
        "memory (remaining/registered)",
    ]);
    for i in &instances {
        let resources = |name: &str| {
            format!(
                "{}/{}",
                resource(i, "remainingResources", name),
                resource(i, "registeredResources", name)
            )
        };
        t.add_row([
            last_part(text(i, "containerInstanceArn"), '/').to_string(),
            text(i, "ec2InstanceId").to_string(),
            text(i, "status").to_string(),
            i.get("agentConnected")
                .and_then(Value::as_bool)
                .unwrap_or(false)
                .to_string(),
            number(i, "runningTasksCount"),
            number(i, "pendingTasksCount"),
            resources("CPU"),
            resources("MEMORY"),
        ]);
    }
    t
}

fn attributes_table(attributes: Vec<Value>) -> Table {
    let mut t = new_table();
    t.set_header(["name", "value", "targetId"]);
    for a in &attributes {
        t.add_row([
            text(a, "name"),
            text(a, "value"),
            last_part(text(a, "targetId"), '/'),
        ]);
    }
    t
}

/// The integer value of resource `name` in the list under `key`.
fn resource(instance: &Value, key: &str, name: &str) -> String {
    list(instance, key)
        .iter()
        .find(|r| text(r, "name") == name)
        .and_then(|r| r.get("integerValue"))
        .map_or_else(|| "-".to_string(), Value::to_string)
}

fn number(v: &Value, key: &str) -> String {
    v.get(key).map_or_else(String::new, Value::to_string)
}

fn last_part(arn: &str, separator: char) -> &str {
    arn.rsplit(separator).next().unwrap_or(arn)
}

fn list(v: &Value, key: &str) -> Vec<Value> {
    v.get(key)
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
}

fn text<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or_default()
}

fn new_table() -> Table {
    let mut t = Table::new();
    t.load_preset(presets::ASCII_FULL_CONDENSED);
    t
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn stopped_task() -> Value {
        json!({
            "taskArn": "arn:orca:ecs:local:000000000000:task/default/0f3a",
            "clusterArn": "arn:orca:ecs:local:000000000000:cluster/default",
            "taskDefinitionArn": "arn:orca:ecs:local:000000000000:task-definition/exit3:1",
            "lastStatus": "STOPPED",
            "desiredStatus": "STOPPED",
            "stopCode": "EssentialContainerExited",
            "stoppedReason": "Essential container in task exited",
            "containers": [
                {"name": "app", "lastStatus": "STOPPED", "exitCode": 3, "essential": true},
                {"name": "side", "lastStatus": "RUNNING", "essential": false}
            ]
        })
    }

    #[test]
    fn a_task_is_one_row() {
        let reply = json!({
            "tasks": [stopped_task()],
            "failures": [{"arn": "arn:orca:ecs:local:000000000000:task/default/gone", "reason": "MISSING"}]
        });
        let out = render("DescribeTasks", &reply).unwrap_or_default();
        let expected = "\
DescribeTasks
+------+----------------+------------+---------------+--------------------------+------------------------------------+
| task | taskDefinition | lastStatus | desiredStatus | stopCode                 | containers                         |
+====================================================================================================================+
| 0f3a | exit3:1        | STOPPED    | STOPPED       | EssentialContainerExited | app STOPPED (exit 3), side RUNNING |
+------+----------------+------------+---------------+--------------------------+------------------------------------+
failures
+---------------------------------------------------+---------+--------+
| arn                                               | reason  | detail |
+======================================================================+
| arn:orca:ecs:local:000000000000:task/default/gone | MISSING |        |
+---------------------------------------------------+---------+--------+
";
        assert_eq!(out, expected, "\n{out}");
        let stopped = render("StopTask", &json!({"task": stopped_task()})).unwrap_or_default();
        assert!(stopped.starts_with("StopTask\n"), "{stopped}");
        assert!(stopped.contains("| 0f3a | exit3:1 "), "{stopped}");
        assert!(render("ListTasks", &json!({"taskArns": []})).is_none());
    }

    #[test]
    fn an_instance_is_one_row() {
        let reply = json!({"containerInstances": [{
            "containerInstanceArn": "arn:orca:ecs:local:000000000000:container-instance/default/9c1e",
            "ec2InstanceId": "node-1",
            "status": "ACTIVE",
            "agentConnected": true,
            "runningTasksCount": 2,
            "pendingTasksCount": 0,
            "remainingResources": [
                {"name": "CPU", "type": "INTEGER", "integerValue": 1024},
                {"name": "MEMORY", "type": "INTEGER", "integerValue": 896}
            ],
            "registeredResources": [
                {"name": "CPU", "type": "INTEGER", "integerValue": 2048},
                {"name": "MEMORY", "type": "INTEGER", "integerValue": 1024}
            ]
        }], "failures": []});
        let out = render("DescribeContainerInstances", &reply).unwrap_or_default();
        assert!(
            out.contains(
                "| 9c1e              | node-1   | ACTIVE | true           | 2       | 0       | 1024/2048                  | 896/1024                      |"
            ),
            "\n{out}"
        );
        assert!(!out.contains("failures"), "{out}");
        let drained = json!({"containerInstances": [{
            "containerInstanceArn": "arn:orca:ecs:local:000000000000:container-instance/default/9c1e",
            "status": "DRAINING",
            "agentConnected": true,
            "runningTasksCount": 1,
            "pendingTasksCount": 0
        }], "failures": [{"arn": "gone", "reason": "MISSING"}]});
        let out = render("UpdateContainerInstancesState", &drained).unwrap_or_default();
        assert!(
            out.starts_with("UpdateContainerInstancesState\n")
                && out.contains("| 9c1e ")
                && out.contains("| DRAINING ")
                && out.contains("| gone | MISSING |"),
            "\n{out}"
        );
        let gone = json!({"containerInstance": {
            "containerInstanceArn": "arn:orca:ecs:local:000000000000:container-instance/default/9c1e",
            "status": "INACTIVE",
            "agentConnected": false
        }});
        let out = render("DeregisterContainerInstance", &gone).unwrap_or_default();
        assert!(
            out.contains("| 9c1e              |          | INACTIVE | false "),
            "\n{out}"
        );
    }

    #[test]
    fn an_attribute_is_one_row_and_a_token_follows() {
        let reply = json!({
            "attributes": [
                {"name": "stack", "value": "prod", "targetType": "container-instance",
                 "targetId": "arn:orca:ecs:local:000000000000:container-instance/default/9c1e"},
                {"name": "ecs.os-type", "value": "linux", "targetId": "0f3a"},
                {"name": "flag", "targetId": "0f3a"}
            ],
            "NextToken": "eyJ9"
        });
        let out = render("ListAttributes", &reply).unwrap_or_default();
        let expected = "\
ListAttributes
+-------------+-------+----------+
| name        | value | targetId |
+================================+
| stack       | prod  | 9c1e     |
| ecs.os-type | linux | 0f3a     |
| flag        |       | 0f3a     |
+-------------+-------+----------+
+-----------+------+
| NextToken | eyJ9 |
+-----------+------+
";
        assert_eq!(out, expected, "\n{out}");
        let put = render(
            "PutAttributes",
            &json!({"attributes": [{"name": "a", "value": "1", "targetId": "i"}]}),
        )
        .unwrap_or_default();
        assert!(put.contains("| a    | 1     | i        |"), "\n{put}");
    }
}
