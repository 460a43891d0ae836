//! `orca image load <oci-archive>`: loads an OCI image archive (`skopeo copy
//! docker://busybox:1.36 oci-archive:busybox.tar:busybox:1.36`) into this
//! machine's containerd, for nodes without a registry. It runs on the node
//! and talks to containerd, not to a controller; `--namespace` must be the
//! agent's containerd namespace (`orca` by default, as for `orca dev`).

use crate::exit::CliError;
use anyhow::Context as _;
use orca_runtime::containerd::{ContainerdConfig, ContainerdRuntime, RegistriesConfig};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::time::Duration;

pub const OPERATION: &str = "LoadImage";

/// How long connecting to containerd may take before the command gives up.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// An OCI image-layout archive (a tar file).
    pub archive: PathBuf,
    /// containerd's socket.
    #[arg(long, default_value = "/run/containerd/containerd.sock")]
    pub containerd_socket: PathBuf,
    /// The containerd namespace the agent runs its tasks in.
    #[arg(long, default_value = "orca")]
    pub namespace: String,
}

pub async fn run(args: &Args) -> anyhow::Result<Value> {
    let metadata = std::fs::metadata(&args.archive).map_err(|e| {
        CliError::usage(format!(
            "Error parsing parameter 'archive': {}: {e}",
            args.archive.display()
        ))
    })?;
    if !metadata.is_file() {
        return Err(CliError::usage(format!(
            "Error parsing parameter 'archive': {} is not a file",
            args.archive.display()
        ))
        .into());
    }
    super::dev::init_tracing("warn");
    // The runtime wants a state directory; loading an image keeps nothing there.
    let state_dir = std::env::temp_dir().join(format!("orca-image-load-{}", std::process::id()));
    let runtime = connect(&args.containerd_socket, &args.namespace, &state_dir, None).await;
    let loaded = match runtime {
        Ok(runtime) => runtime
            .load_archive(&args.archive)
            .await
            .with_context(|| format!("loading {}", args.archive.display())),
        Err(e) => Err(e),
    };
    // Empty, so removing it only undoes what connect created.
    let _ = std::fs::remove_dir(&state_dir);
    let images: Vec<Value> = loaded?
        .iter()
        .map(|i| json!({"reference": i.reference, "digest": i.digest}))
        .collect();
    Ok(json!({ "images": images }))
}

/// Connects to containerd in `namespace`, within [`CONNECT_TIMEOUT`];
/// containers started through it use `log_driver` (see `orca dev`).
pub async fn connect(
    socket: &Path,
    namespace: &str,
    state_dir: &Path,
    log_driver: Option<PathBuf>,
) -> anyhow::Result<ContainerdRuntime> {
    let config = ContainerdConfig {
        socket: socket.to_path_buf(),
        namespace: namespace.to_string(),
        registries: RegistriesConfig::default(),
        state_dir: state_dir.to_path_buf(),
        log_driver,
    };
    let what = || format!("connecting to containerd at {}", socket.display());
    tokio::time::timeout(CONNECT_TIMEOUT, ContainerdRuntime::connect(config))
        .await
        .map_err(|_| anyhow::anyhow!("no answer within {CONNECT_TIMEOUT:?}"))
        .with_context(what)?
        .with_context(what)
}
