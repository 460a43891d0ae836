//! `orca`: the command line of the orca orchestrator, shaped like `aws ecs`.
//! This file is the clap definition and the dispatch to `commands::*`.

mod commands;
mod config;
mod exit;
mod failover;
mod input;
mod output;
mod paginate;
mod shorthand;

use clap::{Parser, Subcommand};
use commands::*;
use output::OutputFormat;
use std::process::ExitCode;

#[derive(Parser, Debug)]
#[command(
    name = "orca",
    version,
    about = "Control an orca cluster; commands and flags follow `aws ecs`."
)]
struct Cli {
    /// Controller(s) as HOST:PORT, comma-separated, tried in order [env: ORCA_ENDPOINT]
    #[arg(long, global = true)]
    endpoint: Option<String>,
    /// Output format [env: ORCA_OUTPUT] [default: json]
    #[arg(long, global = true, value_enum)]
    output: Option<OutputFormat>,
    /// Serve describe-* and list-* linearizably: the controller first checks
    /// with the leader that it has applied every committed write
    #[arg(long, global = true)]
    consistent_read: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Registers a task definition revision (from --cli-input-json and/or flags).
    RegisterTaskDefinition(Box<register_task_definition::Args>),
    /// Shows one task definition revision.
    DescribeTaskDefinition(describe_task_definition::Args),
    /// Marks a task definition revision INACTIVE.
    DeregisterTaskDefinition(deregister_task_definition::Args),
    /// Deletes INACTIVE task definition revisions.
    DeleteTaskDefinitions(delete_task_definitions::Args),
    /// Lists task definition ARNs.
    ListTaskDefinitions(list_task_definitions::Args),
    /// Lists task definition families.
    ListTaskDefinitionFamilies(list_task_definition_families::Args),
    /// Creates a cluster.
    CreateCluster(create_cluster::Args),
    /// Describes clusters.
    DescribeClusters(describe_clusters::Args),
    /// Lists cluster ARNs.
    ListClusters(list_clusters::Args),
    /// Deletes a cluster.
    DeleteCluster(delete_cluster::Args),
    /// Changes a cluster's settings.
    UpdateCluster(update_cluster::Args),
    /// The controller cluster: members, joining and removing controllers.
    #[command(subcommand)]
    Controller(ControllerCommand),
    /// Same as `orca controller members`.
    ClusterStatus(controller_members::Args),
}

#[derive(Subcommand, Debug)]
enum ControllerCommand {
    /// Shows the controllers, their roles and replication lag, the leader and the term.
    Members(controller_members::Args),
    /// Adds a controller (normally the controller does this itself with --join).
    Join(controller_join::Args),
    /// Removes a controller from the cluster.
    RemoveMember(controller_remove_member::Args),
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let settings = config::resolve(config::Sources::from_env(cli.endpoint, cli.output))?;
    let ctx = &Ctx::new(settings.endpoints, cli.consistent_read);
    let (operation, response) = match &cli.command {
        Command::RegisterTaskDefinition(a) => (
            register_task_definition::OPERATION,
            register_task_definition::run(a, ctx).await?,
        ),
        Command::DescribeTaskDefinition(a) => (
            describe_task_definition::OPERATION,
            describe_task_definition::run(a, ctx).await?,
        ),
        Command::DeregisterTaskDefinition(a) => (
            deregister_task_definition::OPERATION,
            deregister_task_definition::run(a, ctx).await?,
        ),
        Command::DeleteTaskDefinitions(a) => (
            delete_task_definitions::OPERATION,
            delete_task_definitions::run(a, ctx).await?,
        ),
        Command::ListTaskDefinitions(a) => (
            list_task_definitions::OPERATION,
            list_task_definitions::run(a, ctx).await?,
        ),
        Command::ListTaskDefinitionFamilies(a) => (
            list_task_definition_families::OPERATION,
            list_task_definition_families::run(a, ctx).await?,
        ),
        Command::CreateCluster(a) => (
            create_cluster::OPERATION,
            create_cluster::run(a, ctx).await?,
        ),
        Command::DescribeClusters(a) => (
            describe_clusters::OPERATION,
            describe_clusters::run(a, ctx).await?,
        ),
        Command::ListClusters(a) => (list_clusters::OPERATION, list_clusters::run(a, ctx).await?),
        Command::DeleteCluster(a) => (
            delete_cluster::OPERATION,
            delete_cluster::run(a, ctx).await?,
        ),
        Command::UpdateCluster(a) => (
            update_cluster::OPERATION,
            update_cluster::run(a, ctx).await?,
        ),
        Command::Controller(c) => return controller(c, ctx, settings.output).await,
        Command::ClusterStatus(a) => {
            let members = ControllerCommand::Members(a.clone());
            return controller(&members, ctx, settings.output).await;
        }
    };
    output::print(settings.output, operation, &response)?;
    Ok(())
}

/// The controller commands all print a members reply, with its own table.
async fn controller(
    command: &ControllerCommand,
    ctx: &Ctx,
    format: OutputFormat,
) -> anyhow::Result<()> {
    let (operation, reply) = match command {
        ControllerCommand::Members(a) => (
            controller_members::OPERATION,
            controller_members::run(a, ctx).await?,
        ),
        ControllerCommand::Join(a) => (
            controller_join::OPERATION,
            controller_join::run(a, ctx).await?,
        ),
        ControllerCommand::RemoveMember(a) => (
            controller_remove_member::OPERATION,
            controller_remove_member::run(a, ctx).await?,
        ),
    };
    output::write(&controller_members::render(format, operation, &reply))?;
    Ok(())
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        // Help and version go to stdout with success; usage errors exit 252 like the AWS CLI.
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { exit::USAGE } else { 0 });
        }
    };
    match run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => ExitCode::from(exit::report(&e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_parse_like_aws_ecs() -> anyhow::Result<()> {
        let cli = Cli::try_parse_from([
            "orca",
            "register-task-definition",
            "--family",
            "web",
            "--container-definitions",
            "name=web,image=nginx",
            "name=side,image=busybox",
            "--requires-compatibilities",
            "EC2",
            "--output",
            "table",
        ])?;
        assert_eq!(cli.output, Some(OutputFormat::Table));
        let Command::RegisterTaskDefinition(a) = cli.command else {
            anyhow::bail!("wrong command")
        };
        assert_eq!(a.container_definitions.len(), 2);
        assert!(
            Cli::try_parse_from(["orca", "register-task-definition", "--family", "x"]).is_err()
        );
        assert!(Cli::try_parse_from([
            "orca",
            "register-task-definition",
            "--cli-input-json",
            "{}"
        ])
        .is_ok());
        let cli = Cli::try_parse_from([
            "orca",
            "--endpoint",
            "h:1",
            "list-clusters",
            "--max-items",
            "2",
        ])?;
        assert_eq!(cli.endpoint.as_deref(), Some("h:1"));
        assert!(!cli.consistent_read);
        let cli = Cli::try_parse_from(["orca", "describe-clusters", "--consistent-read"])?;
        assert!(cli.consistent_read);
        Ok(())
    }

    #[test]
    fn controller_commands_parse() -> anyhow::Result<()> {
        let cli = Cli::try_parse_from(["orca", "controller", "members", "--output", "table"])?;
        assert!(matches!(
            cli.command,
            Command::Controller(ControllerCommand::Members(_))
        ));
        let cli = Cli::try_parse_from(["orca", "cluster-status", "--endpoint", "a:1,b:2"])?;
        assert!(matches!(cli.command, Command::ClusterStatus(_)));
        let cli = Cli::try_parse_from(["orca", "controller", "remove-member", "--node-id", "3"])?;
        let Command::Controller(ControllerCommand::RemoveMember(a)) = cli.command else {
            anyhow::bail!("wrong command")
        };
        assert_eq!(a.node_id, 3);
        let cli = Cli::try_parse_from([
            "orca",
            "controller",
            "join",
            "--node-id",
            "4",
            "--address",
            "10.0.0.14:7470",
        ])?;
        let Command::Controller(ControllerCommand::Join(a)) = cli.command else {
            anyhow::bail!("wrong command")
        };
        assert_eq!((a.node_id, a.address.as_str()), (4, "10.0.0.14:7470"));
        for bad in [
            &["orca", "controller", "remove-member"][..],
            &["orca", "controller", "remove-member", "--node-id", "0"],
            &["orca", "controller", "join", "--node-id", "4"],
        ] {
            assert!(Cli::try_parse_from(bad).is_err(), "{bad:?}");
        }
        Ok(())
    }
}
