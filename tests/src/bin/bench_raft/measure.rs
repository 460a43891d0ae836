//! Measuring: timed write windows, percentiles, the first acknowledged
//! write after a failover, and the disk's fsync latency.

use std::fs::File;
use std::io::{Seek, SeekFrom, Write};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::*;
use anyhow::bail;
use futures::stream::{FuturesUnordered, StreamExt};

#[derive(Default)]
pub(crate) struct Run {
    pub(crate) writes: usize,
    pub(crate) errors: usize,
    pub(crate) first_error: Option<String>,
    pub(crate) elapsed: Duration,
    pub(crate) latencies: Vec<Duration>,
}

impl Run {
    pub(crate) fn rate(&self) -> f64 {
        self.writes as f64 / self.elapsed.as_secs_f64()
    }

    pub(crate) fn p(&self, q: f64) -> f64 {
        percentile(&self.latencies, q).as_secs_f64() * 1e3
    }
}

/// `latencies` must be sorted.
pub(crate) fn percentile(latencies: &[Duration], q: f64) -> Duration {
    if latencies.is_empty() {
        return Duration::ZERO;
    }
    let i = ((latencies.len() - 1) as f64 * q).round() as usize;
    latencies[i]
}

/// Every writer writes in a loop, one write in flight each, for `seconds`.
pub(crate) async fn drive(
    writers: Vec<Writer>,
    seconds: u64,
    seq: Arc<AtomicU64>,
) -> anyhow::Result<Run> {
    let start = Instant::now();
    let deadline = start + Duration::from_secs(seconds);
    let tasks: Vec<_> = writers
        .into_iter()
        .map(|mut w| {
            let seq = seq.clone();
            tokio::spawn(async move {
                let mut run = Run::default();
                while Instant::now() < deadline {
                    let n = seq.fetch_add(1, Ordering::Relaxed);
                    let t0 = Instant::now();
                    let error = match tokio::time::timeout(CALL_TIMEOUT, w.write(n)).await {
                        Ok(Ok(())) => {
                            run.latencies.push(t0.elapsed());
                            continue;
                        }
                        Ok(Err(e)) => format!("{e:#}"),
                        Err(_) => format!("timed out after {CALL_TIMEOUT:?}"),
                    };
                    run.errors += 1;
                    run.first_error.get_or_insert(error);
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                run
            })
        })
        .collect();
    let mut total = Run::default();
    for task in tasks {
        let run = task.await?;
        total.errors += run.errors;
        if total.first_error.is_none() {
            total.first_error = run.first_error;
        }
        total.latencies.extend(run.latencies);
    }
    total.elapsed = start.elapsed();
    total.writes = total.latencies.len();
    total.latencies.sort();
    Ok(total)
}

/// Writes through `writers` (the survivors), a new attempt every
/// [`FAILOVER_TICK`] round-robin, until one is acknowledged; the time since
/// `start` (taken just before the kill).
pub(crate) async fn first_ack(
    writers: Vec<Writer>,
    start: Instant,
    seq: &AtomicU64,
) -> anyhow::Result<(Duration, String)> {
    let mut inflight = FuturesUnordered::new();
    let mut tick = tokio::time::interval(FAILOVER_TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut k = 0;
    let mut last = String::from("no attempt finished");
    loop {
        tokio::select! {
            _ = tick.tick() => {
                if start.elapsed() > FAILOVER_LIMIT {
                    bail!("no write acknowledged {FAILOVER_LIMIT:?} after the kill; last error: {last}");
                }
                let w = writers[k % writers.len()].clone();
                k += 1;
                inflight.push(attempt(w, seq.fetch_add(1, Ordering::Relaxed)));
            }
            Some(result) = inflight.next(), if !inflight.is_empty() => match result {
                Ok(()) => return Ok((start.elapsed(), last)),
                Err(e) => last = format!("{e:#}"),
            },
        }
    }
}

/// 4 KiB write + fdatasync, `n` times: (p50, p99) overwriting a file
/// written and synced beforehand (as etcd's preallocated WAL does), and the
/// p50 appending to a new file.
pub(crate) fn fsync_probe(dir: &Path, n: usize) -> anyhow::Result<(Duration, Duration, Duration)> {
    let block = vec![0x5au8; 4096];
    let mut f = File::create(dir.join("fsync-probe"))?;
    for _ in 0..n {
        f.write_all(&block)?;
    }
    f.sync_all()?;
    f.seek(SeekFrom::Start(0))?;
    let mut over = Vec::with_capacity(n);
    for _ in 0..n {
        let t0 = Instant::now();
        f.write_all(&block)?;
        f.sync_data()?;
        over.push(t0.elapsed());
    }
    let mut f = File::create(dir.join("fsync-probe-append"))?;
    let mut append = Vec::with_capacity(n);
    for _ in 0..n {
        let t0 = Instant::now();
        f.write_all(&block)?;
        f.sync_data()?;
        append.push(t0.elapsed());
    }
    over.sort();
    append.sort();
    let _ = std::fs::remove_file(dir.join("fsync-probe"));
    let _ = std::fs::remove_file(dir.join("fsync-probe-append"));
    Ok((
        percentile(&over, 0.5),
        percentile(&over, 0.99),
        percentile(&append, 0.5),
    ))
}

pub(crate) fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}
