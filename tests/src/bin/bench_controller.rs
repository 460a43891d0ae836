//! Controller benchmark (not a test): registrations per second from 16
//! concurrent clients, and restart time with 10,000 task definitions stored,
//! each printed next to a baseline measured in the same run.
//!
//! Run: `cargo build --release --bins && ./target/release/bench-controller [--definitions N]`

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use orca_api::v1;
use orca_tests::controller::{free_addr, ControllerProcess};

const CLIENTS: usize = 16;

fn definition(i: usize) -> String {
    format!(
        r#"{{"family":"bench-{}","containerDefinitions":[
            {{"name":"web","image":"registry.example.com/web:{i}","cpu":256,"memory":512,
              "portMappings":[{{"containerPort":8080}}],
              "environment":[{{"name":"SEQ","value":"{i}"}},{{"name":"MODE","value":"bench"}}],
              "healthCheck":{{"command":["CMD-SHELL","true"]}}}},
            {{"name":"sidecar","image":"busybox","memory":64,"essential":false}}]}}"#,
        i % 100
    )
}

/// The floor of one durable write on this disk: a sled insert and flush.
fn baseline_flushes_per_second(n: usize) -> anyhow::Result<f64> {
    let dir = tempfile::tempdir()?;
    let db = sled::open(dir.path())?;
    let value = definition(0).into_bytes();
    let start = Instant::now();
    for i in 0..n {
        db.insert((i as u64).to_be_bytes(), value.clone())?;
        db.flush()?;
    }
    Ok(n as f64 / start.elapsed().as_secs_f64())
}

async fn time_to_ready(controller: &mut ControllerProcess) -> anyhow::Result<Duration> {
    let start = Instant::now();
    controller.wait_ready(Duration::from_secs(300)).await?;
    Ok(start.elapsed())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let definitions: usize = std::env::args()
        .skip_while(|a| a != "--definitions")
        .nth(1)
        .map(|n| n.parse())
        .transpose()?
        .unwrap_or(10_000);

    let baseline = baseline_flushes_per_second(2_000)?;

    // Restart baseline: an empty controller, killed and started again.
    let empty_dir = tempfile::tempdir()?;
    let mut empty = ControllerProcess::spawn(empty_dir.path(), free_addr()?)?;
    empty.wait_ready(Duration::from_secs(60)).await?;
    empty.kill9()?;
    empty.restart()?;
    let empty_restart = time_to_ready(&mut empty).await?;
    empty.kill9()?;

    let dir = tempfile::tempdir()?;
    let mut controller = ControllerProcess::spawn(dir.path(), free_addr()?)?;
    let client = controller.wait_ready(Duration::from_secs(60)).await?;
    let next = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let mut writers = Vec::new();
    for _ in 0..CLIENTS {
        let mut client = client.clone();
        let next = next.clone();
        writers.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= definitions {
                    return Ok::<_, tonic::Status>(());
                }
                let input_json = definition(i);
                client
                    .register_task_definition(v1::RegisterTaskDefinitionRequest {
                        input_json,
                        registered_by: String::new(),
                    })
                    .await?;
            }
        }));
    }
    for w in writers {
        w.await??;
    }
    let rate = definitions as f64 / start.elapsed().as_secs_f64();

    controller.kill9()?;
    controller.restart()?;
    let full_restart = time_to_ready(&mut controller).await?;
    let mut client = controller.wait_ready(Duration::from_secs(10)).await?;
    let check = client
        .describe_task_definition(v1::DescribeTaskDefinitionRequest {
            task_definition: format!("bench-{}", (definitions - 1) % 100),
            include: vec![],
        })
        .await;
    anyhow::ensure!(check.is_ok(), "the last family is missing after restart");

    println!("registrations, {CLIENTS} concurrent clients, {definitions} definitions:");
    println!("  orca                       {rate:>10.0} /s");
    println!("  baseline sled insert+flush {baseline:>10.0} /s (one client, one flush per write)");
    println!("  ratio orca/baseline        {:>10.2}", rate / baseline);
    println!("restart after kill -9 until the API answers:");
    println!(
        "  with {definitions} definitions   {:>10.0} ms",
        full_restart.as_secs_f64() * 1e3
    );
    println!(
        "  empty (baseline)           {:>10.0} ms",
        empty_restart.as_secs_f64() * 1e3
    );
    println!(
        "  ratio                      {:>10.2}",
        full_restart.as_secs_f64() / empty_restart.as_secs_f64()
    );
    Ok(())
}
