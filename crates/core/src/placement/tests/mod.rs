//! Tests of placement: expressions checked by what they match in a small
//! fleet, parse errors by their exact position, ECS's comparison rules,
//! the constraint and strategy inputs, and that evaluation does not
//! allocate.

mod expr_invalid;
mod expr_valid;
mod inputs;
mod no_alloc;
mod prop;
mod semantics;

use std::cell::Cell;
use std::collections::BTreeMap;

use super::expr::{self, InstanceFacts};

/// One container instance as the scheduler would describe it.
#[derive(Debug, Clone, Default)]
pub(super) struct Instance {
    /// The one-letter name tables use.
    pub name: &'static str,
    pub id: String,
    pub connected: bool,
    pub version: String,
    pub attributes: BTreeMap<String, String>,
    pub registered_ms: i64,
    pub running: u32,
    pub groups: Vec<String>,
    /// How often `task_groups` was called, to show that `==` and `in` on
    /// task:group go through `has_task_group` (which a caller can index).
    pub task_groups_calls: Cell<u32>,
}

impl InstanceFacts for Instance {
    fn instance_id(&self) -> &str {
        &self.id
    }
    fn agent_connected(&self) -> bool {
        self.connected
    }
    fn agent_version(&self) -> &str {
        &self.version
    }
    fn attribute(&self, name: &str) -> Option<&str> {
        self.attributes.get(name).map(String::as_str)
    }
    fn registered_at_ms(&self) -> i64 {
        self.registered_ms
    }
    fn running_tasks_count(&self) -> u32 {
        self.running
    }
    fn has_task_group(&self, group: &str) -> bool {
        self.groups.iter().any(|g| g == group)
    }
    fn task_groups(&self) -> Vec<&str> {
        self.task_groups_calls.set(self.task_groups_calls.get() + 1);
        self.groups.iter().map(String::as_str).collect()
    }
}

pub(super) fn ms(rfc3339: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(rfc3339)
        .map(|t| t.timestamp_millis())
        .unwrap_or_else(|e| panic!("bad fixture time {rfc3339}: {e}"))
}

fn attrs(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Three instances that differ in every subject.
pub(super) fn fleet() -> Vec<Instance> {
    vec![
        Instance {
            name: "a",
            id: "i-aaa".into(),
            connected: true,
            version: "1.70.0".into(),
            attributes: attrs(&[
                ("ecs.instance-type", "t3.micro"),
                ("ecs.availability-zone", "us-east-1a"),
                ("ecs.os-type", "linux"),
                ("size", "10"),
                ("gpu", ""),
                ("stack", "prod"),
            ]),
            registered_ms: ms("2017-06-15T00:00:00Z"),
            running: 3,
            groups: vec!["service:web".into(), "batch".into()],
            ..Instance::default()
        },
        Instance {
            name: "b",
            id: "i-bbb".into(),
            connected: false,
            version: "1.9.9".into(),
            attributes: attrs(&[
                ("ecs.instance-type", "m5.large"),
                ("ecs.availability-zone", "us-east-1b"),
                ("ecs.os-type", "windows"),
                ("size", "9.5"),
                ("stack", "Prod"),
                ("com.example/tier:level", "gold"),
            ]),
            registered_ms: ms("2018-01-01T00:00:00Z"),
            running: 0,
            groups: vec![],
            ..Instance::default()
        },
        Instance {
            name: "c",
            id: "i-ccc".into(),
            connected: true,
            version: "1.10.0".into(),
            attributes: attrs(&[
                ("ecs.instance-type", "t3.large"),
                ("ecs.availability-zone", "us-east-1c"),
                ("ecs.os-type", "linux"),
                ("size", "big"),
                ("team", "red team"),
            ]),
            registered_ms: ms("2017-07-01T12:00:00Z"),
            running: 10,
            groups: vec!["service:api".into()],
            ..Instance::default()
        },
    ]
}

/// The names of the fleet's instances that `src` matches, as "ac".
pub(super) fn matching(src: &str) -> Result<String, expr::ExprError> {
    let e = expr::parse(src)?;
    Ok(fleet()
        .iter()
        .filter(|i| e.matches(*i))
        .map(|i| i.name)
        .collect())
}

/// An instance with only the given agent version, attributes and groups.
pub(super) fn instance(version: &str, attributes: &[(&str, &str)], groups: &[&str]) -> Instance {
    Instance {
        name: "x",
        id: "i-x".into(),
        connected: true,
        version: version.into(),
        attributes: attrs(attributes),
        groups: groups.iter().map(|g| g.to_string()).collect(),
        ..Instance::default()
    }
}
