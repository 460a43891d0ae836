//! Tasks that ended on this node, remembered on disk with their final
//! report until the controller stops assigning them.
//!
//! A run-task runs once. If the agent dies after a task stopped but before
//! the controller acknowledged its STOPPED report, the restarted agent is
//! still assigned the task; without this record it would run it again. With
//! it, the agent sends the saved final report instead.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use orca_core::agent_protocol::TaskStateReport;

/// The directory of final reports, one JSON file per task id.
#[derive(Debug, Clone)]
pub struct FinishedTasks {
    dir: PathBuf,
}

impl FinishedTasks {
    pub fn new(dir: PathBuf) -> Self {
        FinishedTasks { dir }
    }

    fn path(&self, task_id: &str) -> PathBuf {
        self.dir.join(format!("{task_id}.json"))
    }

    /// Records the task's final report (written atomically, then flushed).
    pub fn record(&self, task_id: &str, report: &TaskStateReport) -> std::io::Result<()> {
        std::fs::create_dir_all(&self.dir)?;
        let json = serde_json::to_vec(report).map_err(std::io::Error::other)?;
        let tmp = self.dir.join(format!("{task_id}.json.tmp"));
        write_synced(&tmp, &json)?;
        std::fs::rename(&tmp, self.path(task_id))
    }

    /// The final report of a task that ended here, if any.
    pub fn get(&self, task_id: &str) -> Option<TaskStateReport> {
        let bytes = std::fs::read(self.path(task_id)).ok()?;
        serde_json::from_slice(&bytes).ok()
    }

    /// Forgets every task not in `assigned`: the controller has its STOPPED
    /// report (it no longer assigns the task).
    pub fn retain(&self, assigned: &BTreeSet<String>) {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return;
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let Some(id) = name.strip_suffix(".json") else {
                continue;
            };
            if !assigned.contains(id) {
                if let Err(e) = std::fs::remove_file(entry.path()) {
                    tracing::warn!(task = %id, error = %e, "could not forget a finished task");
                }
            }
        }
    }
}

fn write_synced(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    let mut f = std::fs::File::create(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}
