//! `Node/Logs`: a task's container log files read back
//! (`orca_runtime::log_reader`), lines after `since`, the last `tail` of
//! each container, then, when following, what the containers write next,
//! until the task has ended here and its files are read to the end, or the
//! caller goes away.
//!
//! The files are read on a blocking thread (plain file reads, polled every
//! [`FOLLOW_POLL`] while following: no inotify, which rotation would make
//! fiddly) that sends chunks into a bounded channel: a slow caller slows
//! the reader, never the containers.

use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::time::{Duration, Instant};

use orca_api::v1::{LogChunk, LogLine, NodeLogsRequest};
use orca_core::names::{check_container_name, check_task_id, NameError};
use orca_runtime::log_format::Line;
use orca_runtime::log_reader::{read_history, Follower, HistoryFilter};
use tokio::sync::mpsc;
use tonic::Status;

use super::NodeState;

/// The stream a Logs call answers with.
pub type LogStream = Pin<Box<dyn tokio_stream::Stream<Item = Result<LogChunk, Status>> + Send>>;

/// How often a followed log is read again.
const FOLLOW_POLL: Duration = Duration::from_millis(250);
/// After the task ended, the log driver may still be writing what was in
/// the pipes: the follow ends once the files stayed quiet this long.
const QUIET_AFTER_END: Duration = Duration::from_secs(1);
/// Most lines in one chunk.
const CHUNK_LINES: usize = 256;
/// Chunks buffered towards a slow caller.
const CHANNEL_CHUNKS: usize = 8;

/// Validates the request and starts reading.
pub fn open(state: NodeState, request: NodeLogsRequest) -> Result<LogStream, Status> {
    check_name("task_id", &request.task_id, check_task_id)?;
    for c in &request.containers {
        check_name("containers", c, check_container_name)?;
    }
    let dir = state.logs_dir.join(&request.task_id);
    let containers = if request.containers.is_empty() {
        containers_in(&dir)
    } else {
        request.containers.clone()
    };
    if !dir.is_dir() && !request.follow {
        return Err(Status::not_found(format!(
            "no logs of task {} on this node (never ran here, or removed after the log retention)",
            request.task_id
        )));
    }
    let (tx, rx) = mpsc::channel(CHANNEL_CHUNKS);
    let filter = HistoryFilter {
        since_ns: request.since_unix_ns,
        tail: request.tail.map(|n| n as usize),
    };
    let reading = Reading {
        state,
        task_id: request.task_id,
        dir,
        containers,
        filter,
        follow: request.follow,
        tx,
    };
    tokio::task::spawn_blocking(move || reading.run());
    Ok(Box::pin(tokio_stream::wrappers::ReceiverStream::new(rx)))
}

/// Ids and names become path components: letters, digits, `-` and `_`
/// only (what ECS allows in container names and task ids).
/// A name from the request, checked by the agent's one rule for names
/// joined into paths (`orca_core::names`).
fn check_name(
    field: &str,
    value: &str,
    check: fn(&str) -> Result<(), NameError>,
) -> Result<(), Status> {
    check(value).map_err(|e| Status::invalid_argument(format!("{field}: {e}")))
}

/// The containers with a log file in `dir`, by name.
fn containers_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|e| {
                    let name = e.ok()?.file_name().into_string().ok()?;
                    name.strip_suffix(".log").map(str::to_string)
                })
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// One call's reading, on its blocking thread.
struct Reading {
    state: NodeState,
    task_id: String,
    dir: PathBuf,
    containers: Vec<String>,
    filter: HistoryFilter,
    follow: bool,
    tx: mpsc::Sender<Result<LogChunk, Status>>,
}

impl Reading {
    fn run(self) {
        let mut followers = Vec::new();
        // History: each container's, then merged by time (a stable sort
        // keeps each container's own order).
        let mut history: Vec<LogLine> = Vec::new();
        for name in &self.containers {
            let path = self.dir.join(format!("{name}.log"));
            match read_history(&path, self.filter, |l| history.push(wire(name, l))) {
                Ok(f) => followers.push((name.clone(), f)),
                Err(e) => {
                    let _ = self.tx.blocking_send(Err(Status::internal(format!(
                        "reading {}: {e}",
                        path.display()
                    ))));
                    return;
                }
            }
        }
        history.sort_by_key(|l| l.time_unix_ns);
        if !self.send(history) || !self.follow {
            return;
        }
        self.follow(followers);
    }

    fn follow(&self, mut followers: Vec<(String, Follower)>) {
        let mut ended_quiet_since: Option<Instant> = None;
        loop {
            if self.tx.is_closed() || self.state.shutdown.is_cancelled() {
                return;
            }
            std::thread::sleep(FOLLOW_POLL);
            // A container that had written nothing when the call came has
            // a log file now.
            if self.containers.is_empty() {
                for name in containers_in(&self.dir) {
                    if !followers.iter().any(|(n, _)| *n == name) {
                        let path = self.dir.join(format!("{name}.log"));
                        followers.push((name, Follower::new(path)));
                    }
                }
            }
            let mut lines = Vec::new();
            for (name, f) in &mut followers {
                match f.poll() {
                    Ok(got) => lines.extend(got.into_iter().map(|l| wire(name, l))),
                    Err(e) => {
                        tracing::warn!(task = %self.task_id, container = %name, error = %e, "reading a followed log")
                    }
                }
            }
            lines.sort_by_key(|l| l.time_unix_ns);
            let quiet = lines.is_empty();
            if !self.send(lines) {
                return;
            }
            if !self.state.task_ended(&self.task_id) || !quiet {
                ended_quiet_since = None;
                continue;
            }
            let since = *ended_quiet_since.get_or_insert_with(Instant::now);
            if since.elapsed() >= QUIET_AFTER_END {
                // The output's last line may lack its newline.
                let mut rest = Vec::new();
                for (name, f) in &mut followers {
                    rest.extend(f.flush().into_iter().map(|l| wire(name, l)));
                }
                self.send(rest);
                return;
            }
        }
    }

    /// Sends `lines` in chunks; false once the caller is gone.
    fn send(&self, lines: Vec<LogLine>) -> bool {
        let mut lines = lines.into_iter().peekable();
        while lines.peek().is_some() {
            let chunk: Vec<LogLine> = lines.by_ref().take(CHUNK_LINES).collect();
            if self.tx.blocking_send(Ok(super::chunk(chunk))).is_err() {
                return false;
            }
        }
        true
    }
}

fn wire(container: &str, line: Line) -> LogLine {
    LogLine {
        container: container.to_string(),
        time_unix_ns: line.time_ns,
        stream: line.stream.name().to_string(),
        content: line.content,
        log_stream_name: String::new(),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use orca_runtime::log_format::{encode_chunk, Stream};
    use tokio_stream::StreamExt;

    use super::*;

    fn write(path: &Path, time_ns: i64, text: &str) {
        let mut out = Vec::new();
        encode_chunk(&mut out, time_ns, Stream::Stdout, text.as_bytes());
        let mut log = orca_runtime::log_rotation::RotatingLog::open(path, None)
            .unwrap_or_else(|e| panic!("{e}"));
        log.write_chunk(&out);
    }

    /// No assignments yet: a task has ended only once its final report
    /// is in `finished/`.
    fn state(dir: &Path) -> NodeState {
        let (_tx, rx) = tokio::sync::watch::channel(None);
        NodeState {
            logs_dir: dir.join("tasks"),
            finished_dir: dir.join("finished"),
            assignments: rx,
            shutdown: tokio_util::sync::CancellationToken::new(),
            runtime: std::sync::Arc::new(orca_runtime::fake::FakeRuntime::new()),
        }
    }

    async fn collect(stream: LogStream) -> Vec<(String, String)> {
        let chunks: Vec<_> = stream.collect().await;
        chunks
            .into_iter()
            .flat_map(|c| c.unwrap_or_else(|e| panic!("{e}")).lines)
            .map(|l| {
                (
                    l.container,
                    String::from_utf8_lossy(&l.content).into_owned(),
                )
            })
            .collect()
    }

    #[tokio::test]
    async fn every_container_merged_by_time_and_the_tail_of_each() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let task = dir.path().join("tasks/t1");
        write(&task.join("web.log"), 10, "w1\nw2\n");
        write(&task.join("side.log"), 15, "s1\n");
        write(&task.join("web.log"), 20, "w3\n");
        let request = NodeLogsRequest {
            task_id: "t1".into(),
            ..NodeLogsRequest::default()
        };
        let all =
            collect(open(state(dir.path()), request.clone()).unwrap_or_else(|e| panic!("{e}")))
                .await;
        let texts: Vec<&str> = all.iter().map(|(_, t)| t.as_str()).collect();
        assert_eq!(texts, ["w1", "w2", "s1", "w3"]);
        let tail = NodeLogsRequest {
            tail: Some(1),
            containers: vec!["web".into()],
            ..request.clone()
        };
        let got = collect(open(state(dir.path()), tail).unwrap_or_else(|e| panic!("{e}"))).await;
        assert_eq!(got, [("web".to_string(), "w3".to_string())]);
        let bad = NodeLogsRequest {
            containers: vec!["../etc".into()],
            ..request.clone()
        };
        assert!(open(state(dir.path()), bad).is_err());
        let missing = NodeLogsRequest {
            task_id: "t2".into(),
            ..request
        };
        assert_eq!(
            open(state(dir.path()), missing).err().map(|s| s.code()),
            Some(tonic::Code::NotFound)
        );
    }

    #[tokio::test]
    async fn a_follow_sees_new_lines_and_ends_after_the_task_ended() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let log = dir.path().join("tasks/t1/app.log");
        write(&log, 10, "before\n");
        let request = NodeLogsRequest {
            task_id: "t1".into(),
            follow: true,
            ..NodeLogsRequest::default()
        };
        let mut stream = open(state(dir.path()), request.clone()).unwrap_or_else(|e| panic!("{e}"));
        let first = stream.next().await.map(|c| c.map(|c| c.lines.len()));
        assert_eq!(first.and_then(Result::ok), Some(1));
        write(&log, 20, "after\n");
        let next = stream.next().await.and_then(Result::ok);
        let texts: Vec<String> = next
            .map(|c| {
                c.lines
                    .iter()
                    .map(|l| String::from_utf8_lossy(&l.content).into_owned())
                    .collect()
            })
            .unwrap_or_default();
        assert_eq!(texts, ["after"]);
        drop(stream);

        // The task has ended here (its final report recorded): the follow
        // reads to the end, the unended last line included, and stops.
        write(&log, 30, "last");
        std::fs::create_dir_all(dir.path().join("finished")).unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(dir.path().join("finished/t1.json"), "{}").unwrap_or_else(|e| panic!("{e}"));
        let ended = open(state(dir.path()), request).unwrap_or_else(|e| panic!("{e}"));
        let got = tokio::time::timeout(Duration::from_secs(20), collect(ended))
            .await
            .unwrap_or_else(|_| panic!("the follow of an ended task never ended"));
        let by: BTreeMap<String, usize> = got.iter().fold(BTreeMap::new(), |mut m, (c, _)| {
            *m.entry(c.clone()).or_default() += 1;
            m
        });
        assert_eq!(by.get("app"), Some(&3), "{got:?}");
        assert_eq!(got.last().map(|(_, t)| t.as_str()), Some("last"));
    }

    #[tokio::test]
    async fn the_agents_shutdown_ends_a_follow() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        write(&dir.path().join("tasks/t1/app.log"), 10, "line\n");
        let node = state(dir.path());
        let shutdown = node.shutdown.clone();
        let request = NodeLogsRequest {
            task_id: "t1".into(),
            follow: true,
            ..NodeLogsRequest::default()
        };
        let stream = open(node, request).unwrap_or_else(|e| panic!("{e}"));
        shutdown.cancel();
        let got = tokio::time::timeout(Duration::from_secs(20), collect(stream))
            .await
            .unwrap_or_else(|_| panic!("the follow outlived the agent's shutdown"));
        assert_eq!(got, [("app".to_string(), "line".to_string())]);
    }
}
