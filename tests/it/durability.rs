//! Durability with the real binary: 16 clients register task definitions,
//! the controller is killed with SIGKILL mid-stream and restarted; every
//! acknowledged revision is there with its content, and numbering continues
//! with no gap and no repeat.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use orca_api::v1;
use orca_core::ApiError;
use orca_tests::controller::{free_addr, ControllerProcess};

use crate::support::{describe, register, revision, Client};

const CLIENTS: usize = 16;
const FAMILIES: usize = 4;

fn definition(family: &str, marker: &str) -> String {
    format!(
        r#"{{"family":"{family}","containerDefinitions":[{{"name":"app","image":"busybox","memory":32,
            "environment":[{{"name":"MARKER","value":"{marker}"}}]}}]}}"#
    )
}

/// (family, revision) -> marker of every acknowledged registration.
type Acked = Arc<Mutex<BTreeMap<(String, u64), String>>>;

/// Registers until a call fails; returns that failure.
async fn writer(mut client: Client, id: usize, acked: Acked) -> ApiError {
    for seq in 0.. {
        let family = format!("dur-{}", (id + seq) % FAMILIES);
        let marker = format!("c{id}-s{seq}");
        match register(&mut client, &definition(&family, &marker)).await {
            Ok(td) => {
                let previous = acked
                    .lock()
                    .unwrap()
                    .insert((family.clone(), revision(&td)), marker);
                assert!(
                    previous.is_none(),
                    "revision {family}:{} acknowledged twice",
                    revision(&td)
                );
            }
            // The controller died under us: this write's fate is unknown.
            Err(e) => return e,
        }
    }
    unreachable!("a writer only stops on a failed call")
}

async fn stored_revisions(client: &mut Client, family: &str) -> Vec<u64> {
    let mut revisions = Vec::new();
    let mut token = String::new();
    loop {
        let page = client
            .list_task_definitions(v1::ListTaskDefinitionsRequest {
                family_prefix: family.into(),
                next_token: token,
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        revisions.extend(
            page.task_definition_arns
                .iter()
                .map(|a| a.rsplit(':').next().unwrap().parse::<u64>().unwrap()),
        );
        if page.next_token.is_empty() {
            return revisions;
        }
        token = page.next_token;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill_9_loses_no_acknowledged_registration() {
    let _heavy = crate::support::HEAVY.lock().await;
    let data = tempfile::tempdir().unwrap();
    let mut controller = ControllerProcess::spawn(data.path(), free_addr().unwrap()).unwrap();
    let acked: Acked = Arc::default();
    let mut total_before_kill = Vec::new();
    for round in 0..3 {
        let client = controller
            .wait_ready(Duration::from_secs(30))
            .await
            .unwrap();
        let before = acked.lock().unwrap().len();
        let writers: Vec<_> = (0..CLIENTS)
            .map(|id| tokio::spawn(writer(client.clone(), id, acked.clone())))
            .collect();
        // Let the writers get going, then crash the controller under them.
        let target = before + 150 + round * 50;
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let n = acked.lock().unwrap().len();
            if n >= target {
                break;
            }
            if writers.iter().all(|w| w.is_finished()) {
                let mut errors = Vec::new();
                for w in writers {
                    errors.push(w.await.unwrap());
                }
                panic!(
                    "round {round}: every writer stopped at {n} of {target} acknowledged \
                     registrations, before the kill; their errors: {errors:?}\n{}",
                    controller.log_text()
                );
            }
            assert!(
                Instant::now() < deadline,
                "round {round}: only {n} of {target} registrations acknowledged after 60 s\n{}",
                controller.log_text()
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        controller.kill9().unwrap();
        for w in writers {
            w.await.unwrap();
        }
        total_before_kill.push(acked.lock().unwrap().len());
        controller.restart().unwrap();
    }

    let mut client = controller
        .wait_ready(Duration::from_secs(30))
        .await
        .unwrap();
    let acked = acked.lock().unwrap().clone();
    assert!(
        acked.len() >= 450,
        "writes were acknowledged: {total_before_kill:?}"
    );
    for ((family, rev), marker) in &acked {
        let td = describe(&mut client, &format!("{family}:{rev}"))
            .await
            .unwrap_or_else(|e| {
                panic!(
                    "acknowledged {family}:{rev} is missing after kill -9: {e:?}\n{}",
                    controller.log_text()
                )
            });
        let env = &td["containerDefinitions"][0]["environment"][0]["value"];
        assert_eq!(
            env,
            marker.as_str(),
            "{family}:{rev} holds another write's content"
        );
    }
    for f in 0..FAMILIES {
        let family = format!("dur-{f}");
        let stored = stored_revisions(&mut client, &family).await;
        let max = *stored.last().unwrap();
        assert_eq!(
            stored,
            (1..=max).collect::<Vec<_>>(),
            "{family}: revisions have a gap or repeat"
        );
        let acked_here: BTreeSet<u64> = acked
            .keys()
            .filter(|(fam, _)| *fam == family)
            .map(|(_, r)| *r)
            .collect();
        assert!(acked_here.iter().all(|r| *r <= max));
        let next = register(&mut client, &definition(&family, "after"))
            .await
            .unwrap();
        assert_eq!(revision(&next), max + 1, "{family}: numbering continues");
    }
}
