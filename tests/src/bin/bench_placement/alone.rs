//! The scheduler alone, in this process: the same instances in a
//! `ClusterState` built through `apply` (registration, agent connected),
//! then one `scheduler::schedule` call per RunTask-sized ask, each plan
//! applied (`Command::ApplyPlan`) before the next is made, so placements
//! feed forward exactly as on the leader, without Raft, gRPC or sessions.

use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use orca_controller::scheduler::{self, PlacementAsk};
use orca_controller::state::{
    ClusterState, ClusterView, Command, CommandResult, Outcome, Placement, RunTaskCommand,
};
use orca_core::arn::ArnContext;
use orca_core::placement::{parse_constraints, parse_strategies};
use orca_core::task::{task_resources, TaskOverride};
use orca_core::task_definition::{parse_register_input, Timestamp};

use crate::fleet::FleetSpec;
use crate::{Scenario, TASKS_PER_CALL};

/// The term every command here is "decided" and "committed" in.
const TERM: u64 = 1;

/// The in-process cluster state and the instance id of each fleet index.
pub struct Alone {
    state: ClusterState,
    index: u64,
    /// Instance id → fleet index.
    ids: std::collections::HashMap<String, usize>,
    next_id: u64,
}

/// One scenario's placements, timed.
pub struct AloneRun {
    /// Fleet index of every placed task.
    pub placed: Vec<usize>,
    pub failures: usize,
    /// `schedule()` per ask.
    pub plan_latencies: Vec<Duration>,
    /// `schedule()` + building the command + `apply`, per ask.
    pub step_latencies: Vec<Duration>,
    /// Sum of `plan_latencies`.
    pub schedule_time: Duration,
    /// Wall time of the whole loop (views, schedule, apply).
    pub wall: Duration,
    /// This thread's CPU time in `schedule()`: what the scheduler costs,
    /// whatever else runs on the (shared) machine.
    pub schedule_cpu: Duration,
}

#[repr(C)]
struct Timespec {
    tv_sec: i64,
    tv_nsec: i64,
}

extern "C" {
    fn clock_gettime(clock: i32, ts: *mut Timespec) -> i32;
}

/// Linux's CLOCK_THREAD_CPUTIME_ID.
const CLOCK_THREAD_CPUTIME_ID: i32 = 3;

/// CPU time the calling thread has used (64-bit Linux).
pub fn thread_cpu() -> Duration {
    let mut ts = Timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec (two 64-bit fields on
    // 64-bit Linux) into the struct it is given.
    let ok = unsafe { clock_gettime(CLOCK_THREAD_CPUTIME_ID, &mut ts) } == 0;
    if !ok {
        return Duration::ZERO;
    }
    Duration::new(
        ts.tv_sec.max(0) as u64,
        ts.tv_nsec.clamp(0, 999_999_999) as u32,
    )
}

fn applied(result: CommandResult, what: &str) -> anyhow::Result<Outcome> {
    match result {
        CommandResult::Applied(o) => Ok(o),
        other => bail!("{what}: {other:?}"),
    }
}

/// A 32-hex-digit id that sorts like a random UUID would (the controller's
/// instance ids are random, so id order is not registration order).
fn id_for(i: u64) -> String {
    fn mix(mut z: u64) -> u64 {
        z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    format!("{:016x}{:016x}", mix(i), mix(i ^ 0x5555_5555))
}

impl Alone {
    /// Registers every instance of `spec` and marks it connected; registers
    /// the scenarios' task definitions.
    pub fn build(spec: &FleetSpec, definitions: &[String]) -> anyhow::Result<Self> {
        let mut state = ClusterState::new(ArnContext::default());
        let mut ids = std::collections::HashMap::with_capacity(spec.instances);
        for i in 0..spec.instances {
            let id = id_for(i as u64);
            let registration = spec.registration(i);
            applied(
                state.apply(
                    TERM,
                    Command::RegisterContainerInstance {
                        instance_id: id.clone(),
                        registration,
                        at: Timestamp(1_700_000_000_000 + i as i64),
                    },
                ),
                "registering an instance",
            )?;
            applied(
                state.apply(
                    TERM,
                    Command::SetAgentConnected {
                        instance_id: id.clone(),
                        connected: true,
                        decided_in_term: TERM,
                    },
                ),
                "connecting an instance",
            )?;
            ids.insert(id, i);
        }
        for json in definitions {
            let input = parse_register_input(json).map_err(|e| anyhow::anyhow!("{e}"))?;
            applied(
                state.apply(
                    TERM,
                    Command::RegisterTaskDefinition {
                        spec: Box::new(input.spec),
                        tags: Vec::new(),
                        registered_at: Timestamp(1_700_000_000_000),
                        registered_by: "bench".to_string(),
                    },
                ),
                "registering a task definition",
            )?;
        }
        Ok(Alone {
            state,
            index: 2 * spec.instances as u64 + definitions.len() as u64,
            ids,
            next_id: 0,
        })
    }

    /// The scheduler's ask for `count` tasks of `scenario`, resolved as the
    /// leader's plan applier resolves a RunTask.
    fn ask(&self, scenario: &Scenario, count: usize) -> anyhow::Result<PlacementAsk> {
        let definition = &self
            .state
            .families
            .get(&scenario.family)
            .and_then(|f| f.revisions.get(&1))
            .context("the scenario's task definition is not registered")?
            .task_definition;
        let err = |e: orca_core::ApiError| anyhow::anyhow!("{e}");
        Ok(PlacementAsk {
            cluster: "default".to_string(),
            need: task_resources(definition, &TaskOverride::default()),
            count,
            group: format!("family:{}", scenario.family),
            constraints: parse_constraints(&scenario.constraints, "placementConstraints")
                .map_err(err)?,
            strategies: parse_strategies(&scenario.strategy, "placementStrategy").map_err(err)?,
            required_attributes: definition.requires_attributes.clone(),
            static_ports: Vec::new(),
            addresses: orca_controller::state::task_addresses::addresses_per_task(
                definition.spec.effective_network_mode(),
                definition.spec.container_definitions.len(),
            ),
        })
    }

    fn new_id(&mut self) -> String {
        self.next_id += 1;
        format!("{:032x}", self.next_id)
    }

    /// Places `tasks` tasks of `scenario` in asks of up to ten, `batch`
    /// asks per plan (one `schedule()` call and one `ApplyPlan`), as the
    /// leader's applier plans every ask queued meanwhile together.
    pub fn run(
        &mut self,
        scenario: &Scenario,
        tasks: usize,
        batch: usize,
    ) -> anyhow::Result<AloneRun> {
        let calls = tasks.div_ceil(TASKS_PER_CALL);
        let plans = calls.div_ceil(batch.max(1));
        let mut run = AloneRun {
            placed: Vec::with_capacity(tasks),
            failures: 0,
            plan_latencies: Vec::with_capacity(plans),
            step_latencies: Vec::with_capacity(plans),
            schedule_time: Duration::ZERO,
            wall: Duration::ZERO,
            schedule_cpu: Duration::ZERO,
        };
        let full = self.ask(scenario, TASKS_PER_CALL)?;
        let start = Instant::now();
        let mut call = 0;
        for plan_number in 0..plans {
            let asks: Vec<PlacementAsk> = (call..calls.min(call + batch.max(1)))
                .map(|c| {
                    let mut ask = full.clone();
                    ask.count = TASKS_PER_CALL.min(tasks - c * TASKS_PER_CALL);
                    ask
                })
                .collect();
            call += asks.len();
            let t0 = Instant::now();
            let view = ClusterView::new(self.index, self.state.clone());
            let t1 = Instant::now();
            let c1 = thread_cpu();
            let plan = scheduler::schedule(&view, &asks, plan_number as u64);
            run.schedule_cpu += thread_cpu().saturating_sub(c1);
            let planned = t1.elapsed();
            drop(view);
            let mut runs = Vec::with_capacity(asks.len());
            for asked in plan.asks {
                run.failures += asked.failures.len();
                let placements: Vec<Placement> = asked
                    .instances
                    .into_iter()
                    .map(|instance_id| Placement {
                        task_id: self.new_id(),
                        container_ids: vec![self.new_id()],
                        host_ports: Vec::new(),
                        port_cursor: None,
                        instance_id,
                    })
                    .collect();
                for p in &placements {
                    run.placed.push(self.ids[&p.instance_id]);
                }
                runs.push(RunTaskCommand {
                    cluster: "default".to_string(),
                    family: scenario.family.clone(),
                    revision: 1,
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
                    created_at: Timestamp(1_700_000_001_000 + plan_number as i64),
                    placements,
                    failures: asked.failures,
                });
            }
            let n = runs.len();
            let command = Command::ApplyPlan {
                runs,
                decided_in_term: TERM,
            };
            self.index += 1;
            match applied(self.state.apply(TERM, command), "applying a plan")? {
                Outcome::Plan(results) => {
                    let ok = results.len() == n
                        && results
                            .iter()
                            .all(|r| matches!(r, CommandResult::Applied(Outcome::Tasks { .. })));
                    if !ok {
                        bail!("a plan did not apply: {results:?}");
                    }
                }
                other => bail!("unexpected outcome of a plan: {other:?}"),
            }
            run.plan_latencies.push(planned);
            run.step_latencies.push(t0.elapsed());
            run.schedule_time += planned;
        }
        run.wall = start.elapsed();
        run.plan_latencies.sort();
        run.step_latencies.sort();
        Ok(run)
    }
}
