//! Controller clusters of real processes: a leader killed under 16 writers,
//! partitions (minority cannot commit, a healed follower does not depose the
//! leader), full restarts, a wiped node catching up by snapshot, membership
//! changes under load, five nodes losing two, and leader-only work moving
//! with leadership.
//!
//! Cluster tests run one at a time (each starts several controllers on a
//! 2-core machine); namespace tests need root and fail under CI=true without it.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use orca_api::v1;
use orca_tests::cluster::ControllerCluster;
use orca_tests::history::{History, OpKind, Outcome};
use orca_tests::netns::netns_available;

use crate::support::{minimal_definition, revision, Client, HEAVY};

const WAIT: Duration = Duration::from_secs(40);

async fn register(client: &mut Client, family: &str) -> Result<u64, tonic::Status> {
    let request = v1::RegisterTaskDefinitionRequest {
        input_json: minimal_definition(family),
        registered_by: String::new(),
    };
    let mut request = tonic::Request::new(request);
    request.set_timeout(Duration::from_secs(5));
    let reply = client.register_task_definition(request).await?.into_inner();
    let td: serde_json::Value = serde_json::from_str(&reply.task_definition_json).unwrap();
    Ok(revision(&td))
}

/// The family's latest revision, read linearizably; 0 when the family has
/// no revision yet (the history checker's value for "absent").
async fn read_latest(client: &mut Client, family: &str) -> Result<u64, tonic::Status> {
    let request = v1::DescribeTaskDefinitionRequest {
        task_definition: family.into(),
        include: vec![],
    };
    let mut request = orca_api::read::linearizable(tonic::Request::new(request));
    request.set_timeout(Duration::from_secs(5));
    match client.describe_task_definition(request).await {
        Ok(reply) => {
            let td: serde_json::Value =
                serde_json::from_str(&reply.into_inner().task_definition_json).unwrap();
            Ok(revision(&td))
        }
        Err(status) if is_not_found(&status) => Ok(0),
        Err(status) => Err(status),
    }
}

/// Whether a describe failed because the family has no ACTIVE revision
/// (ClientException on `taskDefinition`, "... does not exist"), as opposed
/// to an unavailable node, a timeout or any other refusal.
fn is_not_found(status: &tonic::Status) -> bool {
    let e = orca_api::error::from_status(status);
    status.code() == tonic::Code::InvalidArgument
        && e.exception == orca_core::Exception::ClientException
        && e.field.as_deref() == Some("taskDefinition")
        && e.message.contains("does not exist")
}

/// Every ACTIVE revision per family, read linearizably from node `i`.
async fn stored(cluster: &ControllerCluster, i: usize) -> BTreeMap<String, Vec<u64>> {
    // A node just restarted may take a moment to listen again.
    let mut client = orca_tests::controller::connect_with_retry(&cluster.endpoint(i), WAIT)
        .await
        .unwrap();
    let mut all: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    let mut token = String::new();
    loop {
        let request = v1::ListTaskDefinitionsRequest {
            next_token: token,
            ..Default::default()
        };
        let page = client
            .list_task_definitions(orca_api::read::linearizable(tonic::Request::new(request)))
            .await
            .unwrap_or_else(|e| panic!("listing on node {i}: {e}\n{}", cluster.logs()))
            .into_inner();
        for arn in page.task_definition_arns {
            let (family, rev) = arn.rsplit_once('/').unwrap().1.rsplit_once(':').unwrap();
            all.entry(family.to_string())
                .or_default()
                .push(rev.parse().unwrap());
        }
        if page.next_token.is_empty() {
            return all;
        }
        token = page.next_token;
    }
}

/// How many operations a load client runs on one set of families.
const EPOCH_OPS: usize = 40;

/// Writers that register (and read back) task definitions through the given
/// nodes until stopped, recording every operation in `history`.
struct Load {
    stop: Arc<AtomicBool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    history: Arc<History>,
}

impl Load {
    async fn start(cluster: &ControllerCluster, clients: usize, families: usize) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let history = Arc::new(History::new());
        let mut tasks = Vec::new();
        for c in 0..clients {
            let endpoints: Vec<String> = (1..=cluster.len()).map(|i| cluster.endpoint(i)).collect();
            let (stop, history) = (stop.clone(), history.clone());
            tasks.push(tokio::spawn(async move {
                let mut n = c % endpoints.len();
                let mut client: Option<Client> = None;
                let mut seq = 0usize;
                while !stop.load(Ordering::Relaxed) {
                    seq += 1;
                    // Every EPOCH_OPS operations a client moves on to new
                    // families, and every other read looks one epoch ahead:
                    // reads of families not registered yet (absent), racing
                    // their first registers, happen throughout the run,
                    // before and after a failover, and the checker verifies
                    // them.
                    let epoch = seq / EPOCH_OPS + usize::from(seq % 8 == 4);
                    let family = format!("load-{epoch}-{}", (c + seq) % families);
                    let mut cl = match client.take() {
                        Some(cl) => cl,
                        None => match orca_api::client::connect(&endpoints[n]).await {
                            Ok(cl) => cl,
                            Err(_) => {
                                n = (n + 1) % endpoints.len();
                                tokio::time::sleep(Duration::from_millis(50)).await;
                                continue;
                            }
                        },
                    };
                    let ok = if seq.is_multiple_of(4) {
                        let pending = history.invoke(OpKind::ReadLatest, &family, c);
                        let result = read_latest(&mut cl, &family).await;
                        // A not-found answer is a read of "absent" (0): the
                        // checker verifies it like any other read.
                        let ok = result.is_ok();
                        history.complete(
                            pending,
                            match result {
                                Ok(r) => Outcome::Ok(r),
                                Err(_) => Outcome::Failed,
                            },
                        );
                        ok
                    } else {
                        let pending = history.invoke(OpKind::Register, &family, c);
                        let result = register(&mut cl, &family).await;
                        let ok = result.is_ok();
                        history.complete(pending, Outcome::of_register(&result));
                        ok
                    };
                    if ok {
                        client = Some(cl);
                    } else {
                        // The node may be down or cut off: move to the next.
                        n = (n + 1) % endpoints.len();
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                }
            }));
        }
        Load {
            stop,
            tasks,
            history,
        }
    }

    fn acknowledged(&self) -> usize {
        self.history
            .ops()
            .iter()
            .filter(|o| o.kind == OpKind::Register && matches!(o.outcome, Outcome::Ok(_)))
            .count()
    }

    async fn wait_acknowledged(&self, more_than: usize) {
        let deadline = Instant::now() + WAIT;
        while self.acknowledged() <= more_than {
            assert!(
                Instant::now() < deadline,
                "writes stalled at {}",
                self.acknowledged()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn stop(self) -> Arc<History> {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.tasks {
            t.await.unwrap();
        }
        self.history
    }
}

/// Every node holds exactly `expected`, and the history is linearizable
/// against it.
async fn check_converged(
    cluster: &ControllerCluster,
    history: &History,
) -> BTreeMap<String, Vec<u64>> {
    let reference = stored(cluster, 1).await;
    for i in 2..=cluster.len() {
        assert_eq!(
            stored(cluster, i).await,
            reference,
            "node {i} diverges from node 1"
        );
    }
    if let Err(v) = history.check_final(&reference) {
        panic!("history is not linearizable: {v}\n{}", history.dump());
    }
    let reads: Vec<u64> = history
        .ops()
        .iter()
        .filter_map(|o| match (o.kind, o.outcome) {
            (OpKind::ReadLatest, Outcome::Ok(r)) => Some(r),
            _ => None,
        })
        .collect();
    println!(
        "history checked: {} operations, {} reads answered ({} of them absent)",
        history.ops().len(),
        reads.len(),
        reads.iter().filter(|r| **r == 0).count()
    );
    reference
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn leader_killed_under_16_writers_loses_nothing() {
    let _one = HEAVY.lock().await;
    let mut cluster = ControllerCluster::start_loopback(3).await.unwrap();
    let leader = cluster.wait_leader(WAIT).await.unwrap();
    // The server's not-found answer is recognised as a read of "absent".
    let mut client = cluster.ecs_client(leader).await.unwrap();
    assert_eq!(
        read_latest(&mut client, "never-registered").await.unwrap(),
        0
    );
    let load = Load::start(&cluster, 16, 4).await;
    load.wait_acknowledged(200).await;
    let former = cluster.leader_record(leader).await.unwrap();
    cluster.kill9_and_check_gone(leader).await.unwrap();
    let before = load.acknowledged();
    cluster.wait_successor(former, WAIT).await.unwrap();
    load.wait_acknowledged(before + 200).await;
    let history = load.stop().await;
    cluster.restart(leader).unwrap();
    cluster.wait_members(3, WAIT).await.unwrap();
    let stored = check_converged(&cluster, &history).await;
    let acked: usize = history
        .ops()
        .iter()
        .filter(|o| matches!((o.kind, o.outcome), (OpKind::Register, Outcome::Ok(_))))
        .count();
    assert!(stored.values().map(Vec::len).sum::<usize>() >= acked);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn partitioned_leader_cannot_commit_and_steps_down_on_heal() {
    if !netns_available().unwrap() {
        return;
    }
    let _one = HEAVY.lock().await;
    let mut cluster = ControllerCluster::start_netns(3).await.unwrap();
    let old = cluster.wait_leader(WAIT).await.unwrap();
    let old_term = cluster.members(old).await.unwrap().term;
    let mut to_old = cluster.ecs_client(old).await.unwrap();
    register(&mut to_old, "before").await.unwrap();
    cluster.net().unwrap().isolate(old).unwrap();

    // The minority cannot commit: a write to the cut-off leader never succeeds.
    let minority_write = register(&mut to_old, "minority").await;
    assert!(
        minority_write.is_err(),
        "a cut-off leader committed a write"
    );
    // The majority elects and commits.
    let new = cluster.wait_leader_change(old, WAIT).await.unwrap();
    let mut to_new = cluster.ecs_client(new).await.unwrap();
    for _ in 0..5 {
        register(&mut to_new, "majority").await.unwrap();
    }
    cluster.net().unwrap().heal(old).unwrap();
    // The old leader steps down and follows a leader of a later term (the
    // new one, or whoever leads after it).
    let deadline = Instant::now() + WAIT;
    loop {
        let view = cluster.members(old).await.unwrap();
        if view.leader_id != 0 && view.leader_id != old as u64 && view.term > old_term {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "node {old} does not follow a new leader: {view:?}\n{}",
            cluster.logs()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let reference = stored(&cluster, new).await;
    assert!(
        !reference.contains_key("minority"),
        "the minority's write survived: {reference:?}"
    );
    assert_eq!(reference["majority"], vec![1, 2, 3, 4, 5]);
    for i in 1..=3 {
        assert_eq!(
            stored(&cluster, i).await,
            reference,
            "node {i} diverges after the heal"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn healed_follower_does_not_depose_the_leader() {
    if !netns_available().unwrap() {
        return;
    }
    let _one = HEAVY.lock().await;
    let mut cluster = ControllerCluster::start_netns(3).await.unwrap();
    let leader = cluster.wait_leader(WAIT).await.unwrap();
    let follower = if leader == 1 { 2 } else { 1 };
    let term = cluster.members(leader).await.unwrap().term;
    cluster.net().unwrap().isolate(follower).unwrap();
    // Well past the election timeout (1-1.2 s): without pre-vote the
    // follower would have raised its term several times by now.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let cut_off = cluster.members(follower).await.unwrap();
    assert_eq!(cut_off.term, term, "the cut-off follower raised its term");
    cluster.net().unwrap().heal(follower).unwrap();
    // Watch for 5 s after the heal, and at least until the healed follower
    // follows the leader a majority names, recording what a majority names
    // as leader and the leader's own term; the figures are judged afterwards
    // (so a deposed leader shows up as leaderless time, not as a panic first).
    let healed_at = Instant::now();
    let mut samples: Vec<(Duration, Option<usize>, Option<u64>)> = Vec::new();
    let mut leaderless = Duration::ZERO;
    let mut last = healed_at;
    let mut followed = false;
    while !followed || healed_at.elapsed() < Duration::from_secs(5) {
        let agreed = cluster.leader().await;
        let leader_term = cluster.members(leader).await.ok().map(|v| v.term);
        let now = Instant::now();
        // The time since the previous sample counts as leaderless when no
        // majority names a leader now.
        if agreed.is_none() {
            leaderless += now - last;
        }
        last = now;
        samples.push((now - healed_at, agreed, leader_term));
        if let (false, Some(agreed)) = (followed, agreed) {
            followed = cluster
                .members(follower)
                .await
                .is_ok_and(|v| v.leader_id == agreed as u64);
        }
        assert!(
            healed_at.elapsed() < WAIT,
            "the healed follower follows no agreed leader after {WAIT:?}: {:?}; samples \
             (since heal, agreed leader, leader's term): {samples:?}\n{}",
            cluster.members(follower).await,
            cluster.logs()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    println!(
        "leaderless time after healing a follower cut off for 5 s: {leaderless:?} \
         ({} samples over {:?})",
        samples.len(),
        healed_at.elapsed()
    );
    // With pre-vote the healed follower never forces an election: the
    // cluster always has a leader, the same one, in the same term.
    assert_eq!(
        leaderless,
        Duration::ZERO,
        "the cluster had no leader for {leaderless:?} after the heal; samples \
         (since heal, agreed leader, leader's term): {samples:?}"
    );
    let changed: Vec<_> = samples
        .iter()
        .filter(|(_, agreed, t)| *agreed != Some(leader) || *t != Some(term))
        .collect();
    assert!(
        changed.is_empty(),
        "node {leader} (term {term}) was deposed after the heal: {changed:?}"
    );
    let view = cluster.members(follower).await.unwrap();
    assert_eq!(
        (view.leader_id, view.term),
        (leader as u64, term),
        "the healed follower follows the leader again"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn full_restart_and_wiped_node_catching_up_by_snapshot() {
    let _one = HEAVY.lock().await;
    let mut cluster = ControllerCluster::builder(3)
        .extra_args(["--snapshot-every", "50", "--log-kept-after-snapshot", "0"])
        .start()
        .await
        .unwrap();
    let leader = cluster.wait_leader(WAIT).await.unwrap();
    let mut client = cluster.ecs_client(leader).await.unwrap();
    for i in 0..200 {
        register(&mut client, &format!("snap-{}", i % 5))
            .await
            .unwrap();
    }
    let before = stored(&cluster, leader).await;
    assert_eq!(before.values().map(Vec::len).sum::<usize>(), 200);

    cluster.stop_all().unwrap();
    cluster.start_all().unwrap();
    let leader = cluster.wait_leader(WAIT).await.unwrap();
    for i in 1..=3 {
        assert_eq!(
            stored(&cluster, i).await,
            before,
            "node {i} after a full restart"
        );
    }
    let purged = cluster.members(leader).await.unwrap().purged_index;
    assert!(purged > 0, "the leader compacted its log");

    let wiped = if leader == 3 { 2 } else { 3 };
    cluster.wipe_and_restart(wiped).unwrap();
    cluster.wait_members(3, WAIT).await.unwrap();
    let deadline = Instant::now() + WAIT;
    loop {
        // The wiped node may not listen yet right after its restart.
        let view = cluster.members(wiped).await;
        let lead = cluster.members(leader).await.unwrap();
        if let Ok(view) = &view {
            if view.snapshot_index > 0 && view.last_applied_index >= lead.last_applied_index {
                break;
            }
        }
        assert!(
            Instant::now() < deadline,
            "the wiped node did not catch up: {view:?}\n{}",
            cluster.logs()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        stored(&cluster, wiped).await,
        before,
        "the wiped node caught up"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn removing_and_readding_a_member_under_load_loses_nothing() {
    let _one = HEAVY.lock().await;
    let mut cluster = ControllerCluster::start_loopback(3).await.unwrap();
    let leader = cluster.wait_leader(WAIT).await.unwrap();
    let removed = if leader == 3 { 2 } else { 3 };
    let load = Load::start(&cluster, 8, 3).await;
    load.wait_acknowledged(100).await;
    let mut admin = cluster.admin_client(leader).await.unwrap();
    let reply = admin
        .remove_member(v1::RemoveMemberRequest {
            node_id: removed as u64,
        })
        .await
        .unwrap()
        .into_inner();
    let ids: BTreeSet<u64> = reply.members.iter().map(|m| m.node_id).collect();
    assert!(!ids.contains(&(removed as u64)), "{reply:?}");
    let n = load.acknowledged();
    load.wait_acknowledged(n + 100).await;
    cluster.wipe_and_restart(removed).unwrap();
    cluster.wait_members(3, WAIT).await.unwrap();
    let n = load.acknowledged();
    load.wait_acknowledged(n + 100).await;
    let history = load.stop().await;
    check_converged(&cluster, &history).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn five_nodes_survive_two_losses() {
    let _one = HEAVY.lock().await;
    let mut cluster = ControllerCluster::start_loopback(5).await.unwrap();
    let leader = cluster.wait_leader(WAIT).await.unwrap();
    let load = Load::start(&cluster, 8, 3).await;
    load.wait_acknowledged(100).await;
    let other = if leader == 5 { 4 } else { 5 };
    cluster.kill9(leader).unwrap();
    cluster.kill9(other).unwrap();
    let n = load.acknowledged();
    load.wait_acknowledged(n + 100).await;
    let history = load.stop().await;
    // Linearizable reads from each of the three survivors agree.
    let acked: Vec<(String, u64)> = history
        .ops()
        .into_iter()
        .filter_map(|o| match (o.kind, o.outcome) {
            (OpKind::Register, Outcome::Ok(r)) => Some((o.family, r)),
            _ => None,
        })
        .collect();
    let survivors: Vec<usize> = (1..=5).filter(|i| *i != leader && *i != other).collect();
    let reference = stored(&cluster, survivors[0]).await;
    for i in &survivors[1..] {
        assert_eq!(
            stored(&cluster, *i).await,
            reference,
            "survivor {i} diverges"
        );
    }
    for (family, rev) in acked {
        assert!(
            reference.get(&family).is_some_and(|r| r.contains(&rev)),
            "{family}:{rev} lost"
        );
    }
    if let Err(v) = history.check_final(&reference) {
        panic!("history is not linearizable: {v}\n{}", history.dump());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn leader_work_runs_only_on_the_leader_and_moves_with_it() {
    if !netns_available().unwrap() {
        return;
    }
    let _one = HEAVY.lock().await;
    let mut cluster = ControllerCluster::builder(3)
        .netns(true)
        .extra_args(["--purge-deleted-after-secs", "0"])
        .start()
        .await
        .unwrap();
    let old = cluster.wait_leader(WAIT).await.unwrap();
    let runners = |views: &[orca_api::v1::MembersReply]| -> Vec<(u64, u64)> {
        views
            .iter()
            .filter(|v| v.leader_work_term != 0)
            .map(|v| (v.responder_id, v.leader_work_term))
            .collect()
    };
    let mut views = Vec::new();
    for i in 1..=3 {
        views.push(cluster.members(i).await.unwrap());
    }
    let term = views[old - 1].term;
    assert_eq!(
        runners(&views),
        vec![(old as u64, term)],
        "only the leader runs leader work"
    );

    cluster.net().unwrap().isolate(old).unwrap();
    let new = cluster.wait_leader_change(old, WAIT).await.unwrap();
    // The new leader runs leader work, and it does it: a deleted revision
    // is purged.
    let mut client = cluster.ecs_client(new).await.unwrap();
    register(&mut client, "purge-me").await.unwrap();
    client
        .deregister_task_definition(v1::DeregisterTaskDefinitionRequest {
            task_definition: "purge-me:1".into(),
        })
        .await
        .unwrap();
    client
        .delete_task_definitions(v1::DeleteTaskDefinitionsRequest {
            task_definitions: vec!["purge-me:1".into()],
        })
        .await
        .unwrap();
    let deadline = Instant::now() + WAIT;
    loop {
        let described = client
            .describe_task_definition(v1::DescribeTaskDefinitionRequest {
                task_definition: "purge-me:1".into(),
                include: vec![],
            })
            .await;
        if described.is_err() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the new leader never purged the deleted revision\n{}",
            cluster.logs()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    cluster.net().unwrap().heal(old).unwrap();
    let deadline = Instant::now() + WAIT;
    loop {
        let mut views = Vec::new();
        for i in 1..=3 {
            views.push(cluster.members(i).await.unwrap());
        }
        // Once every node agrees on the leader and its term, the leader work
        // runs there and nowhere else (the old leader stopped its own).
        let leader = views[0].leader_id;
        let term = views[0].term;
        let agreed = leader != 0
            && views
                .iter()
                .all(|v| v.leader_id == leader && v.term == term);
        if agreed && runners(&views) == vec![(leader, term)] {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "leader work runs elsewhere than on the leader: {:?}, views {views:?}\n{}",
            runners(&views),
            cluster.logs()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The revision number stays used after the purge.
    assert_eq!(register(&mut client, "purge-me").await.unwrap(), 2);
}
