//! The controller cluster's identity (region, account, task CIDR) is
//! replicated and fixed at bootstrap: a controller started with other flags
//! refuses to serve and says why; a join with other flags, or with a node id
//! taken at another address, exits non-zero with the reason instead of
//! retrying forever; a joining controller without --node-id gets a fresh id.

use std::time::{Duration, Instant};

use orca_tests::controller::{free_addr, ControllerProcess, ControllerSpec};

use crate::support::HEAVY;

const WAIT: Duration = Duration::from_secs(30);

fn spec(dir: &std::path::Path, args: &[&str]) -> ControllerSpec {
    ControllerSpec {
        data_dir: dir.to_path_buf(),
        listen: Some(free_addr().expect("a port")),
        extra_args: args.iter().map(|a| a.to_string()).collect(),
        ..ControllerSpec::default()
    }
}

/// Waits for the process to exit on its own; its status and log.
fn wait_exit(p: &mut ControllerProcess) -> (std::process::ExitStatus, String) {
    let deadline = Instant::now() + WAIT;
    loop {
        if let Some(status) = p.exit_status() {
            return (status, p.log_text());
        }
        assert!(
            Instant::now() < deadline,
            "the controller kept running; log:\n{}",
            p.log_text()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_flags_than_the_clusters_are_refused() {
    let _one = HEAVY.lock().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let first = dir.path().join("one");
    let mut one =
        ControllerProcess::spawn_with(spec(&first, &["--region", "eu-lab"])).expect("spawn");
    one.wait_ready(WAIT).await.expect("ready");
    // The identity is fixed by the first leader: wait for its log line.
    let deadline = Instant::now() + WAIT;
    while !one.log_text().contains("cluster identity fixed") {
        assert!(
            Instant::now() < deadline,
            "no identity fixed:\n{}",
            one.log_text()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // A second controller with another region may not join.
    let mut joiner_spec = spec(&dir.path().join("two"), &["--region", "us-lab"]);
    joiner_spec.join = vec![one.endpoint()];
    joiner_spec.node_id = Some(2);
    let mut two = ControllerProcess::spawn_with(joiner_spec).expect("spawn");
    let (status, log) = wait_exit(&mut two);
    assert!(!status.success(), "{log}");
    assert!(
        log.contains("region us-lab (this controller's flags) differs from the cluster's eu-lab"),
        "{log}"
    );

    // A node id taken at another address is refused for good.
    let mut taken = spec(&dir.path().join("three"), &["--region", "eu-lab"]);
    taken.join = vec![one.endpoint()];
    taken.node_id = Some(1);
    let mut three = ControllerProcess::spawn_with(taken).expect("spawn");
    let (status, log) = wait_exit(&mut three);
    assert!(!status.success(), "{log}");
    assert!(log.contains("controller 1 is already a member"), "{log}");

    // Without --node-id a joiner gets a fresh id from the leader.
    let mut fresh = spec(&dir.path().join("four"), &["--region", "eu-lab"]);
    fresh.join = vec![one.endpoint()];
    let mut four = ControllerProcess::spawn_with(fresh).expect("spawn");
    four.wait_ready(WAIT).await.expect("the joiner serves");
    let deadline = Instant::now() + WAIT;
    loop {
        let mut admin = orca_api::v1::controller_admin_client::ControllerAdminClient::new(
            orca_api::client::channel(&one.endpoint())
                .await
                .expect("channel"),
        );
        let members = admin
            .members(orca_api::v1::MembersRequest {})
            .await
            .expect("members")
            .into_inner();
        let ids: Vec<u64> = members.members.iter().map(|m| m.node_id).collect();
        if ids == vec![1, 2] && members.members.iter().all(|m| m.voter) {
            break;
        }
        assert!(Instant::now() < deadline, "members: {ids:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        std::fs::read_to_string(dir.path().join("four").join("node-id"))
            .expect("the id is kept")
            .trim(),
        "2"
    );
    four.kill9().expect("kill");

    // The first controller restarted with another region refuses to serve.
    one.kill9().expect("kill");
    one.spec_mut().extra_args = vec!["--region".into(), "us-lab".into()];
    one.start().expect("restart");
    let (status, log) = wait_exit(&mut one);
    assert!(!status.success(), "{log}");
    assert!(
        log.contains("refusing to serve: region us-lab (this controller's flags) differs from the cluster's eu-lab"),
        "{log}"
    );
    // With its own flags again it serves its data.
    one.spec_mut().extra_args = vec!["--region".into(), "eu-lab".into()];
    one.start().expect("restart");
    one.wait_ready(WAIT).await.expect("serves again");
}
