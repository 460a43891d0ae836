//! Host ports of placed tasks, pure: the plan applier calls [`assign`] for
//! each placement after the scheduler chose the instance. Static ports
//! (bridge and host mode mappings with a hostPort) are taken as given: the
//! scheduler checked them (RESOURCE:PORTS) and `apply` checks them again.
//! Dynamic ones (bridge mode, hostPort 0 or absent) come from ECS's
//! ephemeral range [`EPHEMERAL_PORTS`], round-robin from the instance's
//! cursor, so a port just freed is not handed out again at once (a stale
//! conntrack entry of the last task would catch the new one's traffic).

use orca_core::task::{HostPortBinding, PortNeed, EPHEMERAL_PORTS};

use crate::state::host_ports::PortKey;

/// The ports of one task on one instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortChoice {
    /// One per need, in the needs' order.
    pub bindings: Vec<HostPortBinding>,
    /// The instance's cursor after this task (None: no dynamic port taken).
    pub cursor: Option<u16>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PortError {
    #[error(
        "no free host port left in {}-{} for container {container}",
        EPHEMERAL_PORTS.start(),
        EPHEMERAL_PORTS.end()
    )]
    Exhausted { container: String },
}

/// Chooses the host ports of one task. `in_use` tells whether a port is
/// reserved or held on the instance (including by earlier placements of
/// the same plan); `cursor` is where the dynamic search starts (outside
/// the range, e.g. 0: at its start). Deterministic: the same inputs give
/// the same ports.
pub fn assign(
    needs: &[PortNeed],
    in_use: impl Fn(PortKey) -> bool,
    cursor: u16,
) -> Result<PortChoice, PortError> {
    let (first, last) = (*EPHEMERAL_PORTS.start(), *EPHEMERAL_PORTS.end());
    let mut next = if EPHEMERAL_PORTS.contains(&cursor) {
        cursor
    } else {
        first
    };
    let mut moved = false;
    let statics: Vec<PortKey> = needs
        .iter()
        .filter_map(|n| n.host_port.map(|h| (n.protocol, h)))
        .collect();
    let mut bindings: Vec<HostPortBinding> = Vec::with_capacity(needs.len());
    for need in needs {
        let host_port = match need.host_port {
            Some(port) => port,
            None => {
                let size = u32::from(last - first) + 1;
                let mut found = None;
                let mut candidate = next;
                for _ in 0..size {
                    let key = (need.protocol, candidate);
                    let mine = statics.contains(&key)
                        || bindings.iter().any(|b| (b.protocol, b.host_port) == key);
                    if !mine && !in_use(key) {
                        found = Some(candidate);
                        break;
                    }
                    candidate = if candidate >= last {
                        first
                    } else {
                        candidate + 1
                    };
                }
                let Some(port) = found else {
                    return Err(PortError::Exhausted {
                        container: need.container_name.clone(),
                    });
                };
                next = if port >= last { first } else { port + 1 };
                moved = true;
                port
            }
        };
        bindings.push(HostPortBinding {
            container_name: need.container_name.clone(),
            container_port: need.container_port,
            host_port,
            protocol: need.protocol,
        });
    }
    Ok(PortChoice {
        bindings,
        cursor: moved.then_some(next),
    })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use orca_core::task_definition::TransportProtocol::{Tcp, Udp};

    use super::*;

    fn need(container_port: u16, host_port: Option<u16>) -> PortNeed {
        PortNeed {
            container_name: "app".to_string(),
            container_port,
            protocol: Tcp,
            host_port,
        }
    }

    fn hosts(choice: &PortChoice) -> Vec<u16> {
        choice.bindings.iter().map(|b| b.host_port).collect()
    }

    #[test]
    fn static_ports_are_taken_as_given_and_dynamic_start_at_the_range() {
        let choice = assign(&[need(80, Some(8080)), need(81, None)], |_| false, 0)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(hosts(&choice), vec![8080, 32768]);
        assert_eq!(choice.cursor, Some(32769));
        assert_eq!(choice.bindings[1].container_port, 81);
    }

    #[test]
    fn no_dynamic_port_leaves_the_cursor() {
        let choice =
            assign(&[need(80, Some(8080))], |_| true, 40000).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(hosts(&choice), vec![8080]);
        assert_eq!(choice.cursor, None);
    }

    #[test]
    fn the_cursor_is_round_robin() {
        // A port freed below the cursor is not reused before the range wraps.
        let choice = assign(&[need(80, None), need(81, None)], |_| false, 40000)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(hosts(&choice), vec![40000, 40001]);
        assert_eq!(choice.cursor, Some(40002));
    }

    #[test]
    fn reserved_and_taken_ports_are_skipped() {
        let busy: BTreeSet<PortKey> = [(Tcp, 32768), (Tcp, 32769), (Tcp, 32771)].into();
        let choice = assign(&[need(80, None), need(81, None)], |k| busy.contains(&k), 0)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(hosts(&choice), vec![32770, 32772]);
    }

    #[test]
    fn protocols_are_apart() {
        let busy: BTreeSet<PortKey> = [(Tcp, 32768)].into();
        let udp = PortNeed {
            protocol: Udp,
            ..need(53, None)
        };
        let choice = assign(&[udp], |k| busy.contains(&k), 0).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(hosts(&choice), vec![32768]);
    }

    #[test]
    fn the_search_wraps_at_the_end_of_the_range() {
        let busy: BTreeSet<PortKey> = [(Tcp, 60999)].into();
        let choice = assign(&[need(80, None)], |k| busy.contains(&k), 60999)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(hosts(&choice), vec![32768]);
        assert_eq!(choice.cursor, Some(32769));
        let choice = assign(&[need(80, None)], |_| false, 60999).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(hosts(&choice), vec![60999]);
        assert_eq!(choice.cursor, Some(32768));
    }

    #[test]
    fn a_static_port_of_the_task_in_the_range_is_not_given_twice() {
        let choice = assign(&[need(81, None), need(80, Some(32768))], |_| false, 0)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(hosts(&choice), vec![32769, 32768]);
    }

    #[test]
    fn a_full_range_is_an_error() {
        let err = assign(&[need(80, None)], |_| true, 0).err();
        assert_eq!(
            err,
            Some(PortError::Exhausted {
                container: "app".to_string()
            })
        );
    }
}
