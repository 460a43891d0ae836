//! Helpers shared by the integration tests.

use orca_api::v1::ecs_client::EcsClient;
use orca_api::v1::{self};
use orca_core::ApiError;
use tonic::transport::Channel;

pub type Client = EcsClient<Channel>;

/// Tests that start several controller processes or load one hard take
/// turns: on a 2-core machine two of them at once starve each other's
/// heartbeats and elections.
pub static HEAVY: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

pub fn fixture(name: &str) -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/task-definitions")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

pub fn minimal_definition(family: &str) -> String {
    format!(
        r#"{{"family":"{family}","containerDefinitions":[{{"name":"app","image":"busybox","memory":32}}]}}"#
    )
}

/// Registers and returns the describe-shape JSON of the new revision.
pub async fn register(
    client: &mut Client,
    input_json: &str,
) -> Result<serde_json::Value, ApiError> {
    let reply = client
        .register_task_definition(v1::RegisterTaskDefinitionRequest {
            input_json: input_json.to_string(),
            registered_by: String::new(),
        })
        .await
        .map_err(|s| orca_api::error::from_status(&s))?
        .into_inner();
    Ok(serde_json::from_str(&reply.task_definition_json).expect("the reply is JSON"))
}

pub async fn describe(client: &mut Client, reference: &str) -> Result<serde_json::Value, ApiError> {
    let reply = client
        .describe_task_definition(v1::DescribeTaskDefinitionRequest {
            task_definition: reference.to_string(),
            include: vec![],
        })
        .await
        .map_err(|s| orca_api::error::from_status(&s))?
        .into_inner();
    Ok(serde_json::from_str(&reply.task_definition_json).expect("the reply is JSON"))
}

pub fn revision(td: &serde_json::Value) -> u64 {
    td["revision"].as_u64().expect("revision is a number")
}

/// What a run of the `orca` binary printed and how it exited.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// stdout as JSON, after checking the command succeeded.
    pub fn json(&self) -> serde_json::Value {
        assert_eq!(self.code, 0, "stderr: {}", self.stderr);
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {}", self.stdout))
    }
}

/// Runs the `orca` binary against `endpoint`, isolated from any operator
/// config or environment.
pub async fn orca(endpoint: &str, args: &[&str]) -> Run {
    let out = tokio::process::Command::new(orca_tests::bin_path("orca").unwrap())
        .args(args)
        .env("ORCA_ENDPOINT", endpoint)
        // No operator config file may leak into the test.
        .env("ORCA_CONFIG", "/nonexistent/orca-test-config.toml")
        .env_remove("ORCA_OUTPUT")
        .output()
        .await
        .unwrap();
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}
