//! Tests of a single node's write path: group commit shares flushes between
//! concurrent writers while a lone writer waits for exactly one flush.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use orca_core::cluster::ClusterSetting;

use crate::config::Config;
use crate::node::Node;
use crate::state::Command;

fn create(i: usize) -> Command {
    Command::CreateCluster {
        name: format!("c{i}"),
        settings: Vec::<ClusterSetting>::new(),
        tags: vec![],
        capacity: Default::default(),
    }
}

async fn single_node() -> (tempfile::TempDir, Arc<Node>) {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = Config::new(
        dir.path().to_path_buf(),
        "127.0.0.1:1".parse().expect("addr"),
    );
    let node = Node::open(&config).await.expect("node opens");
    node.wait_for_leader(Duration::from_secs(10))
        .await
        .expect("leads");
    (dir, Arc::new(node))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lone_writer_waits_for_exactly_one_flush_per_write() {
    let (_dir, node) = single_node().await;
    // Let the bootstrap entries settle.
    node.propose(create(0)).await.expect("first write");
    for i in 1..=20 {
        let before = node.log_flushes.load(Ordering::SeqCst);
        node.propose(create(i)).await.expect("write");
        let after = node.log_flushes.load(Ordering::SeqCst);
        assert_eq!(
            after - before,
            1,
            "write {i} was acknowledged after exactly one flush"
        );
    }
    node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writers_share_flushes() {
    let (_dir, node) = single_node().await;
    node.propose(create(0)).await.expect("first write");
    let before = node.log_flushes.load(Ordering::SeqCst);
    let writers = 64;
    let per_writer = 10;
    let mut tasks = tokio::task::JoinSet::new();
    for w in 0..writers {
        let node = node.clone();
        tasks.spawn(async move {
            for i in 0..per_writer {
                node.propose(create(1_000 + w * per_writer + i))
                    .await
                    .expect("write");
            }
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.expect("writer");
    }
    let flushes = node.log_flushes.load(Ordering::SeqCst) - before;
    let writes = (writers * per_writer) as u64;
    assert!(
        flushes < writes,
        "{writes} concurrent writes took {flushes} flushes: none were shared"
    );
    let clusters = node.view().clusters.len();
    assert_eq!(
        clusters,
        1 + 1 + writers * per_writer,
        "every write was applied"
    );
    node.shutdown().await;
}
