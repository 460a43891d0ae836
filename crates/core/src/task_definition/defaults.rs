//! The describe shape's derived parts: ECS's defaults filled into the spec,
//! `requiresAttributes` and `compatibilities`. Deterministic; no clock.
//!
//! `requiresAttributes` is derived from the features a definition uses, by
//! this table (names as ECS writes them; sorted by name, no duplicates):
//!
//! | feature | attribute |
//! | --- | --- |
//! | always | `com.amazonaws.ecs.capability.docker-remote-api.1.18` |
//! | networkMode awsvpc (orca's default) | `ecs.capability.task-eni` |
//! | taskRoleArn | `com.amazonaws.ecs.capability.task-iam-role` |
//! | logConfiguration with driver D | `com.amazonaws.ecs.capability.logging-driver.D` |
//! | awslogs | `com.amazonaws.ecs.capability.docker-remote-api.1.19` |
//! | awslogs and executionRoleArn | `ecs.capability.execution-role-awslogs` |
//! | an ECR image (`.dkr.ecr.`) and executionRoleArn | `ecs.capability.execution-role-ecr-pull` |
//! | memoryReservation | `com.amazonaws.ecs.capability.docker-remote-api.1.21` |
//! | healthCheck | `ecs.capability.container-health-check` |
//! | dependsOn, startTimeout or stopTimeout | `ecs.capability.container-ordering` |
//! | a secret from Secrets Manager (`arn:...:secretsmanager:...`) | `ecs.capability.secrets.asm.environment-variables` |
//! | any other secret (SSM name or ARN) | `ecs.capability.secrets.ssm.environment-variables` |
//! | logConfiguration.secretOptions (ASM / SSM) | `ecs.capability.secrets.asm.bootstrap.log-driver` / `ecs.capability.secrets.ssm.bootstrap.log-driver` |
//! | repositoryCredentials | `com.amazonaws.ecs.capability.private-registry-authentication.secretsmanager` |
//! | environmentFiles | `ecs.capability.env-files.s3` |
//! | linuxParameters.initProcessEnabled | `com.amazonaws.ecs.capability.docker-remote-api.1.25` |
//! | firelensConfiguration of type T | `ecs.capability.firelens.T` |
//! | restartPolicy | `ecs.capability.container-restart-policy` |
//! | efsVolumeConfiguration (with authorizationConfig) | `ecs.capability.efs` (`ecs.capability.efsAuth`) |
//! | enableFaultInjection true | `ecs.capability.fault-injection` |

use std::collections::BTreeSet;

use super::container::{ContainerDefinition, HealthCheck};
use super::enums::{Compatibility, LogDriver, NetworkMode, TransportProtocol};
use super::model::{Attribute, TaskDefinition, TaskDefinitionSpec, TaskDefinitionStatus};
use super::timestamp::Timestamp;
use super::units;

/// `healthCheck.interval` when absent, seconds.
pub const DEFAULT_HEALTH_CHECK_INTERVAL: u32 = 30;
/// `healthCheck.timeout` when absent, seconds.
pub const DEFAULT_HEALTH_CHECK_TIMEOUT: u32 = 5;
/// `healthCheck.retries` when absent.
pub const DEFAULT_HEALTH_CHECK_RETRIES: u32 = 3;

impl TaskDefinition {
    /// Applies ECS's defaults to the spec and derives `requiresAttributes`
    /// and `compatibilities`; the new revision is ACTIVE. Deterministic.
    ///
    /// Defaults: `networkMode` awsvpc (orca gives every task its own network
    /// namespace); `volumes` and `placementConstraints` []; per container
    /// `cpu` 0, `essential` true, `portMappings`, `environment`,
    /// `mountPoints`, `volumesFrom` and `systemControls` [], each port
    /// mapping's `protocol` tcp and, under awsvpc/host, `hostPort` =
    /// `containerPort`; health-check interval 30, timeout 5, retries 3.
    /// `requiresCompatibilities` stays as given.
    pub fn new(
        spec: TaskDefinitionSpec,
        arn: String,
        revision: u32,
        registered_at: Timestamp,
        registered_by: String,
    ) -> TaskDefinition {
        let spec = with_defaults(spec);
        let requires_attributes = requires_attributes(&spec);
        let compatibilities = compatibilities(&spec);
        TaskDefinition {
            task_definition_arn: arn,
            spec,
            revision,
            status: TaskDefinitionStatus::Active,
            requires_attributes,
            compatibilities,
            registered_at,
            registered_by,
            deregistered_at: None,
            delete_requested_at: None,
        }
    }
}

fn with_defaults(mut spec: TaskDefinitionSpec) -> TaskDefinitionSpec {
    let mode = spec.effective_network_mode();
    spec.network_mode = Some(mode);
    // Already normalised by parse_register_input; normalise again for specs
    // built in code, keeping anything unparsable as given.
    if let Some(cpu) = spec.cpu.as_mut() {
        if let Ok(units) = units::parse_cpu(cpu) {
            *cpu = units.to_string();
        }
    }
    if let Some(memory) = spec.memory.as_mut() {
        if let Ok(mib) = units::parse_memory(memory) {
            *memory = mib.to_string();
        }
    }
    spec.volumes.get_or_insert_with(Vec::new);
    spec.placement_constraints.get_or_insert_with(Vec::new);
    for c in &mut spec.container_definitions {
        container_defaults(c, mode);
    }
    spec
}

fn container_defaults(c: &mut ContainerDefinition, mode: NetworkMode) {
    c.cpu.get_or_insert(0);
    c.essential.get_or_insert(true);
    let shared = matches!(mode, NetworkMode::Awsvpc | NetworkMode::Host);
    for m in c.port_mappings.get_or_insert_with(Vec::new) {
        m.protocol.get_or_insert(TransportProtocol::Tcp);
        if shared && m.host_port.is_none() {
            m.host_port = m.container_port;
        }
    }
    c.environment.get_or_insert_with(Vec::new);
    c.mount_points.get_or_insert_with(Vec::new);
    c.volumes_from.get_or_insert_with(Vec::new);
    c.system_controls.get_or_insert_with(Vec::new);
    if let Some(HealthCheck {
        interval,
        timeout,
        retries,
        ..
    }) = c.health_check.as_mut()
    {
        interval.get_or_insert(DEFAULT_HEALTH_CHECK_INTERVAL);
        timeout.get_or_insert(DEFAULT_HEALTH_CHECK_TIMEOUT);
        retries.get_or_insert(DEFAULT_HEALTH_CHECK_RETRIES);
    }
}

/// "EC2" and "EXTERNAL" always, "FARGATE" when required; sorted.
fn compatibilities(spec: &TaskDefinitionSpec) -> Vec<String> {
    let mut out = vec![Compatibility::Ec2.as_str().to_string()];
    out.push(Compatibility::External.as_str().to_string());
    if spec
        .requires_compatibilities
        .as_ref()
        .is_some_and(|c| c.contains(&Compatibility::Fargate))
    {
        out.push(Compatibility::Fargate.as_str().to_string());
    }
    out
}

fn is_asm(value_from: &str) -> bool {
    value_from.starts_with("arn:") && value_from.split(':').nth(2) == Some("secretsmanager")
}

/// See the table in this module's documentation.
fn requires_attributes(spec: &TaskDefinitionSpec) -> Vec<Attribute> {
    let mut names: BTreeSet<String> = BTreeSet::new();
    let mut add = |name: &str| {
        names.insert(name.to_string());
    };
    add("com.amazonaws.ecs.capability.docker-remote-api.1.18");
    if spec.effective_network_mode() == NetworkMode::Awsvpc {
        add("ecs.capability.task-eni");
    }
    if spec.task_role_arn.is_some() {
        add("com.amazonaws.ecs.capability.task-iam-role");
    }
    let execution_role = spec.execution_role_arn.is_some();
    if spec.enable_fault_injection == Some(true) {
        add("ecs.capability.fault-injection");
    }
    for volume in spec.volumes.iter().flatten() {
        if let Some(efs) = &volume.efs_volume_configuration {
            add("ecs.capability.efs");
            if efs.authorization_config.is_some() {
                add("ecs.capability.efsAuth");
            }
        }
    }
    for c in &spec.container_definitions {
        if let Some(log) = &c.log_configuration {
            add(&format!(
                "com.amazonaws.ecs.capability.logging-driver.{}",
                log.log_driver
            ));
            if log.log_driver == LogDriver::Awslogs {
                add("com.amazonaws.ecs.capability.docker-remote-api.1.19");
                if execution_role {
                    add("ecs.capability.execution-role-awslogs");
                }
            }
            for secret in log.secret_options.iter().flatten() {
                add(if is_asm(&secret.value_from) {
                    "ecs.capability.secrets.asm.bootstrap.log-driver"
                } else {
                    "ecs.capability.secrets.ssm.bootstrap.log-driver"
                });
            }
        }
        if execution_role && c.image.contains(".dkr.ecr.") {
            add("ecs.capability.execution-role-ecr-pull");
        }
        if c.memory_reservation.is_some() {
            add("com.amazonaws.ecs.capability.docker-remote-api.1.21");
        }
        if c.health_check.is_some() {
            add("ecs.capability.container-health-check");
        }
        if c.depends_on.as_ref().is_some_and(|d| !d.is_empty())
            || c.start_timeout.is_some()
            || c.stop_timeout.is_some()
        {
            add("ecs.capability.container-ordering");
        }
        for secret in c.secrets.iter().flatten() {
            add(if is_asm(&secret.value_from) {
                "ecs.capability.secrets.asm.environment-variables"
            } else {
                "ecs.capability.secrets.ssm.environment-variables"
            });
        }
        if c.repository_credentials.is_some() {
            add("com.amazonaws.ecs.capability.private-registry-authentication.secretsmanager");
        }
        if c.environment_files.as_ref().is_some_and(|f| !f.is_empty()) {
            add("ecs.capability.env-files.s3");
        }
        if c.linux_parameters
            .as_ref()
            .is_some_and(|l| l.init_process_enabled == Some(true))
        {
            add("com.amazonaws.ecs.capability.docker-remote-api.1.25");
        }
        if let Some(firelens) = &c.firelens_configuration {
            add(&format!("ecs.capability.firelens.{}", firelens.r#type));
        }
        if c.restart_policy.is_some() {
            add("ecs.capability.container-restart-policy");
        }
    }
    names
        .into_iter()
        .map(|name| Attribute {
            name,
            value: None,
            target_type: None,
            target_id: None,
        })
        .collect()
}
