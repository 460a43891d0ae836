//! The reconciler driven against a simulated cluster: the real `apply`, the
//! real scheduler, and agents simulated by reports. Each test advances a
//! clock it owns and checks ECS's rules at every step.

use orca_core::agent_protocol::{ContainerStateReport, Registration, TaskStateReport};
use orca_core::service::{
    DeploymentCircuitBreaker, DeploymentConfiguration, RolloutState, SchedulingStrategy,
    ServiceStatus, ThresholdConfiguration, ThresholdType,
};
use orca_core::task::{ContainerStatus, HealthStatus, StopCode, TaskStatus};
use orca_core::task_definition::{parse_register_input, Attribute, Timestamp};
use proptest::prelude::*;

use super::*;
use crate::scheduler::{self, PlacementAsk};
use crate::state::instances::InstanceStatus;
use crate::state::services::{ServiceStepCommand, ServiceUpdate};
use crate::state::{ClusterState, Command, CommandResult, Outcome, Placement, RunTaskCommand};

const TICK_MS: i64 = 1_000;

struct Sim {
    state: ClusterState,
    now: Timestamp,
    timers: Timers,
    next_task: u64,
    /// Revisions whose tasks fail before RUNNING.
    broken: Vec<u32>,
    instances: usize,
}

fn ok(result: CommandResult) -> Outcome {
    match result {
        CommandResult::Applied(o) => o,
        other => panic!("refused: {other:?}"),
    }
}

impl Sim {
    /// `zones` instances per zone name, each with room for 20 tasks.
    fn new(zones: &[(&str, usize)]) -> Sim {
        let mut state = ClusterState::new(Default::default());
        for revision in 1..=3 {
            let spec = parse_register_input(&format!(
                r#"{{"family":"web","containerDefinitions":[{{"name":"app","image":"img:{revision}","memory":100}}]}}"#
            ))
            .expect("valid")
            .spec;
            ok(state.apply(
                1,
                Command::RegisterTaskDefinition {
                    spec: Box::new(spec),
                    tags: Vec::new(),
                    registered_at: Timestamp(0),
                    registered_by: "t".into(),
                },
            ));
        }
        let mut sim = Sim {
            state,
            now: Timestamp(1_000_000),
            timers: Timers {
                healthy_after_running_ms: 3_000,
                throttle_base_ms: 10_000,
                throttle_max_ms: 80_000,
                event_dedupe_ms: 3_600_000,
            },
            next_task: 0,
            broken: Vec::new(),
            instances: 0,
        };
        for (zone, count) in zones {
            for _ in 0..*count {
                sim.add_instance(zone);
            }
        }
        sim
    }

    /// Registers a connected instance in `zone`; returns its id.
    fn add_instance(&mut self, zone: &str) -> String {
        self.instances += 1;
        let id = format!("i{:02}", self.instances);
        ok(self.state.apply(
            1,
            Command::RegisterContainerInstance {
                instance_id: id.clone(),
                registration: Registration {
                    cluster: "default".into(),
                    container_instance_arn: None,
                    hostname: id.clone(),
                    cpu: 20 * 1024,
                    memory: 2000,
                    attributes: vec![Attribute {
                        name: scheduler::AVAILABILITY_ZONE.into(),
                        value: Some(zone.to_string()),
                        target_type: None,
                        target_id: None,
                    }],
                    agent_version: "t".into(),
                    runtime_version: "t".into(),
                    task_subnet: None,
                    reserved_ports: Vec::new(),
                    node_address: None,
                    node_api_address: None,
                    overlay: Default::default(),
                    instance_id: None,
                },
                at: Timestamp(0),
            },
        ));
        ok(self.state.apply(
            1,
            Command::SetAgentConnected {
                instance_id: id.clone(),
                connected: true,
                decided_in_term: 1,
            },
        ));
        id
    }

    fn create(&mut self, desired: u32, configuration: DeploymentConfiguration) {
        self.create_with(
            SchedulingStrategy::Replica,
            desired,
            configuration,
            Vec::new(),
        );
    }

    fn create_with(
        &mut self,
        strategy: SchedulingStrategy,
        desired: u32,
        configuration: DeploymentConfiguration,
        placement_constraints: Vec<orca_core::placement::PlacementConstraintInput>,
    ) {
        let record = crate::state::ServiceRecord {
            name: "web".into(),
            cluster: "default".into(),
            status: ServiceStatus::Active,
            strategy,
            desired_count: desired,
            deployments: Vec::new(),
            configuration,
            placement_constraints,
            placement_strategy: Vec::new(),
            network_configuration: None,
            health_check_grace_period_seconds: None,
            launch_type: None,
            enable_execute_command: false,
            infrastructure: Default::default(),
            tags: Vec::new(),
            created_at: self.now,
            created_by: "t".into(),
            client_token: None,
            fingerprint: String::new(),
            events: Vec::new(),
            events_recorded: 0,
            throttle: Default::default(),
            last_completed: None,
            version: 0,
            discovery: None,
        };
        ok(self.state.apply(
            1,
            Command::CreateService {
                service: Box::new(record),
                task_definition: orca_core::arn::TaskDefinitionRef {
                    family: "web".into(),
                    revision: Some(1),
                },
                deployment_id: "ecs-svc/0000000000000000001".into(),
            },
        ));
    }

    fn update(&mut self, change: impl FnOnce(&mut ServiceUpdate)) {
        let mut update = ServiceUpdate {
            cluster: "default".into(),
            name: "web".into(),
            desired_count: None,
            task_definition: None,
            configuration: None,
            placement_constraints: None,
            placement_strategy: None,
            network_configuration: None,
            health_check_grace_period_seconds: None,
            enable_execute_command: None,
            force_new_deployment: false,
            deployment_id: format!("ecs-svc/{:019}", self.now.0),
            at: self.now,
        };
        change(&mut update);
        ok(self
            .state
            .apply(1, Command::UpdateService(Box::new(update))));
    }

    fn service(&self) -> &crate::state::ServiceRecord {
        &self.state.services["default/web"]
    }

    fn tasks(&self) -> Vec<&TaskRecord> {
        self.state.service_tasks(self.service())
    }

    /// One reconciler step, committed, and its starts placed by the real
    /// scheduler and applied.
    fn reconcile(&mut self) -> Step {
        let view = ClusterView::new(0, self.state.clone());
        let service = self.service().clone();
        let tasks = view.service_tasks(&service);
        let step = reconcile(&view, &service, &tasks, self.now, &self.timers);
        if step.changes(&service) {
            let outcome = ok(self.state.apply(
                1,
                Command::ServiceStep {
                    step: Box::new(step.command(&service, self.now)),
                    decided_in_term: 1,
                },
            ));
            assert!(matches!(outcome, Outcome::Service(_)), "{outcome:?}");
        }
        if let Some(start) = &step.start {
            self.start(start);
        }
        step
    }

    fn start(&mut self, start: &StartOrder) {
        let view = ClusterView::new(0, self.state.clone());
        let ask = PlacementAsk {
            cluster: "default".into(),
            need: orca_core::task::Resources {
                cpu: 0,
                memory: 100,
            },
            count: start.count as usize,
            group: "service:web".into(),
            constraints: Vec::new(),
            strategies: Vec::new(),
            required_attributes: Vec::new(),
            static_ports: Vec::new(),
            addresses: 1,
        };
        let plan = scheduler::schedule(&view, &[ask], self.now.0 as u64);
        let chosen = if start.instances.is_empty() {
            plan.asks[0].instances.clone()
        } else {
            start.instances.clone()
        };
        let placements = chosen
            .iter()
            .map(|instance| {
                self.next_task += 1;
                Placement {
                    task_id: format!("t{:04}", self.next_task),
                    instance_id: instance.clone(),
                    container_ids: vec![format!("c{:04}", self.next_task)],
                    host_ports: Vec::new(),
                    port_cursor: None,
                }
            })
            .collect();
        ok(self.state.apply(
            1,
            Command::RunTask(Box::new(RunTaskCommand {
                cluster: "default".into(),
                family: start.family.clone(),
                revision: start.revision,
                overrides: Default::default(),
                started_by: Some(start.deployment_id.clone()),
                group: Some("service:web".into()),
                client_token: None,
                fingerprint: String::new(),
                launch_type: "EC2".into(),
                network_configuration: None,
                tags: Vec::new(),
                enable_execute_command: false,
                run_timeout_seconds: None,
                created_at: self.now,
                placements,
                failures: Vec::new(),
            })),
        ));
    }

    fn report(&mut self, task: &TaskRecord, status: TaskStatus, code: Option<StopCode>) {
        let started = status == TaskStatus::Running
            || (status == TaskStatus::Stopped && task.times.started_at.is_some());
        let report = TaskStateReport {
            task_arn: self.state.arn.task("default", &task.id),
            last_status: status,
            containers: vec![ContainerStateReport {
                name: "app".into(),
                last_status: if status == TaskStatus::Stopped {
                    ContainerStatus::Stopped
                } else {
                    ContainerStatus::Running
                },
                exit_code: (status == TaskStatus::Stopped).then_some(1),
                reason: None,
                runtime_id: None,
                image_digest: None,
                health_status: Default::default(),
                health_output: None,
                health_exit_code: None,
                restart_count: 0,
            }],
            network: None,
            pull_started_at: None,
            pull_stopped_at: None,
            started_at: started.then_some(task.times.started_at.unwrap_or(self.now)),
            stopping_at: None,
            execution_stopped_at: None,
            stopped_at: (status == TaskStatus::Stopped).then_some(self.now),
            stop_code: code,
            stopped_reason: code.map(|_| "Essential container in task exited".into()),
            health_status: Default::default(),
        };
        ok(self.state.apply(
            1,
            Command::ReportTaskStates {
                instance_id: task.instance_id.clone(),
                reports: vec![report],
            },
        ));
    }

    /// The simulated agents: pending tasks start (or fail before RUNNING
    /// when their revision is broken), tasks asked to stop stop.
    fn agents(&mut self) {
        let tasks: Vec<TaskRecord> = self.tasks().into_iter().cloned().collect();
        for task in tasks {
            if task.is_stopped() {
                continue;
            }
            if task.desired_status == TaskStatus::Stopped {
                self.report(&task, TaskStatus::Stopped, None);
            } else if task.last_status.is_pending() {
                if self.broken.contains(&task.revision) {
                    self.report(
                        &task,
                        TaskStatus::Stopped,
                        Some(StopCode::TaskFailedToStart),
                    );
                } else {
                    self.report(&task, TaskStatus::Running, None);
                }
            }
        }
    }

    /// Healthy tasks now, as the reconciler counts them.
    fn healthy(&self) -> usize {
        let view = ClusterView::new(0, self.state.clone());
        let judge = health::Judge::new(&view, self.service(), self.now, &self.timers);
        self.tasks().iter().filter(|t| judge.is_healthy(t)).count()
    }

    fn live_of_revision(&self, revision: u32) -> usize {
        self.tasks()
            .iter()
            .filter(|t| t.is_live())
            .filter(|t| t.revision == revision)
            .count()
    }

    /// Runs reconcile and agents for `ticks` seconds, checking after each
    /// step that the healthy count never fell below `floor` once reached.
    fn run(&mut self, ticks: usize, floor: usize) {
        let mut reached = false;
        for _ in 0..ticks {
            self.reconcile();
            let healthy = self.healthy();
            reached |= healthy >= floor;
            assert!(
                !reached || healthy >= floor,
                "healthy tasks fell to {healthy}, below the minimum {floor}, at {:?}",
                self.now
            );
            self.agents();
            self.now = Timestamp(self.now.0 + TICK_MS);
        }
    }

    fn events(&self) -> Vec<String> {
        self.service()
            .events
            .iter()
            .map(|e| e.message.clone())
            .collect()
    }

    fn primary_rollout(&self) -> RolloutState {
        self.service().deployments[0].rollout
    }
}

fn configuration(min: u32, max: u32) -> DeploymentConfiguration {
    DeploymentConfiguration {
        minimum_healthy_percent: Some(min),
        maximum_percent: Some(max),
        ..Default::default()
    }
}

fn with_breaker(kind: ThresholdType, value: u32, rollback: bool) -> DeploymentConfiguration {
    DeploymentConfiguration {
        deployment_circuit_breaker: Some(DeploymentCircuitBreaker {
            enable: true,
            rollback,
            reset_on_healthy_task: None,
            threshold_configuration: Some(ThresholdConfiguration { kind, value }),
        }),
        ..Default::default()
    }
}

fn revision(sim: &mut Sim, revision: u32) {
    sim.update(|u| {
        u.task_definition = Some(orca_core::arn::TaskDefinitionRef {
            family: "web".into(),
            revision: Some(revision),
        });
    });
}

#[test]
fn a_new_service_reaches_steady_state_spread_over_zones() {
    let mut sim = Sim::new(&[("a", 2), ("b", 2), ("c", 2)]);
    sim.create(3, DeploymentConfiguration::default());
    sim.run(10, 0);
    assert_eq!(sim.healthy(), 3);
    assert_eq!(sim.primary_rollout(), RolloutState::Completed);
    assert_eq!(sim.service().last_completed, Some(("web".into(), 1)));
    let zones: std::collections::BTreeSet<&str> = sim
        .tasks()
        .iter()
        .map(|t| {
            sim.state.instances[&t.instance_id]
                .attribute(scheduler::AVAILABILITY_ZONE)
                .and_then(|a| a.value.as_deref())
                .unwrap_or("")
        })
        .collect();
    assert_eq!(zones.len(), 3, "one task per zone");
    let events = sim.events();
    assert_eq!(events[0], "(service web) has reached a steady state.");
    assert_eq!(
        events
            .iter()
            .filter(|e| e.ends_with("steady state."))
            .count(),
        1,
        "a lasting steady state is reported once: {events:?}"
    );
    // Every task carries the deployment and the service's group.
    for t in sim.tasks() {
        assert_eq!(t.started_by.as_deref(), Some("ecs-svc/0000000000000000001"));
        assert_eq!(t.group, "service:web");
    }
}

#[test]
fn scaling_up_and_down_keeps_the_desired_count_and_scales_in_from_the_fullest_zone() {
    let mut sim = Sim::new(&[("a", 1), ("b", 1)]);
    sim.create(2, DeploymentConfiguration::default());
    sim.run(8, 0);
    sim.update(|u| u.desired_count = Some(5));
    sim.run(8, 2);
    assert_eq!(sim.live_of_revision(1), 5);
    sim.update(|u| u.desired_count = Some(2));
    sim.run(8, 2);
    assert_eq!(sim.live_of_revision(1), 2);
    let per_instance: Vec<usize> = ["i01", "i02"]
        .iter()
        .map(|i| {
            sim.tasks()
                .iter()
                .filter(|t| !t.is_stopped() && t.instance_id == *i)
                .count()
        })
        .collect();
    assert_eq!(per_instance, vec![1, 1], "scale-in keeps the spread");
}

#[test]
fn a_stopped_task_is_replaced() {
    let mut sim = Sim::new(&[("a", 3)]);
    sim.create(3, DeploymentConfiguration::default());
    sim.run(8, 0);
    let victim = sim.tasks()[0].clone();
    sim.report(
        &victim,
        TaskStatus::Stopped,
        Some(StopCode::EssentialContainerExited),
    );
    sim.run(8, 0);
    assert_eq!(sim.live_of_revision(1), 3);
    assert!(sim
        .events()
        .iter()
        .any(|e| e == "(service web) has reached a steady state."));
}

fn rolling_update(min: u32, max: u32, desired: u32) -> Sim {
    let mut sim = Sim::new(&[("a", 2), ("b", 2)]);
    sim.create(desired, configuration(min, max));
    sim.run(10, 0);
    assert_eq!(sim.healthy(), desired as usize);
    revision(&mut sim, 2);
    let floor = sim.service().rules().minimum_healthy(desired) as usize;
    let ceiling = sim.service().rules().maximum_total(desired) as usize;
    for _ in 0..40 {
        sim.run(1, floor);
        let live = sim.tasks().iter().filter(|t| t.is_live()).count();
        assert!(
            live <= ceiling,
            "{live} tasks wanted running, above the maximum {ceiling}"
        );
    }
    assert_eq!(sim.live_of_revision(2), desired as usize);
    assert_eq!(sim.live_of_revision(1), 0);
    assert_eq!(sim.primary_rollout(), RolloutState::Completed);
    assert_eq!(
        sim.service().deployments.len(),
        1,
        "the old deployment is gone"
    );
    sim
}

#[test]
fn rolling_update_at_100_200() {
    rolling_update(100, 200, 4);
}

#[test]
fn rolling_update_at_50_200() {
    rolling_update(50, 200, 4);
}

#[test]
fn rolling_update_at_0_100() {
    rolling_update(0, 100, 4);
}

#[test]
fn a_deadlocked_configuration_says_so_and_changes_nothing() {
    let mut sim = Sim::new(&[("a", 2)]);
    sim.create(2, configuration(100, 100));
    sim.run(8, 0);
    revision(&mut sim, 2);
    sim.run(5, 2);
    assert_eq!(sim.live_of_revision(1), 2);
    assert_eq!(sim.live_of_revision(2), 0);
    let deadlock = "(service web) was unable to stop or start tasks during a deployment because of the service deployment configuration. Update the minimumHealthyPercent or maximumPercent value and try again.";
    let events = sim.events();
    assert_eq!(events[0], deadlock);
    assert_eq!(
        events.iter().filter(|e| *e == deadlock).count(),
        1,
        "reported once"
    );
}

#[test]
fn the_breaker_trips_at_the_bounded_threshold_and_rolls_back() {
    let mut sim = Sim::new(&[("a", 2), ("b", 2)]);
    sim.create(3, with_breaker(ThresholdType::BoundedPercent, 50, true));
    sim.run(8, 0);
    let kept: Vec<String> = sim.tasks().iter().map(|t| t.id.clone()).collect();
    sim.broken.push(2);
    revision(&mut sim, 2);
    let failing = sim.service().deployments[0].id.clone();
    // The throttle spaces the attempts; give it time.
    sim.run(200, 3);
    let service = sim.service();
    assert_eq!(
        service.deployments[0].revision, 1,
        "rolled back to revision 1"
    );
    assert_eq!(service.deployments[0].rollout, RolloutState::Completed);
    assert_eq!(sim.live_of_revision(1), 3);
    assert!(
        sim.events().iter().any(|e| e
            == &format!(
                "(service web) (deployment {failing}) deployment failed: tasks failed to start."
            )),
        "{:?}",
        sim.events()
    );
    // clamp(ceil(0.5 × 3), 3, 200) = 3 failures tripped it.
    let failed_starts = sim
        .tasks()
        .iter()
        .filter(|t| t.revision == 2 && t.is_stopped())
        .count();
    assert_eq!(failed_starts, 3);
    // The rollback adopted the revision-1 tasks still running: with 100/200
    // none of them was stopped, so all three are the originals.
    let live: Vec<String> = sim
        .tasks()
        .iter()
        .filter(|t| !t.is_stopped())
        .map(|t| t.id.clone())
        .collect();
    assert_eq!(live, kept);
    assert_eq!(sim.service().deployments.len(), 1);
}

#[test]
fn a_count_threshold_trips_after_that_many_failures_and_without_rollback_stays_failed() {
    let mut sim = Sim::new(&[("a", 2)]);
    sim.create(2, with_breaker(ThresholdType::Count, 1, false));
    sim.run(8, 0);
    sim.broken.push(2);
    revision(&mut sim, 2);
    sim.run(60, 2);
    let service = sim.service();
    assert_eq!(service.deployments[0].revision, 2);
    assert_eq!(service.deployments[0].rollout, RolloutState::Failed);
    // 100/200 of 2 launched two at once; both failed.
    assert_eq!(service.deployments[0].failed_tasks, 2);
    assert_eq!(sim.live_of_revision(1), 2, "the old tasks keep serving");
    assert_eq!(
        sim.tasks().iter().filter(|t| t.revision == 2).count(),
        2,
        "no task is launched after the deployment failed"
    );
}

#[test]
fn an_unbounded_percent_threshold_is_not_clamped() {
    let mut sim = Sim::new(&[("a", 2)]);
    sim.create(1, with_breaker(ThresholdType::UnboundedPercent, 100, true));
    sim.run(8, 0);
    sim.broken.push(2);
    revision(&mut sim, 2);
    sim.run(30, 0);
    // ceil(100 % × 1) = 1: one failure rolls back (BOUNDED would need 3).
    assert_eq!(sim.service().deployments[0].revision, 1);
    assert_eq!(sim.tasks().iter().filter(|t| t.revision == 2).count(), 1);
}

#[test]
fn the_throttle_doubles_the_delay_between_failed_launches() {
    let mut sim = Sim::new(&[("a", 1)]);
    sim.broken.push(1);
    sim.create(1, DeploymentConfiguration::default());
    let mut launches = Vec::new();
    for _ in 0..300 {
        let step = sim.reconcile();
        if step.start.is_some() {
            launches.push(sim.now.0);
        }
        sim.agents();
        sim.now = Timestamp(sim.now.0 + TICK_MS);
    }
    let gaps: Vec<i64> = launches.windows(2).map(|w| (w[1] - w[0]) / 1000).collect();
    // 10 s after the failure, then 20 s, 40 s, then capped at 80 s.
    assert_eq!(gaps[..5], [10, 20, 40, 80, 80], "{gaps:?}");
    assert!(sim
        .events()
        .iter()
        .any(|e| e == "(service web) is unable to consistently start tasks successfully."));
    // A new task definition resets it.
    sim.broken.clear();
    revision(&mut sim, 2);
    assert_eq!(sim.service().throttle, Throttle::default());
    sim.run(10, 0);
    assert_eq!(sim.live_of_revision(2), 1);
}

#[test]
fn tasks_on_a_draining_instance_move_within_the_minimum() {
    let mut sim = Sim::new(&[("a", 1), ("b", 1), ("c", 1)]);
    sim.create(3, configuration(100, 200));
    sim.run(8, 0);
    ok(sim.state.apply(
        1,
        Command::SetInstancesStatus {
            cluster: "default".into(),
            instance_ids: vec!["i01".into()],
            status: InstanceStatus::Draining,
        },
    ));
    sim.run(15, 3);
    let on_drained = sim
        .tasks()
        .iter()
        .filter(|t| !t.is_stopped() && t.instance_id == "i01")
        .count();
    assert_eq!(on_drained, 0);
    assert_eq!(sim.live_of_revision(1), 3);
}

#[test]
fn an_unhealthy_task_is_replaced_after_the_grace_period() {
    let mut sim = Sim::new(&[("a", 2)]);
    sim.create(2, DeploymentConfiguration::default());
    sim.update(|u| u.health_check_grace_period_seconds = Some(5));
    sim.run(8, 0);
    let victim = sim.tasks()[0].id.clone();
    if let Some(t) = sim.state.tasks.get_mut(&victim) {
        t.health = HealthStatus::Unhealthy;
        t.times.started_at = Some(sim.now);
    }
    sim.run(3, 0);
    assert!(
        !sim.state.tasks[&victim].is_stopped(),
        "inside the grace period"
    );
    sim.run(5, 0);
    let t = &sim.state.tasks[&victim];
    assert_eq!(t.desired_status, TaskStatus::Stopped);
    assert_eq!(t.stopped_reason.as_deref(), Some(UNHEALTHY_REASON));
    sim.run(8, 0);
    assert_eq!(sim.live_of_revision(1), 2);
}

#[test]
fn delete_drains_the_service_then_makes_it_inactive() {
    let mut sim = Sim::new(&[("a", 2)]);
    sim.create(2, DeploymentConfiguration::default());
    sim.run(8, 0);
    let refused = sim.state.apply(
        1,
        Command::DeleteService {
            cluster: "default".into(),
            name: "web".into(),
            force: false,
        },
    );
    assert!(matches!(refused, CommandResult::Refused(e) if e.field.as_deref() == Some("force")));
    ok(sim.state.apply(
        1,
        Command::DeleteService {
            cluster: "default".into(),
            name: "web".into(),
            force: true,
        },
    ));
    assert_eq!(sim.service().status, ServiceStatus::Draining);
    sim.run(6, 0);
    assert_eq!(sim.service().status, ServiceStatus::Inactive);
    assert_eq!(sim.live_of_revision(1), 0);
}

#[test]
fn a_step_from_an_older_version_changes_nothing() {
    let mut sim = Sim::new(&[("a", 2)]);
    sim.create(2, DeploymentConfiguration::default());
    let view = ClusterView::new(0, sim.state.clone());
    let service = sim.service().clone();
    let tasks = view.service_tasks(&service);
    let step = reconcile(&view, &service, &tasks, sim.now, &sim.timers);
    // A user's update lands between the step's computation and its commit.
    sim.update(|u| u.desired_count = Some(5));
    let outcome = ok(sim.state.apply(
        1,
        Command::ServiceStep {
            step: Box::new(ServiceStepCommand {
                cluster: "default".into(),
                name: "web".into(),
                version: service.version,
                stops: Vec::new(),
                deployments: step.progress.deployments,
                throttle: step.progress.throttle,
                last_completed: step.progress.last_completed,
                status: step.progress.status,
                events: vec!["stale".into()],
                at: sim.now,
            }),
            decided_in_term: 1,
        },
    ));
    assert_eq!(outcome, Outcome::StaleStep);
    assert_eq!(sim.service().desired_count, 5);
    assert!(sim.events().is_empty());
}

/// Live tasks per instance.
fn per_instance(sim: &Sim) -> std::collections::BTreeMap<String, usize> {
    let mut map = std::collections::BTreeMap::new();
    for t in sim.tasks() {
        if t.is_live() {
            *map.entry(t.instance_id.clone()).or_default() += 1;
        }
    }
    map
}

#[test]
fn a_daemon_runs_one_task_per_matching_instance_as_instances_come_drain_and_stop_matching() {
    let mut sim = Sim::new(&[("a", 2), ("b", 1)]);
    let gpu = orca_core::placement::PlacementConstraintInput {
        r#type: "memberOf".into(),
        expression: Some("attribute:ecs.availability-zone != c".into()),
    };
    sim.create_with(
        SchedulingStrategy::Daemon,
        0,
        DeploymentConfiguration::default(),
        vec![gpu],
    );
    sim.run(8, 0);
    let expect = |ids: &[&str]| -> std::collections::BTreeMap<String, usize> {
        ids.iter().map(|i| (i.to_string(), 1)).collect()
    };
    assert_eq!(per_instance(&sim), expect(&["i01", "i02", "i03"]));
    assert_eq!(sim.primary_rollout(), RolloutState::Completed);
    assert_eq!(sim.state.wanted_count(sim.service()), 3);
    // A new matching instance gets one; one in zone c does not.
    sim.add_instance("b");
    sim.add_instance("c");
    sim.run(8, 0);
    assert_eq!(per_instance(&sim), expect(&["i01", "i02", "i03", "i04"]));
    // Draining: its daemon task stops and none starts there.
    ok(sim.state.apply(
        1,
        Command::SetInstancesStatus {
            cluster: "default".into(),
            instance_ids: vec!["i02".into()],
            status: InstanceStatus::Draining,
        },
    ));
    sim.run(8, 0);
    assert_eq!(per_instance(&sim), expect(&["i01", "i03", "i04"]));
    // An instance that stops matching loses its task.
    ok(sim.state.apply(
        1,
        Command::PutAttributes {
            cluster: "default".into(),
            attributes: vec![crate::state::instance_admin::InstanceAttribute {
                instance_id: "i03".into(),
                name: scheduler::AVAILABILITY_ZONE.into(),
                value: Some("c".into()),
            }],
        },
    ));
    sim.run(8, 0);
    assert_eq!(per_instance(&sim), expect(&["i01", "i04"]));
    // A new revision replaces each instance's task (0/100: stop, then start).
    revision(&mut sim, 2);
    sim.run(10, 0);
    assert_eq!(per_instance(&sim), expect(&["i01", "i04"]));
    assert_eq!(sim.live_of_revision(2), 2);
    assert_eq!(sim.primary_rollout(), RolloutState::Completed);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// Whatever tasks die when, a 50/200 deployment never leaves fewer
    /// healthy tasks than the minimum (once the service first had them) by
    /// its own stops, and converges once failures end.
    #[test]
    fn deployments_hold_the_minimum_and_converge(
        kills in proptest::collection::vec((0usize..40, 0usize..8), 0..12),
        desired in 2u32..6,
    ) {
        let mut sim = Sim::new(&[("a", 2), ("b", 2)]);
        sim.create(desired, configuration(50, 200));
        sim.run(8, 0);
        revision(&mut sim, 2);
        let floor = sim.service().rules().minimum_healthy(desired) as usize;
        for tick in 0..40 {
            let before = sim.healthy();
            sim.reconcile();
            // The reconciler's own stops never take it below the minimum.
            let stopping_healthy = {
                let view = ClusterView::new(0, sim.state.clone());
                let judge = health::Judge::new(&view, sim.service(), sim.now, &sim.timers);
                sim.tasks().iter().filter(|t| t.is_live() && judge.is_healthy(t)).count()
            };
            prop_assert!(stopping_healthy >= floor.min(before), "tick {tick}: {stopping_healthy} healthy after the step, minimum {floor}");
            for (at, which) in &kills {
                if *at == tick {
                    let live: Vec<TaskRecord> = sim.tasks().into_iter().filter(|t| !t.is_stopped()).cloned().collect();
                    if let Some(victim) = live.get(which % live.len().max(1)) {
                        sim.report(victim, TaskStatus::Stopped, Some(StopCode::EssentialContainerExited));
                    }
                }
            }
            sim.agents();
            sim.now = Timestamp(sim.now.0 + TICK_MS);
        }
        // Converging may first wait out the launch throttle, which kills
        // late in the run can have doubled up to its cap.
        let throttle_ticks = (sim.timers.throttle_max_ms / TICK_MS) as usize;
        sim.run(30 + throttle_ticks, 0);
        prop_assert_eq!(sim.live_of_revision(2), desired as usize);
        prop_assert_eq!(sim.live_of_revision(1), 0);
        prop_assert_eq!(sim.healthy(), desired as usize);
    }
}

/// A DAEMON service record named `logs` beside the simulated `web`.
fn daemon_record(sim: &Sim) -> crate::state::ServiceRecord {
    let mut daemon = sim.service().clone();
    daemon.name = "logs".into();
    daemon.strategy = SchedulingStrategy::Daemon;
    daemon
}

#[test]
fn a_replica_task_moves_within_its_service_limits_to_make_room_for_a_daemon_task() {
    let mut sim = Sim::new(&[("a", 1)]);
    sim.create(20, configuration(100, 200));
    sim.run(6, 0);
    // 20 tasks of 100 MiB fill the instance's 2000 MiB.
    assert_eq!(per_instance(&sim).get("i01"), Some(&20));
    let daemon = daemon_record(&sim);
    let need = orca_core::task::Resources {
        cpu: 0,
        memory: 100,
    };
    let view = ClusterView::new(0, sim.state.clone());
    let Room::Move { task_id, service } = make_room(&view, &daemon, "i01", need) else {
        panic!("a replica task should move");
    };
    assert_eq!(service, "web");
    ok(sim.state.apply(
        1,
        Command::MakeRoomForDaemon {
            cluster: "default".into(),
            task_id: task_id.clone(),
            daemon_service: "logs".into(),
            decided_in_term: 1,
        },
    ));
    let view = ClusterView::new(0, sim.state.clone());
    assert_eq!(make_room(&view, &daemon, "i01", need), Room::Moving);
    // With nowhere else to go, 100/200 keeps it: the minimum holds.
    sim.run(6, 20);
    assert!(sim.state.tasks[&task_id].is_live());
    // A second instance: the replacement starts there first, then it goes.
    sim.add_instance("a");
    sim.run(8, 20);
    let victim = &sim.state.tasks[&task_id];
    assert!(victim.is_stopped(), "{victim:?}");
    assert_eq!(
        victim.stopped_reason.as_deref(),
        Some("Task moved to make room for a task of daemon service logs on container instance i01")
    );
    assert_eq!(per_instance(&sim).get("i02"), Some(&1));
    assert_eq!(sim.live_of_revision(1), 20);
    assert!(need.fits_in(sim.state.instances["i01"].remaining));
}

#[test]
fn a_daemon_task_that_cannot_get_room_says_why() {
    let mut sim = Sim::new(&[("a", 1)]);
    sim.create(20, configuration(100, 200));
    sim.run(6, 0);
    let daemon = daemon_record(&sim);
    let view = ClusterView::new(0, sim.state.clone());
    // More than the instance has in all.
    let huge = orca_core::task::Resources {
        cpu: 0,
        memory: 4000,
    };
    let Room::Impossible(why) = make_room(&view, &daemon, "i01", huge) else {
        panic!("cannot fit");
    };
    assert!(
        why.contains("more than (container-instance i01) has in all"),
        "{why}"
    );
    // Only tasks of no REPLICA service there (the daemon's own kind).
    let mut replica_free = sim.state.clone();
    if let Some(web) = replica_free.services.get_mut("default/web") {
        web.strategy = SchedulingStrategy::Daemon;
    }
    let view = ClusterView::new(0, replica_free);
    let need = orca_core::task::Resources {
        cpu: 0,
        memory: 100,
    };
    let Room::Impossible(why) = make_room(&view, &daemon, "i01", need) else {
        panic!("nothing can move");
    };
    assert!(
        why.contains("lacks memory and runs no task of a REPLICA service that could move"),
        "{why}"
    );
}
