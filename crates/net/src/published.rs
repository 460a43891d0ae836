//! The host ports this node publishes, per task, persisted beside the
//! IPAM's allocations: a restarted agent rewrites the node's rules with
//! them from its first convergence, so a bridge-mode task keeps answering
//! on its host ports while the agent is away and comes back.
//!
//! One JSON file written atomically (`orca_fs::write_atomic`); a file that
//! cannot be read is set aside with a warning and the tasks publish again
//! at their next setup.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::rules::PortForward;
use crate::NetworkError;

const FILE: &str = "published-ports.json";
const VERSION: u32 = 1;

#[derive(serde::Serialize, serde::Deserialize)]
struct StateFile {
    version: u32,
    tasks: BTreeMap<String, Vec<PortForward>>,
}

/// Published ports by task id.
#[derive(Debug)]
pub struct PublishedPorts {
    path: PathBuf,
    by_task: BTreeMap<String, Vec<PortForward>>,
}

impl PublishedPorts {
    /// Loads `state_dir`'s record (empty if there is none).
    pub fn open(state_dir: &Path) -> PublishedPorts {
        let path = state_dir.join(FILE);
        let by_task = match std::fs::read(&path) {
            Ok(bytes) => match serde_json::from_slice::<StateFile>(&bytes) {
                Ok(state) if state.version == VERSION => state.tasks,
                Ok(state) => {
                    tracing::warn!(path = %path.display(), version = state.version, "unknown published-ports version; starting empty");
                    BTreeMap::new()
                }
                Err(e) => {
                    tracing::warn!(path = %path.display(), error = %e, "unreadable published-ports record; starting empty");
                    BTreeMap::new()
                }
            },
            Err(_) => BTreeMap::new(),
        };
        PublishedPorts { path, by_task }
    }

    /// Records `task_id`'s ports (replacing what it had); returns whether
    /// anything changed.
    pub fn set(
        &mut self,
        task_id: &str,
        mut ports: Vec<PortForward>,
    ) -> Result<bool, NetworkError> {
        ports.sort();
        if self.by_task.get(task_id).cloned().unwrap_or_default() == ports {
            return Ok(false);
        }
        // Written first, kept only once on disk: a failed write leaves the
        // record as it was, so the retry writes again.
        let mut next = self.by_task.clone();
        if ports.is_empty() {
            next.remove(task_id);
        } else {
            next.insert(task_id.to_string(), ports);
        }
        self.persist(&next)?;
        self.by_task = next;
        Ok(true)
    }

    /// The tasks holding published ports.
    pub fn tasks(&self) -> impl Iterator<Item = &String> {
        self.by_task.keys()
    }

    /// Every published port, sorted.
    pub fn all(&self) -> Vec<PortForward> {
        let mut all: Vec<PortForward> = self.by_task.values().flatten().copied().collect();
        all.sort();
        all
    }

    fn persist(&self, tasks: &BTreeMap<String, Vec<PortForward>>) -> Result<(), NetworkError> {
        let state = StateFile {
            version: VERSION,
            tasks: tasks.clone(),
        };
        let bytes = serde_json::to_vec_pretty(&state).map_err(|e| self.err(e))?;
        orca_fs::write_atomic(&self.path, &bytes).map_err(|e| self.err(e))
    }

    fn err(&self, e: impl std::fmt::Display) -> NetworkError {
        NetworkError::Kernel {
            op: format!("writing {}", self.path.display()),
            message: e.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::PortProtocol;

    fn forward(host_port: u16, last: u8) -> PortForward {
        PortForward {
            protocol: PortProtocol::Tcp,
            host_port,
            to: std::net::Ipv4Addr::new(198, 19, 3, last),
            to_port: 80,
        }
    }

    #[test]
    fn survives_a_restart_and_forgets_a_task_with_none() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut ports = PublishedPorts::open(dir.path());
        assert!(ports
            .set("a", vec![forward(8080, 2), forward(32768, 3)])
            .expect("set"));
        assert!(!ports
            .set("a", vec![forward(32768, 3), forward(8080, 2)])
            .expect("same again"));
        assert!(ports.set("b", vec![forward(9090, 4)]).expect("set b"));
        let reopened = PublishedPorts::open(dir.path());
        assert_eq!(
            reopened.all(),
            [forward(8080, 2), forward(9090, 4), forward(32768, 3)]
        );
        let mut reopened = reopened;
        assert!(reopened.set("a", Vec::new()).expect("forget a"));
        assert_eq!(PublishedPorts::open(dir.path()).all(), [forward(9090, 4)]);
    }

    #[test]
    fn an_unreadable_record_starts_empty() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join(FILE), b"{not json").expect("write");
        assert!(PublishedPorts::open(dir.path()).all().is_empty());
    }
}
