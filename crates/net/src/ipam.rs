//! IP address management over one node's task subnet.
//!
//! The subnet's first host address is the gateway (the bridge holds it) and is
//! never handed out, nor are the network and broadcast addresses. A task gets
//! the lowest free address; asking again for the same task returns the same
//! address. Every change is persisted before it is reported, as a small JSON
//! file written atomically with `orca_fs::write_atomic` (temporary file,
//! fsync, rename, fsync of the directory), so a restarted agent finds its tasks' addresses again and a
//! crash never leaves a half-written file.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::{Ipv4Subnet, NetworkError};

/// The state file's name inside the agent's state directory.
pub const STATE_FILE: &str = "ipam.json";

/// The on-disk format; `version` lets a later format be told apart.
#[derive(Debug, Serialize, Deserialize)]
struct StateFile {
    version: u32,
    subnet: Ipv4Subnet,
    /// Task id → address; a BTreeMap so the file's order is stable.
    allocations: BTreeMap<String, Ipv4Addr>,
}

const VERSION: u32 = 1;

/// The allocations of one subnet, mirrored in a file.
#[derive(Debug)]
pub struct Ipam {
    /// The node's task subnet; every allocation lies in it.
    subnet: Ipv4Subnet,
    /// The state file (`<state_dir>/ipam.json`).
    path: PathBuf,
    /// Task id → address, exactly what the file holds.
    by_task: BTreeMap<String, Ipv4Addr>,
}

impl Ipam {
    /// Loads `<state_dir>/ipam.json`, or starts empty if there is none
    /// (creating `state_dir`). A file holding allocations of another subnet,
    /// or one that does not parse or holds impossible allocations, is an
    /// error rather than something to overwrite: the namespaces it describes
    /// may still exist. An empty file of another subnet is simply replaced.
    pub fn open(subnet: Ipv4Subnet, state_dir: &Path) -> Result<Ipam, NetworkError> {
        subnet.validate()?;
        fs::create_dir_all(state_dir).map_err(|e| state_err(state_dir, e))?;
        // A crash mid-write leaves a temporary file; the state file itself
        // is whole (see orca_fs).
        orca_fs::remove_temp_files(state_dir).map_err(|e| state_err(state_dir, e))?;
        let path = state_dir.join(STATE_FILE);
        let by_task = match fs::read(&path) {
            Ok(bytes) => load(&path, subnet, &bytes)?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
            Err(e) => return Err(state_err(&path, e)),
        };
        Ok(Ipam {
            subnet,
            path,
            by_task,
        })
    }

    /// The subnet addresses come from.
    pub fn subnet(&self) -> Ipv4Subnet {
        self.subnet
    }

    /// The bridge's address, which tasks route through.
    pub fn gateway(&self) -> Ipv4Addr {
        self.subnet.gateway()
    }

    /// The state file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The task's address: the one it already holds, else the lowest free
    /// one, persisted before it is returned.
    pub fn allocate(&mut self, task_id: &str) -> Result<Ipv4Addr, NetworkError> {
        if let Some(ip) = self.by_task.get(task_id) {
            return Ok(*ip);
        }
        let used: BTreeSet<Ipv4Addr> = self.by_task.values().copied().collect();
        let gateway = self.gateway();
        let ip = self
            .subnet
            .hosts()
            .find(|ip| *ip != gateway && !used.contains(ip))
            .ok_or_else(|| NetworkError::Exhausted {
                subnet: self.subnet.to_string(),
            })?;
        self.by_task.insert(task_id.to_string(), ip);
        if let Err(e) = self.persist() {
            // Nothing is handed out that the file does not record.
            self.by_task.remove(task_id);
            return Err(e);
        }
        Ok(ip)
    }

    /// Frees the task's address; returns it, or `None` if it held none.
    pub fn release(&mut self, task_id: &str) -> Result<Option<Ipv4Addr>, NetworkError> {
        let Some(ip) = self.by_task.remove(task_id) else {
            return Ok(None);
        };
        if let Err(e) = self.persist() {
            self.by_task.insert(task_id.to_string(), ip);
            return Err(e);
        }
        Ok(Some(ip))
    }

    /// The task's address, if it holds one.
    pub fn get(&self, task_id: &str) -> Option<Ipv4Addr> {
        self.by_task.get(task_id).copied()
    }

    /// Task ids holding an address, sorted.
    pub fn allocated(&self) -> Vec<String> {
        self.by_task.keys().cloned().collect()
    }

    /// Writes the whole state atomically: a reader (or a restarted agent)
    /// sees either the old file or the new one, never a torn one.
    fn persist(&self) -> Result<(), NetworkError> {
        let state = StateFile {
            version: VERSION,
            subnet: self.subnet,
            allocations: self.by_task.clone(),
        };
        let bytes = serde_json::to_vec_pretty(&state).map_err(|e| state_err(&self.path, e))?;
        orca_fs::write_atomic(&self.path, &bytes).map_err(|e| state_err(&self.path, e))
    }
}

/// Parses and checks a state file's contents.
fn load(
    path: &Path,
    subnet: Ipv4Subnet,
    bytes: &[u8],
) -> Result<BTreeMap<String, Ipv4Addr>, NetworkError> {
    let state: StateFile = serde_json::from_slice(bytes).map_err(|e| state_err(path, e))?;
    if state.version != VERSION {
        return Err(state_err(
            path,
            format!("unknown version {} (expected {VERSION})", state.version),
        ));
    }
    if state.subnet != subnet && state.allocations.is_empty() {
        // Nothing on record can still exist in the kernel: the node's new
        // subnet simply takes over.
        return Ok(BTreeMap::new());
    }
    if state.subnet != subnet {
        return Err(state_err(
            path,
            format!(
                "allocations are for subnet {} but the node's subnet is {subnet}; \
                 tear down the old tasks' namespaces and remove the file to change it",
                state.subnet
            ),
        ));
    }
    let mut seen = BTreeSet::new();
    for (task, ip) in &state.allocations {
        let usable = subnet.contains(*ip)
            && *ip != subnet.network
            && *ip != subnet.broadcast()
            && *ip != subnet.gateway();
        if !usable {
            return Err(state_err(
                path,
                format!("task {task} holds {ip}, which is not a task address of {subnet}"),
            ));
        }
        if !seen.insert(*ip) {
            return Err(state_err(path, format!("{ip} is allocated twice")));
        }
    }
    Ok(state.allocations)
}

fn state_err(path: &Path, e: impl std::fmt::Display) -> NetworkError {
    NetworkError::State {
        path: path.display().to_string(),
        message: e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subnet(s: &str) -> Ipv4Subnet {
        s.parse().expect("valid subnet")
    }

    fn ip(d: u8) -> Ipv4Addr {
        Ipv4Addr::new(198, 19, 3, d)
    }

    fn open(dir: &Path) -> Ipam {
        Ipam::open(subnet("198.19.3.0/24"), dir).expect("opens")
    }

    #[test]
    fn hands_out_the_lowest_free_address_after_the_gateway() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut ipam = open(dir.path());
        assert_eq!(ipam.gateway(), ip(1));
        assert_eq!(ipam.allocate("a").expect("a"), ip(2));
        assert_eq!(ipam.allocate("b").expect("b"), ip(3));
        assert_eq!(ipam.allocate("c").expect("c"), ip(4));
        assert_eq!(ipam.allocated(), ["a", "b", "c"]);
    }

    #[test]
    fn allocation_is_idempotent_per_task() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut ipam = open(dir.path());
        let a = ipam.allocate("a").expect("a");
        assert_eq!(ipam.allocate("a").expect("a again"), a);
        assert_eq!(ipam.allocated(), ["a"]);
        assert_eq!(ipam.get("a"), Some(a));
        assert_eq!(ipam.get("b"), None);
    }

    #[test]
    fn released_addresses_are_reused_lowest_first() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut ipam = open(dir.path());
        for t in ["a", "b", "c"] {
            ipam.allocate(t).expect("allocates");
        }
        assert_eq!(ipam.release("b").expect("release"), Some(ip(3)));
        assert_eq!(ipam.release("b").expect("release twice"), None);
        assert_eq!(ipam.release("never").expect("unknown task"), None);
        assert_eq!(ipam.allocate("d").expect("d"), ip(3));
        assert_eq!(ipam.allocate("e").expect("e"), ip(5));
    }

    #[test]
    fn exhaustion_is_an_error_and_release_recovers() {
        let dir = tempfile::tempdir().expect("tempdir");
        // /29: .0 network, .1 gateway, .2-.6 tasks, .7 broadcast.
        let mut ipam = Ipam::open(subnet("198.19.3.0/29"), dir.path()).expect("opens");
        let got: Vec<_> = (0..5)
            .map(|i| ipam.allocate(&format!("t{i}")).expect("allocates"))
            .collect();
        assert_eq!(got, [ip(2), ip(3), ip(4), ip(5), ip(6)]);
        match ipam.allocate("t5") {
            Err(NetworkError::Exhausted { subnet }) => assert_eq!(subnet, "198.19.3.0/29"),
            other => panic!("expected Exhausted, got {other:?}"),
        }
        // The failed request left no trace, in memory or on disk.
        assert_eq!(ipam.allocated().len(), 5);
        assert_eq!(open_29(dir.path()).allocated().len(), 5);
        ipam.release("t2").expect("release");
        assert_eq!(ipam.allocate("t5").expect("t5"), ip(4));
    }

    fn open_29(dir: &Path) -> Ipam {
        Ipam::open(subnet("198.19.3.0/29"), dir).expect("reopens")
    }

    #[test]
    fn allocations_survive_a_reopen() {
        let dir = tempfile::tempdir().expect("tempdir");
        {
            let mut ipam = open(dir.path());
            ipam.allocate("a").expect("a");
            ipam.allocate("b").expect("b");
            ipam.allocate("c").expect("c");
            ipam.release("b").expect("release");
        }
        let mut ipam = open(dir.path());
        assert_eq!(ipam.allocated(), ["a", "c"]);
        assert_eq!(ipam.get("a"), Some(ip(2)));
        assert_eq!(ipam.get("c"), Some(ip(4)));
        assert_eq!(ipam.allocate("d").expect("d"), ip(3));
        // No temporary file is left behind.
        let names: Vec<_> = fs::read_dir(dir.path())
            .expect("read_dir")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(names, [STATE_FILE]);
    }

    #[test]
    fn state_dir_is_created() {
        let dir = tempfile::tempdir().expect("tempdir");
        let nested = dir.path().join("a/b");
        let mut ipam = open(&nested);
        ipam.allocate("x").expect("x");
        assert!(nested.join(STATE_FILE).exists());
    }

    fn expect_state_error(dir: &Path, contents: &str, needle: &str) {
        fs::write(dir.join(STATE_FILE), contents).expect("write");
        match Ipam::open(subnet("198.19.3.0/24"), dir) {
            Err(NetworkError::State { path, message }) => {
                assert!(path.ends_with(STATE_FILE), "{path}");
                assert!(message.contains(needle), "{contents}: {message}");
            }
            other => panic!("{contents}: expected a State error, got {other:?}"),
        }
    }

    #[test]
    fn a_corrupt_or_foreign_state_file_is_a_state_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path();
        expect_state_error(d, "{not json", "key must be a string");
        expect_state_error(d, "", "EOF");
        expect_state_error(
            d,
            r#"{"version":1,"subnet":"198.19.4.0/24","allocations":{"a":"198.19.4.2"}}"#,
            "node's subnet is 198.19.3.0/24",
        );
        expect_state_error(
            d,
            r#"{"version":9,"subnet":"198.19.3.0/24","allocations":{}}"#,
            "unknown version 9",
        );
        expect_state_error(
            d,
            r#"{"version":1,"subnet":"198.19.3.0/24","allocations":{"a":"198.19.3.1"}}"#,
            "not a task address",
        );
        expect_state_error(
            d,
            r#"{"version":1,"subnet":"198.19.3.0/24","allocations":{"a":"10.0.0.2"}}"#,
            "not a task address",
        );
        expect_state_error(
            d,
            r#"{"version":1,"subnet":"198.19.3.0/24","allocations":{"a":"198.19.3.2","b":"198.19.3.2"}}"#,
            "allocated twice",
        );
    }

    #[test]
    fn an_unwritable_state_dir_fails_allocation_without_handing_out_the_address() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut ipam = open(dir.path());
        // Replace the state file's spot with a directory: rename onto it fails.
        fs::create_dir(dir.path().join(STATE_FILE)).expect("mkdir");
        assert!(matches!(
            ipam.allocate("a"),
            Err(NetworkError::State { .. })
        ));
        assert_eq!(ipam.allocated(), Vec::<String>::new());
    }
}
