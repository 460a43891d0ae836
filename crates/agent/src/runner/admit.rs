//! Whether the agent takes on an assignment at all: its container names
//! must be fit for paths (`orca_core::names`) and it may ask for
//! privileges only when its cluster allows them. The API refuses both
//! already; this is the agent's own check against a faulty leader, a
//! setting turned off under a running service, or an older leader. A
//! refused task fails to start with the reason, rather than running
//! without what it asked for.

use std::collections::BTreeMap;

use orca_core::agent_protocol::TaskAssignment;
use orca_core::names::{check_container_name, check_task_id};

/// The reason prefix ECS uses for a container that could not be made.
const CANNOT_CREATE: &str = "CannotCreateContainerError";

/// The assignments the agent takes on, by task id. A task id names
/// directories and files of the agent's: one unfit for a path is never
/// taken on, only logged (no path, not even its final report's, can be
/// made of it to fail it with; the controller never makes such ids).
pub fn by_task_id(list: Vec<TaskAssignment>) -> BTreeMap<String, TaskAssignment> {
    list.into_iter()
        .filter(|a| match check_task_id(&a.task_id) {
            Ok(()) => true,
            Err(e) => {
                tracing::error!(task = %a.task_arn, "assignment refused: {e}");
                false
            }
        })
        .map(|a| (a.task_id.clone(), a))
        .collect()
}

/// Why the agent refuses to start `a`, if it does.
pub fn refusal(a: &TaskAssignment) -> Option<String> {
    let defs = &a.task_definition.spec.container_definitions;
    for c in defs {
        if let Err(e) = check_container_name(&c.name) {
            return Some(format!("{CANNOT_CREATE}: {e}"));
        }
    }
    if a.privileges_allowed {
        return None;
    }
    for c in defs {
        let adds = c
            .linux_parameters
            .as_ref()
            .and_then(|l| l.capabilities.as_ref())
            .and_then(|caps| caps.add.as_ref())
            .is_some_and(|add| !add.is_empty());
        if c.privileged == Some(true) || adds {
            return Some(format!(
                "{CANNOT_CREATE}: container {} asks for privileges (privileged or capabilities added) that its cluster does not allow ({}=enabled allows them)",
                c.name,
                orca_core::cluster::PRIVILEGED_CONTAINERS
            ));
        }
    }
    None
}
