//! Tasks: ECS's task model (what DescribeTasks shows), its ordered statuses,
//! RunTask's overrides and the resources a task reserves, and the inputs and
//! outputs of the task calls.

mod model;
mod overrides;
mod ports;
pub(crate) mod requests;
mod status;

pub use model::{Attachment, Container, Failure, KeyValue, NetworkInterface, Task};
pub use overrides::{
    effective_container, task_resources, validate_overrides, ContainerOverride, Resources,
    TaskOverride,
};
pub use ports::{host_port_needs, HostPortBinding, NetworkBinding, PortNeed, EPHEMERAL_PORTS};
pub use requests::{
    AwsVpcConfiguration, DescribeTasksInput, DescribeTasksOutput, ListTasksInput, ListTasksOutput,
    NetworkConfiguration, RunTaskInput, RunTaskOutput, StartTaskInput, StopTaskInput,
    StopTaskOutput, MAX_RUN_TASK_COUNT,
};
pub use status::{ContainerStatus, HealthStatus, StopCode, TaskStatus};
