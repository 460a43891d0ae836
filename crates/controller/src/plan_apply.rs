//! The leader's plan applier: the one place placements are decided.
//!
//! RunTask on any controller validates the request and hands a [`RunTaskAsk`]
//! to the leader (`Node::run_task`, forwarded over `Raft/LeaderCall` from a
//! follower). The applier, running only on the leader for one term, takes
//! every ask queued meanwhile, resolves them against the newest
//! [`ClusterView`] (task definition, resources, constraints), asks the pure
//! scheduler for a plan, re-checks the plan against the view current at
//! commit time, and commits the runs that still fit as one fenced
//! `Command::ApplyPlan`. Runs that went stale, in the re-check or in `apply`,
//! are planned again on a refreshed view, a bounded number of times.
//! Nomad's worker and plan applier, folded into one loop.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use orca_core::placement::{
    parse_constraints, parse_strategies, PlacementConstraintInput, PlacementStrategyInput,
};
use orca_core::task::{
    host_port_needs, task_resources, Failure, NetworkConfiguration, PortNeed, Resources,
    TaskOverride,
};
use orca_core::task_definition::{PlacementConstraint, Tag, TaskDefinitionStatus};
use orca_core::{ApiError, Exception};
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use crate::clock::Clock;
use crate::node::{Node, ProposeReply};
use crate::scheduler::{self, ports, Misfit, PlacementAsk};
use crate::state::host_ports::{key as port_key, PortKey};
use crate::state::instances::InstanceStatus;
use crate::state::task_addresses::addresses_per_task;
use crate::state::{ClusterView, Command, CommandResult, Outcome, Placement, RunTaskCommand};

/// How many times one ask is planned again after going stale.
const ATTEMPTS: usize = 5;
/// The most asks one plan carries.
const MAX_ASKS_PER_PLAN: usize = 512;

/// A RunTask as the leader receives it: validated by the controller that
/// took the call; ids and times are the leader's to choose.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunTaskAsk {
    pub cluster: String,
    pub family: String,
    pub revision: u32,
    pub count: usize,
    pub overrides: TaskOverride,
    pub started_by: Option<String>,
    pub group: Option<String>,
    pub client_token: Option<String>,
    pub fingerprint: String,
    pub launch_type: String,
    pub network_configuration: Option<NetworkConfiguration>,
    pub tags: Vec<Tag>,
    pub enable_execute_command: bool,
    /// RunTask's runTimeoutSeconds (orca's).
    #[serde(default)]
    pub run_timeout_seconds: Option<u32>,
    pub placement_constraints: Vec<PlacementConstraintInput>,
    pub placement_strategy: Vec<PlacementStrategyInput>,
}

/// The leader's answer to an ask.
#[derive(Debug, Serialize, Deserialize)]
pub enum AskReply {
    Done(Result<Outcome, orca_core::ApiError>),
    /// This controller does not run the applier (not the leader, or not yet):
    /// nothing was decided; ask the leader.
    NotLeader,
}

type Job = (RunTaskAsk, oneshot::Sender<AskReply>);

/// The handle the API submits asks through; one per leadership term.
#[derive(Clone)]
pub struct PlanQueue {
    term: u64,
    queue: mpsc::UnboundedSender<Job>,
}

impl PlanQueue {
    pub fn term(&self) -> u64 {
        self.term
    }

    /// Queues an ask; NotLeader if the applier has stopped.
    pub async fn submit(&self, ask: RunTaskAsk) -> AskReply {
        let (done, reply) = oneshot::channel();
        if self.queue.send((ask, done)).is_err() {
            return AskReply::NotLeader;
        }
        reply.await.unwrap_or(AskReply::NotLeader)
    }
}

/// What the applier needs.
pub struct Applier {
    pub node: Arc<Node>,
    pub clock: Arc<dyn Clock>,
    pub term: u64,
    /// Scheduler calls made here: a follower must never make one.
    pub schedule_calls: Arc<AtomicU64>,
}

/// Starts the applier for `term`; it stops when `token` is cancelled.
pub fn start(applier: Applier, token: CancellationToken) -> PlanQueue {
    let (queue, jobs) = mpsc::unbounded_channel();
    let term = applier.term;
    tokio::spawn(run(applier, jobs, token));
    PlanQueue { term, queue }
}

async fn run(applier: Applier, mut jobs: mpsc::UnboundedReceiver<Job>, token: CancellationToken) {
    let mut plans = 0u64;
    loop {
        let first = tokio::select! {
            _ = token.cancelled() => break,
            job = jobs.recv() => match job { Some(j) => j, None => break },
        };
        let mut batch = vec![first];
        while batch.len() < MAX_ASKS_PER_PLAN {
            match jobs.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        plans += 1;
        applier.place(batch, plans).await;
    }
    // Asks still queued were never planned: the caller asks the next leader.
    jobs.close();
    while let Ok((_, done)) = jobs.try_recv() {
        let _ = done.send(AskReply::NotLeader);
    }
}

/// An ask resolved against a view, ready for the scheduler.
struct Resolved {
    ask: RunTaskAsk,
    done: oneshot::Sender<AskReply>,
    placement: PlacementAsk,
    /// The host ports each task holds (bridge and host mode).
    port_needs: Vec<PortNeed>,
    containers: usize,
    /// A clientToken seen before: apply returns its tasks; place nothing.
    token_known: bool,
}

impl Applier {
    async fn place(&self, batch: Vec<Job>, plan_number: u64) {
        let mut pending = batch;
        for attempt in 0..ATTEMPTS {
            let view = self.node.view();
            let mut resolved = Vec::with_capacity(pending.len());
            for (ask, done) in pending.drain(..) {
                match resolve(&view, &ask) {
                    Ok((placement, port_needs, containers, token_known)) => {
                        resolved.push(Resolved {
                            ask,
                            done,
                            placement,
                            port_needs,
                            containers,
                            token_known,
                        })
                    }
                    Err(e) => {
                        let _ = done.send(AskReply::Done(Err(e)));
                    }
                }
            }
            if resolved.is_empty() {
                return;
            }
            let asks: Vec<PlacementAsk> = resolved
                .iter()
                .map(|r| {
                    let mut a = r.placement.clone();
                    if r.token_known {
                        a.count = 0;
                    }
                    a
                })
                .collect();
            let seed = plan_number.wrapping_mul(31).wrapping_add(attempt as u64);
            self.schedule_calls.fetch_add(1, Ordering::Relaxed);
            let plan = scheduler::schedule(&view, &asks, seed);
            let created_at = self.clock.now();
            // Every static port of the plan first, so no dynamic port
            // chosen for one run is a static port of a later one.
            let mut plan_ports: PlanPorts = BTreeMap::new();
            for (r, planned) in resolved.iter().zip(&plan.asks) {
                for instance in &planned.instances {
                    let (held, _) = plan_ports.entry(instance.clone()).or_default();
                    held.extend(r.placement.static_ports.iter().copied());
                }
            }
            let mut runs = Vec::with_capacity(resolved.len());
            for (r, planned) in resolved.iter().zip(plan.asks) {
                runs.push(run_command(r, planned, created_at, &view, &mut plan_ports));
            }
            // Re-check against whatever was applied while planning; runs
            // that no longer fit wait for the next attempt.
            let newest = self.node.view();
            let unchanged = newest.applied_index() == view.applied_index();
            let fits: Vec<bool> = {
                let mut taken = BTreeMap::new();
                let mut ports = BTreeSet::new();
                resolved
                    .iter()
                    .zip(&runs)
                    .map(|(r, run)| {
                        let need = (r.placement.need, r.placement.addresses);
                        unchanged || still_fits(&newest, run, need, &mut taken, &mut ports)
                    })
                    .collect()
            };
            let mut committing = Vec::new();
            let mut runs_to_commit = Vec::new();
            for ((r, run), fits) in resolved.into_iter().zip(runs).zip(fits) {
                if fits {
                    runs_to_commit.push(run);
                    committing.push(r);
                } else {
                    pending.push((r.ask, r.done));
                }
            }
            if !runs_to_commit.is_empty() {
                let command = Command::ApplyPlan {
                    runs: runs_to_commit,
                    decided_in_term: self.term,
                };
                match self.node.propose_here(command).await {
                    Ok(ProposeReply::Done(CommandResult::Applied(Outcome::Plan(results)))) => {
                        for (r, result) in committing.into_iter().zip(results) {
                            match result {
                                CommandResult::Applied(Outcome::PlacementConflict) => {
                                    pending.push((r.ask, r.done))
                                }
                                CommandResult::Applied(outcome) => {
                                    let _ = r.done.send(AskReply::Done(Ok(outcome)));
                                }
                                CommandResult::Refused(e) => {
                                    let _ = r.done.send(AskReply::Done(Err(e)));
                                }
                                other => {
                                    let _ = r.done.send(AskReply::Done(Err(ApiError::server(
                                        format!("unexpected result of a plan: {other:?}"),
                                    ))));
                                }
                            }
                        }
                    }
                    Ok(ProposeReply::NotLeader) => {
                        // Nothing was proposed: the next leader places them.
                        for r in committing {
                            let _ = r.done.send(AskReply::NotLeader);
                        }
                        for (_, done) in pending.drain(..) {
                            let _ = done.send(AskReply::NotLeader);
                        }
                        return;
                    }
                    Ok(ProposeReply::Done(other)) => {
                        let error = match other {
                            CommandResult::Refused(e) => e,
                            other => {
                                ApiError::server(format!("unexpected result of a plan: {other:?}"))
                            }
                        };
                        for r in committing {
                            let _ = r.done.send(AskReply::Done(Err(error.clone())));
                        }
                    }
                    Err(e) => {
                        for r in committing {
                            let _ = r.done.send(AskReply::Done(Err(e.clone())));
                        }
                    }
                }
            }
            if pending.is_empty() {
                return;
            }
            tracing::debug!(
                attempt,
                stale = pending.len(),
                "placements went stale: planning again"
            );
        }
        for (_, done) in pending {
            let _ = done.send(AskReply::Done(Err(ApiError::server(
                "the placements kept going stale under concurrent changes; try again",
            ))));
        }
    }
}

/// Checks what the controller that took the call checked, against the
/// leader's view, and turns the ask into the scheduler's terms.
fn resolve(
    view: &ClusterView,
    ask: &RunTaskAsk,
) -> Result<(PlacementAsk, Vec<PortNeed>, usize, bool), ApiError> {
    view.active_cluster(&ask.cluster)?;
    let token_known = ask.client_token.as_ref().is_some_and(|t| {
        view.client_tokens
            .contains_key(&(ask.cluster.clone(), t.clone()))
    });
    let definition = view
        .families
        .get(&ask.family)
        .and_then(|f| f.revisions.get(&ask.revision))
        .map(|s| &s.task_definition)
        .ok_or_else(|| {
            crate::state::task_definitions::task_definition_not_found(
                &ask.family,
                Some(ask.revision),
            )
        })?;
    if definition.status != TaskDefinitionStatus::Active && !token_known {
        return Err(ApiError::field(
            Exception::ClientException,
            "taskDefinition",
            format!(
                "TaskDefinition is inactive: {}",
                definition.task_definition_arn
            ),
        ));
    }
    if !token_known && !view.instances.values().any(|i| i.cluster == ask.cluster) {
        return Err(ApiError::new(
            Exception::InvalidParameterException,
            "No Container Instances were found in your cluster.",
        ));
    }
    let from_definition: Vec<PlacementConstraintInput> = definition
        .spec
        .placement_constraints
        .as_deref()
        .unwrap_or_default()
        .iter()
        .map(definition_constraint)
        .collect();
    let mut constraints =
        parse_constraints(&from_definition, "taskDefinition.placementConstraints")?;
    constraints.extend(parse_constraints(
        &ask.placement_constraints,
        "placementConstraints",
    )?);
    let strategies = parse_strategies(&ask.placement_strategy, "placementStrategy")?;
    let port_needs = host_port_needs(definition);
    let placement = PlacementAsk {
        cluster: ask.cluster.clone(),
        need: task_resources(definition, &ask.overrides),
        count: ask.count,
        group: ask
            .group
            .clone()
            .unwrap_or_else(|| format!("family:{}", ask.family)),
        constraints,
        strategies,
        required_attributes: definition.requires_attributes.clone(),
        static_ports: port_needs
            .iter()
            .filter_map(|n| n.host_port.map(|h| (n.protocol, h)))
            .collect(),
        addresses: addresses_per_task(
            definition.spec.effective_network_mode(),
            definition.spec.container_definitions.len(),
        ),
    };
    Ok((
        placement,
        port_needs,
        definition.spec.container_definitions.len(),
        token_known,
    ))
}

/// A task definition's placement constraint in RunTask's input shape.
pub(crate) fn definition_constraint(c: &PlacementConstraint) -> PlacementConstraintInput {
    PlacementConstraintInput {
        r#type: c.r#type.to_string(),
        expression: c.expression.clone(),
    }
}

fn new_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// Per instance, the host ports a plan's placements hold there and the
/// dynamic-port cursor after them.
type PlanPorts = BTreeMap<String, (BTreeSet<PortKey>, Option<u16>)>;

fn run_command(
    r: &Resolved,
    planned: scheduler::AskPlan,
    created_at: orca_core::task_definition::Timestamp,
    view: &ClusterView,
    plan_ports: &mut PlanPorts,
) -> RunTaskCommand {
    let ask = &r.ask;
    let mut failures = planned.failures;
    let mut placements = Vec::with_capacity(planned.instances.len());
    for instance_id in planned.instances {
        let Some(instance) = view.instances.get(&instance_id) else {
            continue;
        };
        let (held, cursor) = plan_ports.entry(instance_id.clone()).or_default();
        let start = cursor.unwrap_or(instance.next_dynamic_port);
        let choice = ports::assign(
            &r.port_needs,
            |k| !instance.port_free(k) || held.contains(&k),
            start,
        );
        match choice {
            Ok(choice) => {
                held.extend(choice.bindings.iter().map(port_key));
                if choice.cursor.is_some() {
                    *cursor = choice.cursor;
                }
                placements.push(Placement {
                    task_id: new_id(),
                    instance_id,
                    container_ids: (0..r.containers).map(|_| new_id()).collect(),
                    host_ports: choice.bindings,
                    port_cursor: choice.cursor,
                });
            }
            Err(e) => failures.push(Failure {
                arn: Some(instance.arn.clone()),
                reason: Misfit::Ports.reason().to_string(),
                detail: Some(e.to_string()),
            }),
        }
    }
    RunTaskCommand {
        cluster: ask.cluster.clone(),
        family: ask.family.clone(),
        revision: ask.revision,
        overrides: ask.overrides.clone(),
        started_by: ask.started_by.clone(),
        group: ask.group.clone(),
        client_token: ask.client_token.clone(),
        fingerprint: ask.fingerprint.clone(),
        launch_type: ask.launch_type.clone(),
        network_configuration: ask.network_configuration.clone(),
        tags: ask.tags.clone(),
        enable_execute_command: ask.enable_execute_command,
        run_timeout_seconds: ask.run_timeout_seconds,
        created_at,
        placements,
        failures,
    }
}

/// Whether a run's placements still fit `view` after the runs before it
/// (`taken`); apply checks again.
fn still_fits<'r>(
    view: &ClusterView,
    run: &'r RunTaskCommand,
    (need, addresses): (Resources, u32),
    taken: &mut BTreeMap<&'r str, (Resources, u32)>,
    ports: &mut BTreeSet<(&'r str, PortKey)>,
) -> bool {
    run.placements.iter().all(|p| {
        let Some(instance) = view.instances.get(&p.instance_id) else {
            return false;
        };
        let (used, used_addresses) = taken.entry(p.instance_id.as_str()).or_default();
        *used = used.plus(need);
        *used_addresses = used_addresses.saturating_add(addresses);
        let ports_free = p.host_ports.iter().all(|b| {
            let key = port_key(b);
            instance.port_free(key) && ports.insert((p.instance_id.as_str(), key))
        });
        instance.status == InstanceStatus::Active
            && instance.agent_connected
            && used.fits_in(instance.remaining)
            && *used_addresses <= instance.free_addresses()
            && ports_free
    })
}

#[cfg(test)]
mod tests {
    use orca_core::arn::ArnContext;
    use orca_core::task::{HostPortBinding, PortNeed};
    use orca_core::task_definition::TransportProtocol::Tcp;

    use super::*;
    use crate::state::ClusterState;

    fn resolved(needs: Vec<PortNeed>) -> Resolved {
        let (done, _reply) = oneshot::channel();
        let ask = RunTaskAsk {
            cluster: "default".to_string(),
            family: "web".to_string(),
            revision: 1,
            count: 1,
            overrides: TaskOverride::default(),
            started_by: None,
            group: None,
            client_token: None,
            fingerprint: String::new(),
            launch_type: "EC2".to_string(),
            network_configuration: None,
            tags: Vec::new(),
            enable_execute_command: false,
            run_timeout_seconds: None,
            placement_constraints: Vec::new(),
            placement_strategy: Vec::new(),
        };
        let static_ports = needs
            .iter()
            .filter_map(|n| n.host_port.map(|h| (n.protocol, h)))
            .collect();
        Resolved {
            ask,
            done,
            placement: PlacementAsk {
                cluster: "default".to_string(),
                need: Resources::default(),
                count: 1,
                group: "family:web".to_string(),
                constraints: Vec::new(),
                strategies: Vec::new(),
                required_attributes: Vec::new(),
                static_ports,
                addresses: 1,
            },
            port_needs: needs,
            containers: 1,
            token_known: false,
        }
    }

    fn need(host_port: Option<u16>) -> PortNeed {
        PortNeed {
            container_name: "app".to_string(),
            container_port: 80,
            protocol: Tcp,
            host_port,
        }
    }

    fn hosts(run: &RunTaskCommand) -> Vec<Vec<u16>> {
        run.placements
            .iter()
            .map(|p| p.host_ports.iter().map(|b| b.host_port).collect())
            .collect()
    }

    /// Ports of one plan on one instance: a dynamic port never takes a
    /// later run's static port, nor one an earlier run of the plan took,
    /// and the cursor moves on from run to run.
    #[test]
    fn dynamic_ports_of_a_plan_avoid_its_static_ports_and_each_other() {
        let mut state = ClusterState::new(ArnContext::default());
        state.apply(
            1,
            Command::RegisterContainerInstance {
                instance_id: "a".to_string(),
                registration: orca_core::agent_protocol::Registration {
                    cluster: "default".to_string(),
                    container_instance_arn: None,
                    instance_id: None,
                    hostname: "a".to_string(),
                    cpu: 1024,
                    memory: 1024,
                    attributes: Vec::new(),
                    agent_version: "t".to_string(),
                    runtime_version: "t".to_string(),
                    task_subnet: None,
                    reserved_ports: Vec::new(),
                    node_address: None,
                    node_api_address: None,
                    overlay: Default::default(),
                },
                at: orca_core::task_definition::Timestamp(1),
            },
        );
        // A task outside the plan holds 32769.
        if let Some(record) = state.instances.get_mut("a") {
            record.host_ports.take(
                "old",
                &[HostPortBinding {
                    container_name: "app".to_string(),
                    container_port: 80,
                    host_port: 32769,
                    protocol: Tcp,
                }],
            );
        }
        let view = ClusterView::new(1, state);
        let dynamic = resolved(vec![need(None)]);
        let fixed = resolved(vec![need(Some(32768))]);
        let planned = |n: usize| scheduler::AskPlan {
            instances: vec!["a".to_string(); n],
            failures: Vec::new(),
        };
        let mut plan_ports: PlanPorts = BTreeMap::new();
        plan_ports
            .entry("a".to_string())
            .or_default()
            .0
            .insert((Tcp, 32768));
        let at = orca_core::task_definition::Timestamp(1);
        let first = run_command(&dynamic, planned(2), at, &view, &mut plan_ports);
        let second = run_command(&fixed, planned(1), at, &view, &mut plan_ports);
        assert_eq!(hosts(&first), vec![vec![32770], vec![32771]]);
        assert_eq!(first.placements[1].port_cursor, Some(32772));
        assert_eq!(hosts(&second), vec![vec![32768]]);
        assert_eq!(second.placements[0].port_cursor, None);
    }

    /// The re-check before commit counts a plan's task addresses across its
    /// runs, as `apply` does: a plan made before the subnet filled up is
    /// planned again instead of failing on the agent.
    #[test]
    fn the_recheck_refuses_runs_past_the_free_addresses() {
        let mut state = ClusterState::new(ArnContext::default());
        let mut registration = orca_core::agent_protocol::Registration {
            cluster: "default".to_string(),
            container_instance_arn: None,
            instance_id: None,
            hostname: "a".to_string(),
            cpu: 1024,
            memory: 1024,
            attributes: Vec::new(),
            agent_version: "t".to_string(),
            runtime_version: "t".to_string(),
            // Five task addresses.
            task_subnet: Some("10.9.0.0/29".to_string()),
            reserved_ports: Vec::new(),
            node_address: None,
            node_api_address: None,
            overlay: Default::default(),
        };
        for (id, command) in [
            ("a", registration.clone()),
            ("b", {
                registration.task_subnet = Some("10.9.0.8/29".to_string());
                registration
            }),
        ] {
            state.apply(
                1,
                Command::RegisterContainerInstance {
                    instance_id: id.to_string(),
                    registration: command,
                    at: orca_core::task_definition::Timestamp(1),
                },
            );
            state.apply(
                1,
                Command::SetAgentConnected {
                    instance_id: id.to_string(),
                    connected: true,
                    decided_in_term: 1,
                },
            );
        }
        let view = ClusterView::new(1, state);
        let at = orca_core::task_definition::Timestamp(1);
        let run_on = |instances: &[&str]| {
            let planned = scheduler::AskPlan {
                instances: instances.iter().map(|i| i.to_string()).collect(),
                failures: Vec::new(),
            };
            run_command(
                &resolved(Vec::new()),
                planned,
                at,
                &view,
                &mut BTreeMap::new(),
            )
        };
        let bridge = (Resources::default(), 3);
        let (first, second) = (run_on(&["a"]), run_on(&["a", "b"]));
        let mut taken = BTreeMap::new();
        let mut ports = BTreeSet::new();
        assert!(still_fits(&view, &first, bridge, &mut taken, &mut ports));
        // a has 2 of its 5 left after the first run's 3.
        assert!(!still_fits(&view, &second, bridge, &mut taken, &mut ports));
        // Alone, the second run fits (3 on a, 3 on b).
        let mut taken = BTreeMap::new();
        assert!(still_fits(&view, &second, bridge, &mut taken, &mut ports));
        assert_eq!(taken.get("a"), Some(&(Resources::default(), 3)));
        // Two awsvpc tasks fit where a bridge task took 3; a third does not.
        let awsvpc = (Resources::default(), 1);
        let (two, third) = (run_on(&["a", "a"]), run_on(&["a"]));
        assert!(still_fits(&view, &two, awsvpc, &mut taken, &mut ports));
        assert_eq!(taken.get("a"), Some(&(Resources::default(), 5)));
        assert!(!still_fits(&view, &third, awsvpc, &mut taken, &mut ports));
    }
}
