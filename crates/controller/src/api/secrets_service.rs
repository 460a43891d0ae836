//! The `orca.v1.Secrets` gRPC service: each call hands the AWS JSON input
//! to its handler in `secrets_api.rs`. Reads asking for linearizability
//! wait for the read index first, as the ECS calls do.

use std::sync::Arc;

use orca_api::v1::{self, secrets_server::Secrets};
use tonic::{Request, Response, Status};

use super::ecs_service::{json_reply, EcsService};

pub struct SecretsService {
    ecs: Arc<EcsService>,
}

impl SecretsService {
    pub fn new(ecs: Arc<EcsService>) -> Self {
        SecretsService { ecs }
    }
}

type Reply = Result<Response<v1::EcsJsonReply>, Status>;

fn input(request: Request<v1::EcsJsonRequest>) -> String {
    request.into_inner().input_json
}

#[tonic::async_trait]
impl Secrets for SecretsService {
    async fn create_secret(&self, r: Request<v1::EcsJsonRequest>) -> Reply {
        json_reply(self.ecs.create_secret_json(&input(r)).await)
    }

    async fn put_secret_value(&self, r: Request<v1::EcsJsonRequest>) -> Reply {
        json_reply(self.ecs.put_secret_value_json(&input(r)).await)
    }

    async fn get_secret_value(&self, r: Request<v1::EcsJsonRequest>) -> Reply {
        self.ecs.barrier(&r).await?;
        json_reply(self.ecs.get_secret_value_json(&input(r)))
    }

    async fn describe_secret(&self, r: Request<v1::EcsJsonRequest>) -> Reply {
        self.ecs.barrier(&r).await?;
        json_reply(self.ecs.describe_secret_json(&input(r)))
    }

    async fn list_secrets(&self, r: Request<v1::EcsJsonRequest>) -> Reply {
        self.ecs.barrier(&r).await?;
        json_reply(self.ecs.list_secrets_json(&input(r)))
    }

    async fn delete_secret(&self, r: Request<v1::EcsJsonRequest>) -> Reply {
        json_reply(self.ecs.delete_secret_json(&input(r)).await)
    }

    async fn restore_secret(&self, r: Request<v1::EcsJsonRequest>) -> Reply {
        json_reply(self.ecs.restore_secret_json(&input(r)).await)
    }

    async fn put_parameter(&self, r: Request<v1::EcsJsonRequest>) -> Reply {
        json_reply(self.ecs.put_parameter_json(&input(r)).await)
    }

    async fn get_parameter(&self, r: Request<v1::EcsJsonRequest>) -> Reply {
        self.ecs.barrier(&r).await?;
        json_reply(self.ecs.get_parameter_json(&input(r)))
    }

    async fn get_parameters(&self, r: Request<v1::EcsJsonRequest>) -> Reply {
        self.ecs.barrier(&r).await?;
        json_reply(self.ecs.get_parameters_json(&input(r)))
    }

    async fn delete_parameter(&self, r: Request<v1::EcsJsonRequest>) -> Reply {
        json_reply(self.ecs.delete_parameter_json(&input(r)).await)
    }
}
