//! Whether the agent takes on an assignment at all: its container names
//! must be fit for paths (`orca_core::names`) and it may ask for
//! privileges only when its cluster allows them. The API refuses both
//! already; this is the agent's own check against a faulty leader, a
//! setting turned off under a running service, or an older leader. A
//! refused task fails to start with the reason, rather than running
//! without what it asked for.

use orca_core::agent_protocol::TaskAssignment;
use orca_core::names::check_container_name;

/// The reason prefix ECS uses for a container that could not be made.
const CANNOT_CREATE: &str = "CannotCreateContainerError";

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
