//! Services: ECS's service model (what DescribeServices shows), the
//! deployment configuration and its arithmetic (bounds, circuit breaker),
//! and the inputs and outputs of the service calls.

mod config;
mod model;
mod requests;

pub use config::{
    Breaker, DeploymentCircuitBreaker, DeploymentConfiguration, DeploymentRules,
    ThresholdConfiguration, ThresholdType, BREAKER_MAX_THRESHOLD, BREAKER_MIN_THRESHOLD,
};
pub use model::{
    Deployment, DeploymentController, DeploymentStatus, RolloutState, SchedulingStrategy, Service,
    ServiceEvent, ServiceStatus,
};
pub use requests::{
    validate_service_name, CreateServiceInput, DeleteServiceInput, DeploymentControllerInput,
    DescribeServicesInput, DescribeServicesOutput, ListServicesInput, ListServicesOutput,
    ServiceOutput, UpdateServiceInput, MAX_DESCRIBE_SERVICES, MAX_GRACE_PERIOD_SECONDS,
};

#[cfg(test)]
mod tests;
