//! Host ports: which ports of its instance a task holds, as one type
//! ([`HostPortBinding`]) shared by the leader's placements, the stored task,
//! the agent's assignments and describe-tasks' `networkBindings`.
//!
//! What a task definition asks for ([`host_port_needs`]) follows ECS's
//! network modes: under `bridge` each mapping holds `hostPort` on the node,
//! a dynamic one (from [`EPHEMERAL_PORTS`]) when hostPort is 0 or absent;
//! under `host` the container's own port is the node's; `awsvpc` and `none`
//! hold no host port (containerPort is reachable on the task's address).

use serde::{Deserialize, Serialize};

use crate::task_definition::{
    parse_port_range, NetworkMode, PortMapping, TaskDefinition, TransportProtocol,
};

/// ECS's ephemeral host-port range for dynamic mappings (the Linux
/// default `ip_local_port_range` too).
pub const EPHEMERAL_PORTS: std::ops::RangeInclusive<u16> = 32768..=60999;

/// A host port one container of a task holds on its instance.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HostPortBinding {
    pub container_name: String,
    pub container_port: u16,
    pub host_port: u16,
    pub protocol: TransportProtocol,
}

/// One host port a task definition asks for.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct PortNeed {
    pub container_name: String,
    pub container_port: u16,
    pub protocol: TransportProtocol,
    /// The host port asked for; None: one of [`EPHEMERAL_PORTS`] chosen
    /// at placement.
    pub host_port: Option<u16>,
}

/// ECS's `networkBindings[]` entry of a container in describe-tasks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NetworkBinding {
    #[serde(rename = "bindIP")]
    pub bind_ip: String,
    pub container_port: u16,
    pub host_port: u16,
    pub protocol: TransportProtocol,
}

impl From<&HostPortBinding> for NetworkBinding {
    fn from(b: &HostPortBinding) -> NetworkBinding {
        NetworkBinding {
            bind_ip: "0.0.0.0".to_string(),
            container_port: b.container_port,
            host_port: b.host_port,
            protocol: b.protocol,
        }
    }
}

/// The host ports a task of `definition` holds on its instance, in
/// container and mapping order: none under awsvpc and none, every mapping
/// under bridge (a containerPortRange: one dynamic port per container
/// port) and host (hostPort = containerPort). Validation has refused ports
/// out of range; anything that still does not fit in a u16 is skipped.
pub fn host_port_needs(definition: &TaskDefinition) -> Vec<PortNeed> {
    let mode = definition.spec.effective_network_mode();
    if !matches!(mode, NetworkMode::Bridge | NetworkMode::Host) {
        return Vec::new();
    }
    let mut needs = Vec::new();
    for c in &definition.spec.container_definitions {
        for m in c.port_mappings.iter().flatten() {
            mapping_needs(&c.name, m, mode, &mut needs);
        }
    }
    needs
}

fn mapping_needs(container: &str, m: &PortMapping, mode: NetworkMode, out: &mut Vec<PortNeed>) {
    let protocol = m.protocol.unwrap_or(TransportProtocol::Tcp);
    let ports: Vec<u16> = match (m.container_port, m.container_port_range.as_deref()) {
        (Some(port), _) => u16::try_from(port).into_iter().collect(),
        (None, Some(range)) => match parse_port_range(range) {
            Some((start, end)) => (start..=end).collect(),
            None => Vec::new(),
        },
        (None, None) => Vec::new(),
    };
    let single = m.container_port.is_some();
    for container_port in ports {
        let host_port = match mode {
            NetworkMode::Host => Some(container_port),
            _ if single => m
                .host_port
                .and_then(|h| u16::try_from(h).ok())
                .filter(|&h| h != 0),
            _ => None,
        };
        out.push(PortNeed {
            container_name: container.to_string(),
            container_port,
            protocol,
            host_port,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::task_definition::{parse_register_input, TaskDefinition, Timestamp};

    fn definition(mode: &str, mappings: &str) -> TaskDefinition {
        let input = parse_register_input(&format!(
            r#"{{"family":"f","networkMode":"{mode}","containerDefinitions":[{{"name":"app","image":"i","memory":32,"portMappings":{mappings}}}]}}"#
        ))
        .unwrap_or_else(|e| panic!("{e}"));
        TaskDefinition::new(input.spec, "arn".into(), 1, Timestamp(0), "t".into())
    }

    fn show(needs: &[PortNeed]) -> String {
        needs
            .iter()
            .map(|n| {
                let host = n.host_port.map_or("dyn".to_string(), |h| h.to_string());
                format!(
                    "{}:{}->{}/{}",
                    n.container_name, n.container_port, host, n.protocol
                )
            })
            .collect::<Vec<_>>()
            .join(" ")
    }

    #[test]
    fn bridge_static_and_dynamic() {
        let d = definition(
            "bridge",
            r#"[{"containerPort":80,"hostPort":8080},{"containerPort":81},{"containerPort":53,"hostPort":0,"protocol":"udp"}]"#,
        );
        assert_eq!(
            show(&host_port_needs(&d)),
            "app:80->8080/tcp app:81->dyn/tcp app:53->dyn/udp"
        );
    }

    #[test]
    fn bridge_range_is_dynamic_per_port() {
        let d = definition("bridge", r#"[{"containerPortRange":"7000-7002"}]"#);
        assert_eq!(
            show(&host_port_needs(&d)),
            "app:7000->dyn/tcp app:7001->dyn/tcp app:7002->dyn/tcp"
        );
    }

    #[test]
    fn host_mode_holds_the_container_port() {
        let d = definition("host", r#"[{"containerPort":9000}]"#);
        assert_eq!(show(&host_port_needs(&d)), "app:9000->9000/tcp");
    }

    #[test]
    fn awsvpc_holds_nothing() {
        let d = definition("awsvpc", r#"[{"containerPort":9000}]"#);
        assert!(host_port_needs(&d).is_empty());
    }

    #[test]
    fn network_binding_json_is_ecs_shape() {
        let b = HostPortBinding {
            container_name: "app".into(),
            container_port: 80,
            host_port: 32768,
            protocol: TransportProtocol::Tcp,
        };
        let json = serde_json::to_string(&NetworkBinding::from(&b)).unwrap_or_default();
        assert_eq!(
            json,
            r#"{"bindIP":"0.0.0.0","containerPort":80,"hostPort":32768,"protocol":"tcp"}"#
        );
    }
}
