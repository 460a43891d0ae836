//! Tasks that ended on this node, remembered on disk with their final
//! report until the controller stops assigning them.
//!
//! A run-task runs once. The final report is recorded (durably, with
//! `orca_fs::write_atomic`) as soon as every container of the task has
//! exited and its exit is known, and *before* any container is removed: a
//! restarted agent that finds the record never starts the task again,
//! whatever moment the crash hit, and sends the saved report (with the real
//! exit codes) once the leftovers are cleaned up.

use std::collections::BTreeMap;
use std::path::PathBuf;

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

    /// Records the task's final report, durably.
    pub fn record(&self, task_id: &str, report: &TaskStateReport) -> std::io::Result<()> {
        std::fs::create_dir_all(&self.dir)?;
        let json = serde_json::to_vec(report).map_err(std::io::Error::other)?;
        orca_fs::write_atomic(&self.path(task_id), &json)
    }

    /// Every final report on disk, by task id (removing the temporary files
    /// of a write a crash cut short). An unreadable record is skipped with
    /// a warning: its task is then treated as never having ended here.
    pub fn load_all(&self) -> std::io::Result<BTreeMap<String, TaskStateReport>> {
        orca_fs::remove_temp_files(&self.dir)?;
        let mut out = BTreeMap::new();
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
            Err(e) => return Err(e),
        };
        for entry in entries {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let Some(id) = name.strip_suffix(".json") else {
                continue;
            };
            match std::fs::read(entry.path())
                .map_err(|e| e.to_string())
                .and_then(|b| serde_json::from_slice(&b).map_err(|e| e.to_string()))
            {
                Ok(report) => {
                    out.insert(id.to_string(), report);
                }
                Err(e) => tracing::warn!(task = %id, error = %e, "unreadable final report"),
            }
        }
        Ok(out)
    }

    /// Forgets a task (the controller no longer assigns it), durably.
    pub fn forget(&self, task_id: &str) -> std::io::Result<()> {
        orca_fs::remove_durably(&self.path(task_id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use orca_core::task::TaskStatus;

    #[test]
    fn records_load_and_are_forgotten() {
        let dir = tempfile::tempdir().expect("tempdir");
        let f = FinishedTasks::new(dir.path().join("finished"));
        assert!(f.load_all().expect("empty").is_empty());
        let report = TaskStateReport {
            task_arn: "arn:t/1".into(),
            last_status: TaskStatus::Stopped,
            containers: Vec::new(),
            network: None,
            pull_started_at: None,
            pull_stopped_at: None,
            started_at: None,
            stopping_at: None,
            execution_stopped_at: None,
            stopped_at: None,
            stop_code: None,
            stopped_reason: None,
            health_status: Default::default(),
        };
        f.record("t1", &report).expect("record");
        std::fs::write(
            dir.path()
                .join(format!("finished/.t2.json.1.1{}", orca_fs::TEMP_SUFFIX)),
            b"{",
        )
        .expect("a torn write");
        let all = f.load_all().expect("load");
        assert_eq!(all.len(), 1);
        assert_eq!(all["t1"], report);
        f.forget("t1").expect("forget");
        let left: Vec<_> = std::fs::read_dir(dir.path().join("finished"))
            .expect("ls")
            .collect();
        assert!(left.is_empty(), "{left:?}");
    }
}
