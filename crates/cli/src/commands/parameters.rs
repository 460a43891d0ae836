//! The Parameter Store commands, as `aws ssm` names them: put-parameter,
//! get-parameter, get-parameters, delete-parameter.

use serde_json::{json, Value};

use super::{shape, Ctx};
use crate::failover::Call;
use crate::input::read_param;

#[derive(clap::Args, Debug)]
pub struct PutParameterArgs {
    /// The parameter's name (`db` or a path, `/prod/db`).
    #[arg(long)]
    pub name: String,
    /// The value, or file://path.
    #[arg(long)]
    pub value: String,
    /// String (the default for a new parameter), StringList or SecureString.
    #[arg(long = "type")]
    pub kind: Option<String>,
    #[arg(long)]
    pub description: Option<String>,
    /// Replace an existing parameter's value (a new version).
    #[arg(long)]
    pub overwrite: bool,
}

#[derive(clap::Args, Debug)]
pub struct GetParameterArgs {
    #[arg(long)]
    pub name: String,
    /// Show a SecureString's value rather than its ciphertext.
    #[arg(long)]
    pub with_decryption: bool,
}

#[derive(clap::Args, Debug)]
pub struct GetParametersArgs {
    /// Up to 10 names.
    #[arg(long, num_args = 1.., required = true)]
    pub names: Vec<String>,
    #[arg(long)]
    pub with_decryption: bool,
}

#[derive(clap::Args, Debug)]
pub struct DeleteParameterArgs {
    #[arg(long)]
    pub name: String,
}

pub async fn put_parameter(a: &PutParameterArgs, ctx: &Ctx) -> anyhow::Result<Value> {
    let input = shape::input_object([
        ("Name", Some(json!(a.name))),
        ("Value", Some(json!(read_param("--value", &a.value)?))),
        ("Type", a.kind.clone().map(Value::String)),
        ("Description", a.description.clone().map(Value::String)),
        ("Overwrite", a.overwrite.then_some(json!(true))),
    ]);
    let reply = ctx
        .secrets("PutParameter", Call::Write, input, |mut c, r| async move {
            c.put_parameter(r).await
        })
        .await?;
    shape::ecs_json(&reply)
}

pub async fn get_parameter(a: &GetParameterArgs, ctx: &Ctx) -> anyhow::Result<Value> {
    let input = shape::input_object([
        ("Name", Some(json!(a.name))),
        ("WithDecryption", a.with_decryption.then_some(json!(true))),
    ]);
    let reply = ctx
        .secrets("GetParameter", Call::Read, input, |mut c, r| async move {
            c.get_parameter(r).await
        })
        .await?;
    shape::ecs_json(&reply)
}

pub async fn get_parameters(a: &GetParametersArgs, ctx: &Ctx) -> anyhow::Result<Value> {
    let input = shape::input_object([
        ("Names", Some(json!(a.names))),
        ("WithDecryption", a.with_decryption.then_some(json!(true))),
    ]);
    let reply = ctx
        .secrets("GetParameters", Call::Read, input, |mut c, r| async move {
            c.get_parameters(r).await
        })
        .await?;
    shape::ecs_json(&reply)
}

pub async fn delete_parameter(a: &DeleteParameterArgs, ctx: &Ctx) -> anyhow::Result<Value> {
    let input = shape::input_object([("Name", Some(json!(a.name)))]);
    let reply = ctx
        .secrets(
            "DeleteParameter",
            Call::Write,
            input,
            |mut c, r| async move { c.delete_parameter(r).await },
        )
        .await?;
    shape::ecs_json(&reply)
}
