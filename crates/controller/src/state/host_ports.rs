//! The host ports an instance's tasks hold, per protocol: derived from the
//! tasks placed there (`TaskRecord::host_ports`), kept current by
//! `reserve`/`release` and rebuilt from the tasks on restore, like the
//! instance's group counts.

use std::collections::BTreeMap;

use orca_core::task::HostPortBinding;
use orca_core::task_definition::TransportProtocol;
use serde::{Deserialize, Serialize};

/// A host port and its protocol: what two tasks of one instance may not share.
pub type PortKey = (TransportProtocol, u16);

/// Taken host ports of one instance, each with the task holding it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TakenPorts {
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tcp: BTreeMap<u16, String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub udp: BTreeMap<u16, String>,
}

impl TakenPorts {
    fn of(&self, protocol: TransportProtocol) -> &BTreeMap<u16, String> {
        match protocol {
            TransportProtocol::Tcp => &self.tcp,
            TransportProtocol::Udp => &self.udp,
        }
    }

    fn of_mut(&mut self, protocol: TransportProtocol) -> &mut BTreeMap<u16, String> {
        match protocol {
            TransportProtocol::Tcp => &mut self.tcp,
            TransportProtocol::Udp => &mut self.udp,
        }
    }

    /// Whether a task holds `port`.
    pub fn holds(&self, (protocol, port): PortKey) -> bool {
        self.of(protocol).contains_key(&port)
    }

    /// The ports held over `protocol`, increasing.
    pub fn ports(&self, protocol: TransportProtocol) -> impl Iterator<Item = u16> + '_ {
        self.of(protocol).keys().copied()
    }

    /// Records `task_id`'s bindings.
    pub fn take(&mut self, task_id: &str, bindings: &[HostPortBinding]) {
        for b in bindings {
            self.of_mut(b.protocol)
                .insert(b.host_port, task_id.to_string());
        }
    }

    /// Frees `task_id`'s bindings (only ports it holds).
    pub fn free(&mut self, task_id: &str, bindings: &[HostPortBinding]) {
        for b in bindings {
            let map = self.of_mut(b.protocol);
            if map.get(&b.host_port).is_some_and(|t| t == task_id) {
                map.remove(&b.host_port);
            }
        }
    }

    pub fn is_empty(&self) -> bool {
        self.tcp.is_empty() && self.udp.is_empty()
    }
}

/// The key of a binding.
pub fn key(b: &HostPortBinding) -> PortKey {
    (b.protocol, b.host_port)
}
