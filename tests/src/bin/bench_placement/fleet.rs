//! Simulated container instances: each registers as an agent would
//! (`Agent/RegisterContainerInstance`, the agent's own attribute list plus an
//! availability zone and a `tier`), then holds `Agent/Session` with the
//! leader, heartbeating and reading (and discarding) its assignments. The
//! sessions share a few HTTP/2 connections per controller; a refused
//! session follows the leader named in `orca-leader`, like the agent.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::stream::StreamExt;
use orca_api::v1::agent_client::AgentClient;
use orca_api::v1::ecs_client::EcsClient;
use orca_api::v1::AgentJson;
use orca_core::agent_protocol::{AgentMessage, Registration, RegistrationReply};
use orca_core::task_definition::Attribute;
use serde_json::json;
use tokio::sync::{mpsc, watch};
use tonic::transport::{Channel, Endpoint};

use crate::ecs_json;

/// The metadata a refusing follower names the leader in.
const LEADER_METADATA: &str = "orca-leader";
/// Registrations in flight at once.
pub const REGISTER_CONCURRENCY: usize = 64;
/// ECS's availability-zone attribute.
pub const ZONE_ATTRIBUTE: &str = "ecs.availability-zone";
/// The custom attribute the memberOf scenario selects on.
pub const TIER_ATTRIBUTE: &str = "tier";

/// What the simulated instances look like.
#[derive(Debug, Clone)]
pub struct FleetSpec {
    pub instances: usize,
    pub zones: usize,
    pub cpu: u64,
    pub memory: u64,
}

impl FleetSpec {
    pub fn zone(&self, i: usize) -> String {
        format!("zone-{:02}", i % self.zones)
    }

    /// Half of every zone is gold (not correlated with the zone).
    pub fn gold(&self, i: usize) -> bool {
        (i / self.zones).is_multiple_of(2)
    }

    pub fn hostname(i: usize) -> String {
        format!("sim-{i:05}")
    }

    /// A /24 of 10.0.0.0/8 per instance (the controller's default task CIDR,
    /// a /16, has room for 256 instances only).
    pub fn subnet(i: usize) -> String {
        format!("10.{}.{}.0/24", i >> 8, i & 255)
    }

    /// The registration a real agent with this configuration would send.
    pub fn registration(&self, i: usize) -> Registration {
        let config = orca_agent::AgentConfig {
            availability_zone: Some(self.zone(i)),
            attributes: BTreeMap::from([(
                TIER_ATTRIBUTE.to_string(),
                if self.gold(i) { "gold" } else { "silver" }.to_string(),
            )]),
            ..orca_agent::AgentConfig::default()
        };
        Registration {
            cluster: "default".to_string(),
            container_instance_arn: None,
            instance_id: None,
            hostname: Self::hostname(i),
            cpu: self.cpu,
            memory: self.memory,
            attributes: orca_agent::host::attributes(&config),
            agent_version: orca_agent::host::AGENT_VERSION.to_string(),
            runtime_version: "simulated".to_string(),
            task_subnet: Some(Self::subnet(i)),
            reserved_ports: Vec::new(),
            node_address: None,
            node_api_address: None,
            overlay: Default::default(),
        }
    }

    /// The attribute list of instance `i` (for the in-process scheduler).
    pub fn attributes(&self, i: usize) -> Vec<Attribute> {
        self.registration(i).attributes
    }
}

/// Counters shared by every session.
#[derive(Default)]
pub struct Stats {
    /// Sessions open right now.
    pub open: AtomicUsize,
    /// Sessions that ended without being asked to (by the controller, or
    /// the connection).
    pub lost: AtomicUsize,
    /// Sessions refused with a redirect to the leader.
    pub redirects: AtomicUsize,
    pub heartbeats: AtomicU64,
    pub assignment_messages: AtomicU64,
    pub assignment_bytes: AtomicU64,
    /// Tasks in each instance's latest Assignments message.
    pub held: Vec<AtomicU32>,
    pub first_loss: Mutex<Option<String>>,
}

impl Stats {
    /// Tasks held across the fleet, as last told by the leader.
    pub fn held_total(&self) -> u64 {
        self.held
            .iter()
            .map(|h| u64::from(h.load(Ordering::Relaxed)))
            .sum()
    }

    fn lose(&self, why: String) {
        self.lost.fetch_add(1, Ordering::Relaxed);
        let mut first = self.first_loss.lock().unwrap_or_else(|p| p.into_inner());
        first.get_or_insert(why);
    }
}

/// A few lazily connected HTTP/2 connections per controller address, shared
/// by every session and registration.
pub struct Pool {
    per_endpoint: usize,
    channels: Mutex<HashMap<String, Vec<Channel>>>,
}

impl Pool {
    pub fn new(per_endpoint: usize) -> Self {
        Pool {
            per_endpoint: per_endpoint.max(1),
            channels: Mutex::new(HashMap::new()),
        }
    }

    /// Connection `k` (modulo the pool size) to `endpoint`.
    pub fn channel(&self, endpoint: &str, k: usize) -> anyhow::Result<Channel> {
        let mut map = self.channels.lock().unwrap_or_else(|p| p.into_inner());
        if !map.contains_key(endpoint) {
            let mut list = Vec::with_capacity(self.per_endpoint);
            for _ in 0..self.per_endpoint {
                let channel = Endpoint::from_shared(orca_api::client::endpoint_uri(endpoint))?
                    .connect_timeout(Duration::from_secs(5))
                    .tcp_nodelay(true)
                    .connect_lazy();
                list.push(channel);
            }
            map.insert(endpoint.to_string(), list);
        }
        let list = &map[endpoint];
        Ok(list[k % list.len()].clone())
    }
}

/// The registered, connected fleet; its sessions run until [`Fleet::stop`].
pub struct Fleet {
    /// Instance index → ARN.
    pub arns: Vec<String>,
    /// ARN → instance index.
    pub by_arn: HashMap<String, usize>,
    pub stats: Arc<Stats>,
    stop: watch::Sender<bool>,
    sessions: Vec<tokio::task::JoinHandle<()>>,
}

impl Fleet {
    /// Registers every instance through `endpoint` (bounded concurrency).
    pub async fn register(
        spec: FleetSpec,
        pool: &Pool,
        endpoint: &str,
    ) -> anyhow::Result<(Vec<String>, Duration)> {
        let start = Instant::now();
        let mut arns = vec![String::new(); spec.instances];
        let calls = (0..spec.instances).map(|i| {
            let json = serde_json::to_string(&spec.registration(i));
            let channel = pool.channel(endpoint, i);
            async move {
                let json = json?;
                let mut client = AgentClient::new(channel?);
                let mut last = String::new();
                for _ in 0..20 {
                    let mut request = tonic::Request::new(AgentJson { json: json.clone() });
                    request.set_timeout(Duration::from_secs(60));
                    match client.register_container_instance(request).await {
                        Ok(reply) => {
                            let reply: RegistrationReply =
                                serde_json::from_str(&reply.into_inner().json)?;
                            return anyhow::Ok((i, reply.container_instance_arn));
                        }
                        // Only a call that never reached the leader is
                        // retried: another might register the instance twice.
                        Err(status) if status.code() == tonic::Code::Unavailable => {
                            last = format!("{:?}: {}", status.code(), status.message());
                            tokio::time::sleep(Duration::from_millis(200)).await;
                        }
                        Err(status) => {
                            anyhow::bail!(
                                "registering instance {i}: {:?}: {}",
                                status.code(),
                                status.message()
                            )
                        }
                    }
                }
                anyhow::bail!("registering instance {i}: {last}")
            }
        });
        let mut replies = futures::stream::iter(calls).buffer_unordered(REGISTER_CONCURRENCY);
        while let Some(reply) = replies.next().await {
            let (i, arn) = reply?;
            arns[i] = arn;
        }
        Ok((arns, start.elapsed()))
    }

    /// Opens every instance's session with `leader`, `open_rate` a second
    /// (0: all at once), heartbeating every `heartbeat` (staggered over the
    /// interval).
    pub fn connect(
        arns: Vec<String>,
        pool: Arc<Pool>,
        leader: &str,
        heartbeat: Duration,
        open_rate: u64,
    ) -> Self {
        let stats = Arc::new(Stats {
            held: (0..arns.len()).map(|_| AtomicU32::new(0)).collect(),
            ..Stats::default()
        });
        let (stop, stopped) = watch::channel(false);
        let n = arns.len().max(1) as u32;
        let sessions = arns
            .iter()
            .enumerate()
            .map(|(i, arn)| {
                let session = Session {
                    index: i,
                    arn: arn.clone(),
                    pool: pool.clone(),
                    stats: stats.clone(),
                    heartbeat,
                    phase: heartbeat * (i as u32 % n) / n,
                    start_after: if open_rate == 0 {
                        Duration::ZERO
                    } else {
                        Duration::from_secs_f64(i as f64 / open_rate as f64)
                    },
                    stopped: stopped.clone(),
                };
                tokio::spawn(session.hold(leader.to_string()))
            })
            .collect();
        let by_arn = arns
            .iter()
            .enumerate()
            .map(|(i, a)| (a.clone(), i))
            .collect();
        Fleet {
            arns,
            by_arn,
            stats,
            stop,
            sessions,
        }
    }

    /// Waits until the controller at `ecs` (the leader) describes every
    /// instance as connected; the time it took.
    pub async fn wait_connected(
        &self,
        ecs: &mut EcsClient<Channel>,
        within: Duration,
    ) -> anyhow::Result<Duration> {
        let start = Instant::now();
        let deadline = start + within;
        let mut said = start;
        loop {
            let connected = self.count_connected(ecs).await?;
            if connected == self.arns.len() {
                return Ok(start.elapsed());
            }
            if said.elapsed() >= Duration::from_secs(10) {
                said = Instant::now();
                eprintln!(
                    "  {:.0} s: {connected} of {} connected in the leader's view; {} sessions open here, \
                     {} lost, {} redirects",
                    start.elapsed().as_secs_f64(),
                    self.arns.len(),
                    self.stats.open.load(Ordering::Relaxed),
                    self.stats.lost.load(Ordering::Relaxed),
                    self.stats.redirects.load(Ordering::Relaxed)
                );
            }
            anyhow::ensure!(
                Instant::now() < deadline,
                "only {connected} of {} instances connected after {within:?} \
                 ({} sessions open here, {} lost; first loss: {})",
                self.arns.len(),
                self.stats.open.load(Ordering::Relaxed),
                self.stats.lost.load(Ordering::Relaxed),
                self.first_loss()
            );
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    /// Instances the controller lists (paginated) and describes as
    /// connected.
    pub async fn count_connected(&self, ecs: &mut EcsClient<Channel>) -> anyhow::Result<usize> {
        let mut listed = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let mut input = json!({"cluster": "default", "maxResults": 100});
            if let Some(t) = &token {
                input["nextToken"] = json!(t);
            }
            let page = ecs_json(ecs, "ListContainerInstances", &input).await?;
            for arn in page["containerInstanceArns"]
                .as_array()
                .into_iter()
                .flatten()
            {
                listed.push(arn.as_str().unwrap_or_default().to_string());
            }
            match page["nextToken"].as_str() {
                Some(t) => token = Some(t.to_string()),
                None => break,
            }
        }
        let mut connected = 0;
        for chunk in listed.chunks(100) {
            let described = ecs_json(
                ecs,
                "DescribeContainerInstances",
                &json!({"cluster": "default", "containerInstances": chunk}),
            )
            .await?;
            connected += described["containerInstances"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|i| {
                    i["agentConnected"] == true
                        && self
                            .by_arn
                            .contains_key(i["containerInstanceArn"].as_str().unwrap_or_default())
                })
                .count();
        }
        Ok(connected)
    }

    pub fn first_loss(&self) -> String {
        self.stats
            .first_loss
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
            .unwrap_or_else(|| "none".to_string())
    }

    /// Waits until the instances together hold `total` tasks in their
    /// latest assignments; the time it took.
    pub async fn wait_held(&self, total: u64, within: Duration) -> anyhow::Result<Duration> {
        let start = Instant::now();
        loop {
            let held = self.stats.held_total();
            if held == total {
                return Ok(start.elapsed());
            }
            anyhow::ensure!(
                start.elapsed() < within,
                "the instances hold {held} tasks, not {total}, {within:?} after the last RunTask"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Ends every session (closes the streams).
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        for s in self.sessions {
            let _ = tokio::time::timeout(Duration::from_secs(5), s).await;
        }
    }
}

struct Session {
    index: usize,
    arn: String,
    pool: Arc<Pool>,
    stats: Arc<Stats>,
    heartbeat: Duration,
    phase: Duration,
    /// When to open the first session (a ramp, not a herd).
    start_after: Duration,
    stopped: watch::Receiver<bool>,
}

enum Ended {
    Stop,
    Redirect(String),
    Lost(String),
}

fn encode(message: &AgentMessage) -> AgentJson {
    AgentJson {
        json: serde_json::to_string(message).unwrap_or_default(),
    }
}

impl Session {
    /// Holds the session, reopening it (following redirects) until stopped.
    async fn hold(mut self, mut endpoint: String) {
        tokio::select! {
            _ = self.stopped.changed() => return,
            _ = tokio::time::sleep(self.start_after) => {}
        }
        loop {
            match self.once(&endpoint).await {
                Ended::Stop => return,
                Ended::Redirect(leader) => {
                    self.stats.redirects.fetch_add(1, Ordering::Relaxed);
                    endpoint = leader;
                    continue;
                }
                Ended::Lost(why) => self
                    .stats
                    .lose(format!("instance {} at {endpoint}: {why}", self.index)),
            }
            tokio::select! {
                _ = self.stopped.changed() => return,
                _ = tokio::time::sleep(Duration::from_millis(500)) => {}
            }
        }
    }

    async fn once(&mut self, endpoint: &str) -> Ended {
        let channel = match self.pool.channel(endpoint, self.index) {
            Ok(c) => c,
            Err(e) => return Ended::Lost(format!("{e:#}")),
        };
        let (tx, rx) = mpsc::channel::<AgentJson>(4);
        let open = AgentMessage::Open {
            container_instance_arn: self.arn.clone(),
        };
        let _ = tx.send(encode(&open)).await;
        let outbound =
            futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|m| (m, rx)) });
        let response = AgentClient::new(channel).session(outbound).await;
        let mut inbound = match response {
            Ok(r) => r.into_inner(),
            Err(status) => {
                let leader = status
                    .metadata()
                    .get(LEADER_METADATA)
                    .and_then(|v| v.to_str().ok())
                    .filter(|l| *l != endpoint)
                    .map(str::to_string);
                return match leader {
                    Some(l) => Ended::Redirect(l),
                    None => Ended::Lost(format!("{:?}: {}", status.code(), status.message())),
                };
            }
        };
        self.stats.open.fetch_add(1, Ordering::Relaxed);
        let heartbeat = encode(&AgentMessage::Heartbeat);
        let mut ticks =
            tokio::time::interval_at(tokio::time::Instant::now() + self.phase, self.heartbeat);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let ended = loop {
            tokio::select! {
                _ = self.stopped.changed() => break Ended::Stop,
                _ = ticks.tick() => {
                    if tx.send(heartbeat.clone()).await.is_err() {
                        break Ended::Lost("the outbound stream closed".to_string());
                    }
                    self.stats.heartbeats.fetch_add(1, Ordering::Relaxed);
                }
                message = inbound.message() => match message {
                    Ok(Some(m)) => if let Some(why) = self.received(&m.json) {
                        break Ended::Lost(why);
                    },
                    Ok(None) => break Ended::Lost("the controller ended the session".to_string()),
                    Err(status) => break Ended::Lost(format!("{:?}: {}", status.code(), status.message())),
                },
            }
        };
        self.stats.open.fetch_sub(1, Ordering::Relaxed);
        ended
    }

    /// Counts an Assignments message's tasks (by their `taskArn` keys: the
    /// messages are large and the tasks themselves are not needed); a
    /// refusal or an unknown instance ends the session.
    fn received(&self, json: &str) -> Option<String> {
        if json.starts_with(r#"{"type":"assignments""#) {
            let tasks = json.matches(r#""taskArn":"#).count();
            self.stats.held[self.index].store(tasks as u32, Ordering::Relaxed);
            self.stats
                .assignment_messages
                .fetch_add(1, Ordering::Relaxed);
            self.stats
                .assignment_bytes
                .fetch_add(json.len() as u64, Ordering::Relaxed);
            None
        } else if json.starts_with(r#"{"type":"ack""#) {
            None
        } else {
            Some(format!("the controller said {json}"))
        }
    }
}
