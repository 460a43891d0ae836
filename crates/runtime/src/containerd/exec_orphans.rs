//! Exec processes an earlier runtime left running: its exec sessions and
//! health checks, whose output nobody reads any more and whose ends nobody
//! waits for. A shell session would otherwise live as long as its container
//! (the shim keeps its stdin open). The agent has them killed and deleted
//! when it starts ([`super::ContainerdRuntime::end_orphaned_execs`]), found
//! by their exec id ([`EXEC_ID_PREFIX`]) in each task's process list.

use std::time::Duration;

use containerd_client::services::v1::{ListPidsRequest, ListTasksRequest, WaitRequest};
use prost::Message;

use super::client::{status_message, Ctrd};
use super::exec::EXEC_ID_PREFIX;
use super::exec_session::Proc;

/// How long a killed process may take to be reaped before it is deleted.
const KILL_WAIT_LIMIT: Duration = Duration::from_secs(5);

/// runc's per-process details in a `ListPids` answer
/// (`containerd.runc.v1.ProcessDetails`): the exec id, empty for the init.
#[derive(Clone, PartialEq, Message)]
struct ProcessDetails {
    #[prost(string, tag = "1")]
    exec_id: String,
}

/// The exec id in a process's info, if it is a runc exec process.
fn exec_id(info: &prost_types::Any) -> Option<String> {
    if !info.type_url.ends_with("ProcessDetails") {
        return None;
    }
    let details = ProcessDetails::decode(info.value.as_slice()).ok()?;
    (!details.exec_id.is_empty()).then_some(details.exec_id)
}

/// Kills and deletes every exec process of ours in the namespace; failures
/// are only logged (the next agent start tries again).
pub async fn end_orphans(ctrd: &Ctrd) {
    let tasks = match ctrd
        .tasks()
        .list(ctrd.req(ListTasksRequest {
            filter: String::new(),
        }))
        .await
    {
        Ok(r) => r.into_inner().tasks,
        Err(s) => {
            tracing::warn!(error = %status_message(&s), "cannot list tasks to end orphaned execs");
            return;
        }
    };
    let mut orphans = Vec::new();
    for task in tasks {
        // containerd 1.6 fills only `id` (the container id) in listings.
        let id = if task.container_id.is_empty() {
            task.id
        } else {
            task.container_id
        };
        let Ok(pids) = ctrd
            .tasks()
            .list_pids(ctrd.req(ListPidsRequest {
                container_id: id.clone(),
            }))
            .await
        else {
            continue;
        };
        for process in pids.into_inner().processes {
            let Some(exec_id) = process.info.as_ref().and_then(exec_id) else {
                continue;
            };
            if exec_id.starts_with(EXEC_ID_PREFIX) {
                let proc = Proc {
                    ctrd: ctrd.clone(),
                    id: id.clone(),
                    exec_id,
                    dir: None,
                };
                tracing::info!(container = %proc.id, exec = %proc.exec_id, "ending an exec left by an earlier agent");
                proc.kill(libc::SIGKILL).await;
                orphans.push(proc);
            }
        }
    }
    for proc in orphans {
        let mut tasks = ctrd.tasks();
        let wait = tasks.wait(ctrd.req(WaitRequest {
            container_id: proc.id.clone(),
            exec_id: proc.exec_id.clone(),
        }));
        let _ = tokio::time::timeout(KILL_WAIT_LIMIT, wait).await;
        proc.delete().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exec_ids_come_from_runc_process_details() {
        let any = |type_url: &str, exec_id: &str| prost_types::Any {
            type_url: type_url.to_string(),
            value: ProcessDetails {
                exec_id: exec_id.to_string(),
            }
            .encode_to_vec(),
        };
        let runc = "containerd.runc.v1.ProcessDetails";
        assert_eq!(
            exec_id(&any(runc, "orca-exec-1")).as_deref(),
            Some("orca-exec-1")
        );
        assert_eq!(exec_id(&any(runc, "")), None);
        assert_eq!(exec_id(&any("something.Else", "orca-exec-1")), None);
    }
}
