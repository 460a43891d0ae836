//! Container logs rotate by size on the node, through the real logging
//! driver run by containerd's shim: a container whose json-file options
//! say `max-size` 16k and `max-file` 3 prints 20,000 numbered lines; its log
//! directory then holds exactly three files, the newest lines kept in
//! order (`app.log.2`, `app.log.1`, `app.log` read as one contiguous tail
//! ending at the last line), the oldest gone.

use std::time::Duration;

use orca_tests::agents::wait_stopped;
use serde_json::json;

use crate::containerd_node::Node;
use crate::support::HEAVY;

const WAIT: Duration = Duration::from_secs(60);
const LINES: u64 = 20_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn e2e_a_containers_log_rotates_and_keeps_its_newest_lines() {
    let _heavy = HEAVY.lock().await;
    let Some(mut n) = Node::start("logrot").await.expect("setup") else {
        return;
    };
    let mut app = n.container("app", &format!("seq 1 {LINES}"));
    app["logConfiguration"] =
        json!({"logDriver": "json-file", "options": {"max-size": "16k", "max-file": "3"}});
    n.register("chatty", vec![app]).await;
    let arn = n.run(json!({"taskDefinition": "chatty"})).await;
    let t = wait_stopped(&mut n.client, "default", &arn, WAIT)
        .await
        .expect("stopped");
    let id = arn.rsplit('/').next().unwrap_or_default();
    let dir = n.data_dir.path().join("tasks").join(id);
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .map(|d| {
            d.filter_map(|e| e.ok()?.file_name().into_string().ok())
                .filter(|n| n.starts_with("app.log"))
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    assert_eq!(names, ["app.log", "app.log.1", "app.log.2"], "{t:#}");
    let bytes: Vec<u8> = ["app.log.2", "app.log.1", "app.log"]
        .iter()
        .flat_map(|f| std::fs::read(dir.join(f)).unwrap_or_default())
        .collect();
    let text = orca_runtime::log_format::output_text(&bytes);
    let numbers: Vec<u64> = text.lines().filter_map(|l| l.parse().ok()).collect();
    assert_eq!(numbers.last(), Some(&LINES), "the newest line is kept");
    let first = numbers.first().copied().unwrap_or(0);
    assert!(first > 1, "the oldest lines are gone: starts at {first}");
    // Every line whole (rotation never splits one) and none missing.
    let gap = numbers
        .windows(2)
        .find(|w| w[1] != w[0] + 1)
        .map(|w| (w[0], w[1]));
    assert_eq!(gap, None, "a contiguous tail, in order, from {first}");
    assert_eq!(numbers.len() as u64, LINES - first + 1);
    // Each file is rotated once it holds 16 KiB (a chunk may pass it).
    for f in ["app.log.2", "app.log.1"] {
        let size = std::fs::metadata(dir.join(f)).map(|m| m.len()).unwrap_or(0);
        assert!(
            (16 << 10..=(16 << 10) + (64 << 10)).contains(&size),
            "{f}: {size}"
        );
    }
    n.assert_clean().await;
    n.finish().await;
}
