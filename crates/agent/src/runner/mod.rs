//! How a task's containers are made: [`order`] (dependsOn rules),
//! [`dns_files`] (their /etc/resolv.conf, hosts and hostname),
//! [`restart`] (ECS's restartPolicy rule) and [`spec`] (a container
//! definition, with RunTask's overrides, as the runtime's container spec,
//! and the labels that tie a container to its task). The lifecycle itself is the reconcile step's
//! ([`crate::reconcile`]).

pub mod admit;
pub mod dns_files;
pub mod log_limits;
pub mod order;
pub mod restart;
pub mod spec;
