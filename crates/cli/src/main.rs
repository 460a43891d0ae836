//! `orca`: the command line of the orca orchestrator, shaped like `aws ecs`.
//! This file is the clap definition and the dispatch to `commands::*`.

mod commands;
mod config;
mod exec_session;
mod exit;
mod failover;
mod input;
mod output;
mod paginate;
mod query;
mod shorthand;
mod terminal;

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
    /// A JMESPath expression selecting what to print, as the aws CLI's
    /// `--query` (`services[0].deployments[0].rolloutState`)
    #[arg(long, global = true)]
    query: Option<String>,
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
    /// Starts tasks from a task definition; --wait follows them to the end.
    RunTask(Box<run_task::Args>),
    /// Stops a task.
    StopTask(stop_task::Args),
    /// Describes tasks.
    DescribeTasks(describe_tasks::Args),
    /// Lists task ARNs.
    ListTasks(list_tasks::Args),
    /// Lists container instance ARNs.
    ListContainerInstances(list_container_instances::Args),
    /// Describes container instances.
    DescribeContainerInstances(describe_container_instances::Args),
    /// Sets DRAINING (no new placements) or ACTIVE on container instances.
    UpdateContainerInstancesState(update_container_instances_state::Args),
    /// Deregisters a container instance (--force while tasks are placed there).
    DeregisterContainerInstance(deregister_container_instance::Args),
    /// Creates or updates custom attributes on container instances.
    PutAttributes(put_attributes::Args),
    /// Deletes custom attributes from container instances.
    DeleteAttributes(delete_attributes::Args),
    /// Lists the attributes of a cluster's container instances.
    ListAttributes(list_attributes::Args),
    /// Creates a service: N copies of a task kept running and deployed safely.
    CreateService(Box<create_service::Args>),
    /// Changes a service: desired count, task definition (a new deployment), configuration.
    UpdateService(Box<update_service::Args>),
    /// Deletes a service (--force while it is scaled above 0).
    DeleteService(delete_service::Args),
    /// Describes services: deployments, counts and the latest events.
    DescribeServices(describe_services::Args),
    /// Lists service ARNs.
    ListServices(list_services::Args),
    /// Runs a command in a task's container (ECS Exec); exits with its code.
    #[command(name = "execute-command")]
    Exec(execute_command::Args),
    /// Stores a secret (Secrets Manager), encrypted with the cluster key.
    CreateSecret(secrets::CreateSecretArgs),
    /// Gives a secret a new current value (the old one becomes AWSPREVIOUS).
    PutSecretValue(secrets::PutSecretValueArgs),
    /// Shows a secret's value.
    GetSecretValue(secrets::GetSecretValueArgs),
    /// Shows a secret's details (never its value).
    DescribeSecret(secrets::SecretIdArgs),
    /// Lists secrets (never their values).
    ListSecrets(secrets::ListSecretsArgs),
    /// Deletes a secret, after a recovery window unless forced.
    DeleteSecret(secrets::DeleteSecretArgs),
    /// Cancels a secret's scheduled deletion.
    RestoreSecret(secrets::SecretIdArgs),
    /// Stores a parameter (Parameter Store), encrypted with the cluster key.
    PutParameter(parameters::PutParameterArgs),
    /// Shows one parameter.
    GetParameter(parameters::GetParameterArgs),
    /// Shows parameters by name.
    GetParameters(parameters::GetParametersArgs),
    /// Deletes a parameter.
    DeleteParameter(parameters::DeleteParameterArgs),
    /// Prints a task's container output (--follow streams it); `logs tail GROUP`
    /// prints an awslogs group as `aws logs tail` does.
    Logs(Box<logs::Args>),
    /// Waits for services or tasks to reach a state, as the aws CLI's waiters.
    #[command(subcommand)]
    Wait(wait::Waiter),
    /// Images in this machine's containerd.
    #[command(subcommand)]
    Image(ImageCommand),
    /// Runs a single-node controller and an agent on the local containerd in one process.
    Dev(dev::Args),
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

#[derive(Subcommand, Debug)]
enum ImageCommand {
    /// Loads an OCI image archive into the local containerd (for nodes without a registry).
    Load(image_load::Args),
}

/// Runs the command; returns the exit code when it is not an error's.
async fn run(cli: Cli) -> anyhow::Result<u8> {
    // The commands that work on this machine read no endpoint settings.
    match &cli.command {
        Command::Dev(a) => return dev::run(a).await.map(|()| 0),
        Command::Image(ImageCommand::Load(a)) => {
            let response = image_load::run(a).await?;
            let format = match cli.output {
                Some(format) => format,
                None => config::resolve(config::Sources::from_env(None, None))
                    .map_or(OutputFormat::Json, |s| s.output),
            };
            output::print(format, image_load::OPERATION, &response)?;
            return Ok(0);
        }
        _ => {}
    }
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
        Command::RunTask(a) if a.wait => {
            return run_task::run_and_wait(a, ctx, settings.output).await
        }
        Command::RunTask(a) => (run_task::OPERATION, run_task::run(a, ctx).await?),
        Command::StopTask(a) => (stop_task::OPERATION, stop_task::run(a, ctx).await?),
        Command::DescribeTasks(a) => (
            describe_tasks::OPERATION,
            describe_tasks::run(a, ctx).await?,
        ),
        Command::ListTasks(a) => (list_tasks::OPERATION, list_tasks::run(a, ctx).await?),
        Command::ListContainerInstances(a) => (
            list_container_instances::OPERATION,
            list_container_instances::run(a, ctx).await?,
        ),
        Command::DescribeContainerInstances(a) => (
            describe_container_instances::OPERATION,
            describe_container_instances::run(a, ctx).await?,
        ),
        Command::UpdateContainerInstancesState(a) => (
            update_container_instances_state::OPERATION,
            update_container_instances_state::run(a, ctx).await?,
        ),
        Command::DeregisterContainerInstance(a) => (
            deregister_container_instance::OPERATION,
            deregister_container_instance::run(a, ctx).await?,
        ),
        Command::PutAttributes(a) => (
            put_attributes::OPERATION,
            put_attributes::run(a, ctx).await?,
        ),
        Command::DeleteAttributes(a) => (
            delete_attributes::OPERATION,
            delete_attributes::run(a, ctx).await?,
        ),
        Command::ListAttributes(a) => (
            list_attributes::OPERATION,
            list_attributes::run(a, ctx).await?,
        ),
        Command::CreateService(a) => {
            let out = create_service::run(a, ctx).await?;
            if a.wait {
                wait::follow_rollout(ctx, a.cluster.clone(), &out).await?;
            }
            (create_service::OPERATION, out)
        }
        Command::UpdateService(a) => {
            let out = update_service::run(a, ctx).await?;
            if a.wait {
                wait::follow_rollout(ctx, a.cluster.clone(), &out).await?;
            }
            (update_service::OPERATION, out)
        }
        Command::Wait(w) => return wait::run(w, ctx).await,
        Command::Exec(a) => return execute_command::run(a, ctx).await,
        Command::CreateSecret(a) => ("CreateSecret", secrets::create_secret(a, ctx).await?),
        Command::PutSecretValue(a) => ("PutSecretValue", secrets::put_secret_value(a, ctx).await?),
        Command::GetSecretValue(a) => ("GetSecretValue", secrets::get_secret_value(a, ctx).await?),
        Command::DescribeSecret(a) => ("DescribeSecret", secrets::describe_secret(a, ctx).await?),
        Command::ListSecrets(a) => ("ListSecrets", secrets::list_secrets(a, ctx).await?),
        Command::DeleteSecret(a) => ("DeleteSecret", secrets::delete_secret(a, ctx).await?),
        Command::RestoreSecret(a) => ("RestoreSecret", secrets::restore_secret(a, ctx).await?),
        Command::PutParameter(a) => ("PutParameter", parameters::put_parameter(a, ctx).await?),
        Command::GetParameter(a) => ("GetParameter", parameters::get_parameter(a, ctx).await?),
        Command::GetParameters(a) => ("GetParameters", parameters::get_parameters(a, ctx).await?),
        Command::DeleteParameter(a) => (
            "DeleteParameter",
            parameters::delete_parameter(a, ctx).await?,
        ),
        Command::Logs(a) => return logs::run(a, ctx).await,
        Command::DeleteService(a) => (
            delete_service::OPERATION,
            delete_service::run(a, ctx).await?,
        ),
        Command::DescribeServices(a) => (
            describe_services::OPERATION,
            describe_services::run(a, ctx).await?,
        ),
        Command::ListServices(a) => (list_services::OPERATION, list_services::run(a, ctx).await?),
        Command::Controller(c) => return controller(c, ctx, settings.output).await.map(|()| 0),
        Command::ClusterStatus(a) => {
            let members = ControllerCommand::Members(a.clone());
            return controller(&members, ctx, settings.output).await.map(|()| 0);
        }
        // Run above.
        Command::Dev(_) | Command::Image(_) => return Ok(0),
    };
    let response = match &cli.query {
        Some(expression) => query::apply(expression, response)?,
        None => response,
    };
    output::print(settings.output, operation, &response)?;
    Ok(0)
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

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        // Help and version go to stdout with success; usage errors exit 252 like the AWS CLI.
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { exit::USAGE } else { 0 });
        }
    };
    // One thread serves a command's calls; `orca dev` runs a controller and an agent.
    let mut builder = if matches!(cli.command, Command::Dev(_)) {
        tokio::runtime::Builder::new_multi_thread()
    } else {
        tokio::runtime::Builder::new_current_thread()
    };
    let result = builder
        .enable_all()
        .build()
        .map_err(anyhow::Error::from)
        .and_then(|runtime| runtime.block_on(run(cli)));
    match result {
        Ok(code) => ExitCode::from(code),
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
    fn task_commands_parse() -> anyhow::Result<()> {
        let cli = Cli::try_parse_from([
            "orca",
            "run-task",
            "--task-definition",
            "exit3:2",
            "--count",
            "3",
            "--overrides",
            "containerOverrides=[{name=app,command=[sh,-c,exit 3]}]",
            "--tags",
            "key=a,value=1",
            "key=b,value=2",
            "--wait",
        ])?;
        let Command::RunTask(a) = cli.command else {
            anyhow::bail!("wrong command")
        };
        assert!(a.wait);
        assert_eq!(a.count, Some(3));
        assert_eq!(a.tags.len(), 2);
        let input: serde_json::Value = serde_json::from_str(&run_task::build_input(&a)?)?;
        assert_eq!(
            input["overrides"],
            serde_json::json!({"containerOverrides": [{"name": "app", "command": ["sh", "-c", "exit 3"]}]})
        );
        assert_eq!(input["count"], 3);
        assert!(input.get("wait").is_none());
        let cli = Cli::try_parse_from([
            "orca",
            "run-task",
            "--cli-input-json",
            "{}",
            "--enable-execute-command",
            "--no-enable-execute-command",
        ])?;
        let Command::RunTask(a) = cli.command else {
            anyhow::bail!("wrong command")
        };
        assert!(!a.wait);
        assert!(a.no_enable_execute_command && !a.enable_execute_command);

        let cli = Cli::try_parse_from([
            "orca",
            "describe-tasks",
            "--tasks",
            "a",
            "b",
            "--include",
            "TAGS",
        ])?;
        let Command::DescribeTasks(a) = cli.command else {
            anyhow::bail!("wrong command")
        };
        assert_eq!(a.tasks, ["a", "b"]);
        let cli = Cli::try_parse_from([
            "orca",
            "list-tasks",
            "--desired-status",
            "STOPPED",
            "--max-items",
            "5",
        ])?;
        assert!(matches!(cli.command, Command::ListTasks(_)));
        let cli = Cli::try_parse_from(["orca", "image", "load", "/tmp/busybox.tar"])?;
        let Command::Image(ImageCommand::Load(a)) = cli.command else {
            anyhow::bail!("wrong command")
        };
        assert_eq!(
            (a.archive.to_str(), a.namespace.as_str()),
            (Some("/tmp/busybox.tar"), "orca")
        );
        let cli = Cli::try_parse_from(["orca", "dev", "--task-cidr", "10.9.0.0/16"])?;
        let Command::Dev(a) = cli.command else {
            anyhow::bail!("wrong command")
        };
        assert_eq!(a.listen.to_string(), "127.0.0.1:7470");
        assert_eq!(a.data_dir.to_str(), Some("/var/lib/orca-dev"));
        for bad in [
            &["orca", "run-task"][..],
            &[
                "orca",
                "run-task",
                "--task-definition",
                "x",
                "--count",
                "two",
            ],
            &["orca", "stop-task"],
            &["orca", "describe-tasks"],
            &["orca", "describe-container-instances"],
            &["orca", "image", "load"],
            &["orca", "dev", "--listen", "nowhere"],
        ] {
            assert!(Cli::try_parse_from(bad).is_err(), "{bad:?}");
        }
        Ok(())
    }

    #[test]
    fn instance_commands_parse_into_ecs_input() -> anyhow::Result<()> {
        let input = |text: String| -> anyhow::Result<serde_json::Value> {
            Ok(serde_json::from_str(&text)?)
        };
        let cli = Cli::try_parse_from([
            "orca",
            "put-attributes",
            "--cluster",
            "prod",
            "--attributes",
            "name=stack,value=prod,targetType=container-instance,targetId=9c1e",
            "name=rack,value=7,targetId=9c1e",
        ])?;
        let Command::PutAttributes(a) = cli.command else {
            anyhow::bail!("wrong command")
        };
        assert_eq!(
            input(put_attributes::build_input(&a)?)?,
            serde_json::json!({"cluster": "prod", "attributes": [
                {"name": "stack", "value": "prod", "targetType": "container-instance", "targetId": "9c1e"},
                {"name": "rack", "value": "7", "targetId": "9c1e", "targetType": "container-instance"}
            ]})
        );
        let cli = Cli::try_parse_from([
            "orca",
            "delete-attributes",
            "--attributes",
            "name=stack,targetId=9c1e",
        ])?;
        let Command::DeleteAttributes(a) = cli.command else {
            anyhow::bail!("wrong command")
        };
        assert_eq!(
            input(delete_attributes::build_input(&a)?)?,
            serde_json::json!({"attributes": [{"name": "stack", "targetId": "9c1e", "targetType": "container-instance"}]})
        );
        let cli = Cli::try_parse_from([
            "orca",
            "list-attributes",
            "--target-type",
            "container-instance",
            "--attribute-name",
            "stack",
            "--max-items",
            "2",
            "--page-size",
            "1",
        ])?;
        let Command::ListAttributes(a) = cli.command else {
            anyhow::bail!("wrong command")
        };
        assert_eq!((a.page.max_items, a.page.page_size), (Some(2), Some(1)));
        assert_eq!(
            input(list_attributes::Input::new(&a)?.page(String::new(), 1)?)?,
            serde_json::json!({"targetType": "container-instance", "attributeName": "stack", "maxResults": 1})
        );
        let cli = Cli::try_parse_from([
            "orca",
            "update-container-instances-state",
            "--container-instances",
            "a",
            "b",
            "--status",
            "DRAINING",
        ])?;
        let Command::UpdateContainerInstancesState(a) = cli.command else {
            anyhow::bail!("wrong command")
        };
        assert_eq!(
            input(update_container_instances_state::build_input(&a)?)?,
            serde_json::json!({"containerInstances": ["a", "b"], "status": "DRAINING"})
        );
        // The last of --force / --no-force wins; neither sends no `force`.
        for (flags, force) in [
            (&["--force"][..], Some(true)),
            (&["--no-force"], Some(false)),
            (&["--no-force", "--force"], Some(true)),
            (&["--force", "--no-force"], Some(false)),
            (&[], None),
        ] {
            let argv = [
                "orca",
                "deregister-container-instance",
                "--container-instance",
                "a",
            ];
            let cli = Cli::try_parse_from(argv.iter().chain(flags))?;
            let Command::DeregisterContainerInstance(a) = cli.command else {
                anyhow::bail!("wrong command")
            };
            let sent = input(deregister_container_instance::build_input(&a)?)?;
            assert_eq!(
                sent.get("force").and_then(|v| v.as_bool()),
                force,
                "{flags:?}"
            );
        }
        let cli = Cli::try_parse_from([
            "orca",
            "list-container-instances",
            "--filter",
            "attribute:stack == prod",
            "--status",
            "DRAINING",
        ])?;
        let Command::ListContainerInstances(a) = cli.command else {
            anyhow::bail!("wrong command")
        };
        assert_eq!(
            (a.filter.as_deref(), a.status.as_deref()),
            (Some("attribute:stack == prod"), Some("DRAINING"))
        );
        for ok in [
            &["orca", "put-attributes", "--cli-input-json", "{}"][..],
            &["orca", "list-attributes", "--cli-input-json", "{}"],
            &[
                "orca",
                "update-container-instances-state",
                "--cli-input-json",
                "{}",
            ],
            &[
                "orca",
                "deregister-container-instance",
                "--cli-input-json",
                "{}",
            ],
        ] {
            assert!(Cli::try_parse_from(ok).is_ok(), "{ok:?}");
        }
        for bad in [
            &["orca", "put-attributes"][..],
            &["orca", "put-attributes", "--cluster", "c"],
            &["orca", "delete-attributes"],
            &["orca", "list-attributes"],
            &[
                "orca",
                "update-container-instances-state",
                "--status",
                "DRAINING",
            ],
            &[
                "orca",
                "update-container-instances-state",
                "--container-instances",
                "a",
            ],
            &["orca", "deregister-container-instance", "--force"],
            &[
                "orca",
                "deregister-container-instance",
                "--container-instance",
                "a",
                "--force=false",
            ],
        ] {
            assert!(Cli::try_parse_from(bad).is_err(), "{bad:?}");
        }
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

    #[test]
    fn logs_parse_for_a_task_and_for_a_group() -> anyhow::Result<()> {
        let cli = Cli::try_parse_from([
            "orca",
            "logs",
            "--cluster",
            "prod",
            "--task",
            "abc",
            "--follow",
            "--since",
            "1h",
            "--tail",
            "5",
            "--timestamps",
        ])?;
        let Command::Logs(a) = cli.command else {
            anyhow::bail!("wrong command")
        };
        assert_eq!(a.task.as_deref(), Some("abc"));
        assert_eq!((a.follow, a.timestamps, a.tail), (true, true, Some(5)));
        let cli = Cli::try_parse_from([
            "orca",
            "logs",
            "tail",
            "/ecs/web-app",
            "--follow",
            "--since",
            "1h",
            "--log-stream-name-prefix",
            "web/",
            "--format",
            "short",
        ])?;
        let Command::Logs(a) = cli.command else {
            anyhow::bail!("wrong command")
        };
        let Some(logs::LogsCommand::Tail(t)) = &a.command else {
            anyhow::bail!("no tail")
        };
        assert_eq!(t.group, "/ecs/web-app");
        assert_eq!(t.log_stream_name_prefix.as_deref(), Some("web/"));
        assert_eq!(t.format, logs_tail::Format::Short);
        for bad in [
            &["orca", "logs"][..],
            &["orca", "logs", "--follow"],
            &["orca", "logs", "tail"],
            &["orca", "logs", "--task", "t", "tail", "/g"],
        ] {
            assert!(Cli::try_parse_from(bad).is_err(), "{bad:?}");
        }
        Ok(())
    }
}
