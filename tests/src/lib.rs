//! Test support for orca's integration tests: controllers started in-process
//! or as real processes, and clients for them (gRPC, and ECS's JSON 1.1
//! protocol in `ecs_http`); multi-controller clusters
//! (`cluster`), test hosts in network namespaces (`netns`) and a
//! linearizability checker for recorded histories (`history`).

pub mod agents;
pub mod cluster;
pub mod containerd;
pub mod controller;
pub mod ecs_http;
pub mod history;
pub mod multinode;
pub mod netns;
pub mod probe;
pub mod proxy;
pub mod registry;

/// The directory holding the workspace's built binaries (target/debug when
/// the tests run from target/debug/deps).
pub fn bin_dir() -> std::path::PathBuf {
    let exe = std::env::current_exe().unwrap_or_default();
    let deps = exe
        .parent()
        .map(std::path::Path::to_path_buf)
        .unwrap_or_default();
    match deps.file_name().and_then(|n| n.to_str()) {
        Some("deps") => deps
            .parent()
            .map(std::path::Path::to_path_buf)
            .unwrap_or(deps),
        _ => deps,
    }
}

/// The path of a workspace binary; fails with the command that builds it.
pub fn bin_path(name: &str) -> anyhow::Result<std::path::PathBuf> {
    let path = bin_dir().join(name);
    anyhow::ensure!(
        path.exists(),
        "{} is not built: run `cargo build --workspace --bins` first (tests/run.sh does)",
        path.display()
    );
    Ok(path)
}
