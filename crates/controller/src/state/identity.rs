//! The controller cluster's identity: the region and account its ARNs name
//! and the task CIDR node subnets are carved from. Fixed once, replicated,
//! and never changed, so two controllers started with different flags cannot
//! mint different ARNs or overlapping subnets for the same entries.

use orca_core::arn::ArnContext;
use orca_core::cidr::Ipv4Cidr;
use serde::{Deserialize, Serialize};

use super::{ClusterState, Outcome};

/// What `Command::FixIdentity` records.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    pub region: String,
    pub account: String,
    /// The task CIDR in its text form (`198.19.0.0/16`).
    pub task_cidr: String,
}

impl Identity {
    pub fn new(arn: &ArnContext, task_cidr: Ipv4Cidr) -> Self {
        Identity {
            region: arn.region.clone(),
            account: arn.account.clone(),
            task_cidr: task_cidr.to_string(),
        }
    }

    pub fn arn(&self) -> ArnContext {
        ArnContext {
            region: self.region.clone(),
            account: self.account.clone(),
        }
    }

    /// The first difference from `other`, as an operator should read it.
    pub fn difference(&self, other: &Identity) -> Option<String> {
        let fields = [
            ("region", &self.region, &other.region),
            ("account", &self.account, &other.account),
            ("task CIDR", &self.task_cidr, &other.task_cidr),
        ];
        fields
            .into_iter()
            .find(|(_, a, b)| a != b)
            .map(|(name, ours, theirs)| {
                format!(
                    "{name} {ours} (this controller's flags) differs from the cluster's {theirs}"
                )
            })
    }
}

impl ClusterState {
    /// Sets the effective ARN context and task CIDR: the fixed identity's
    /// when there is one, else this controller's own flags.
    pub fn adopt_identity(&mut self, local_arn: &ArnContext, local_task_cidr: Ipv4Cidr) {
        match &self.identity {
            Some(identity) => {
                self.arn = identity.arn();
                // A stored identity was parsed before it was proposed.
                self.task_cidr = identity.task_cidr.parse().unwrap_or(local_task_cidr);
            }
            None => {
                self.arn = local_arn.clone();
                self.task_cidr = local_task_cidr;
            }
        }
    }

    /// Fixes the identity unless it is fixed already (then nothing changes):
    /// the first FixIdentity committed wins on every replica.
    pub(super) fn fix_identity(&mut self, identity: Identity) -> Outcome {
        if self.identity.is_none() {
            let (arn, cidr) = (self.arn.clone(), self.task_cidr);
            self.identity = Some(identity);
            self.adopt_identity(&arn, cidr);
        }
        Outcome::Identity(self.identity.clone())
    }
}
