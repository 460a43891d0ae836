//! orca-agent: the node agent. This build only parses its command line; the
//! agent that registers with a controller and runs tasks through containerd
//! arrives with the run-task issue.

use clap::Parser;

/// The orca node agent: registers this machine as a container instance and runs
/// the tasks the controller places on it.
#[derive(Debug, Parser)]
#[command(name = "orca-agent", version)]
struct Args {
    /// Controller endpoints (host:port), comma separated.
    #[arg(
        long,
        env = "ORCA_ENDPOINT",
        value_delimiter = ',',
        default_value = "127.0.0.1:7470"
    )]
    endpoints: Vec<String>,
    /// The cluster this instance joins.
    #[arg(long, default_value = "default")]
    cluster: String,
    /// Where the agent keeps its state.
    #[arg(long, default_value = "/var/lib/orca-agent")]
    data_dir: std::path::PathBuf,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    anyhow::bail!(
        "orca-agent is not implemented yet: it would join cluster '{}' through {:?} with data in {}",
        args.cluster,
        args.endpoints,
        args.data_dir.display()
    )
}
