//! The OCI runtime spec of a container, built from a [`ContainerSpec`] and its
//! image config. Pure: everything it needs from the machine (the resolved
//! user, the rlimit ceiling) is passed in, so the Docker/ECS rules it encodes
//! are unit-tested without containerd.

use std::collections::HashSet;
use std::path::PathBuf;
use std::str::FromStr;

use oci_spec::runtime::{
    Capability, LinuxBuilder, LinuxCapabilitiesBuilder, LinuxCpuBuilder, LinuxDeviceCgroupBuilder,
    LinuxMemoryBuilder, LinuxNamespaceBuilder, LinuxNamespaceType, LinuxPidsBuilder,
    LinuxResourcesBuilder, MountBuilder, PosixRlimitBuilder, PosixRlimitType, ProcessBuilder,
    RootBuilder, Spec, SpecBuilder, UserBuilder,
};

use super::spec_defaults::{default_mounts, ALL_CAPS, DEFAULT_CAPS, MASKED_PATHS, READONLY_PATHS};
use crate::{ContainerSpec, MountKind, RuntimeError};

/// What containerd calls the spec inside a container record's `Any`.
pub const SPEC_TYPE_URL: &str = "types.containerd.io/opencontainers/runtime-spec/1/Spec";

/// The PATH a container gets when neither image nor task sets one (Docker's).
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The container's user as numbers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResolvedUser {
    pub uid: u32,
    pub gid: u32,
    pub additional_gids: Vec<u32>,
}

/// What the spec needs from outside the [`ContainerSpec`].
pub struct SpecContext<'a> {
    /// The agent's containerd namespace (part of the cgroup path).
    pub namespace: &'a str,
    pub user: ResolvedUser,
    /// The current hard limit of an rlimit in this process: a container
    /// cannot be given more (runc fails with "operation not permitted").
    pub hard_limit: &'a dyn Fn(PosixRlimitType) -> Option<u64>,
    /// The capabilities the agent itself holds (its bounding set), when
    /// known: "all" (privileged, `cap_add: ALL`) means all of these, as
    /// containerd's WithAllCurrentCapabilities, since runc cannot grant
    /// one the agent lacks (it fails with "unable to apply caps").
    pub current_caps: Option<&'a [&'static str]>,
}

fn create_err(spec: &ContainerSpec, message: impl Into<String>) -> RuntimeError {
    RuntimeError::Create {
        id: spec.id.clone(),
        message: message.into(),
    }
}

/// The process args by Docker's rules: entryPoint replaces the image's
/// Entrypoint and drops its Cmd unless a command is given; command replaces
/// Cmd.
pub fn process_args(spec: &ContainerSpec) -> Result<Vec<String>, RuntimeError> {
    let image = &spec.image.config;
    let entry = spec
        .entry_point
        .clone()
        .unwrap_or_else(|| image.entrypoint.clone());
    let cmd = match (&spec.command, &spec.entry_point) {
        (Some(cmd), _) => cmd.clone(),
        (None, Some(_)) => Vec::new(),
        (None, None) => image.cmd.clone(),
    };
    let args: Vec<String> = entry.into_iter().chain(cmd).collect();
    if args.is_empty() {
        return Err(create_err(
            spec,
            format!(
                "no command: image {} has no Entrypoint or Cmd and the definition sets neither entryPoint nor command",
                spec.image.reference
            ),
        ));
    }
    Ok(args)
}

/// The environment: image env, then the task's entries replacing by key,
/// then PATH and HOSTNAME if still unset.
pub fn process_env(spec: &ContainerSpec) -> Vec<String> {
    let mut env: Vec<(String, String)> = Vec::new();
    let mut set = |key: &str, value: &str| match env.iter_mut().find(|(k, _)| k == key) {
        Some(slot) => slot.1 = value.to_string(),
        None => env.push((key.to_string(), value.to_string())),
    };
    for entry in &spec.image.config.env {
        let (k, v) = entry.split_once('=').unwrap_or((entry.as_str(), ""));
        set(k, v);
    }
    for (k, v) in &spec.environment {
        set(k, v);
    }
    for (k, v) in &spec.secret_environment {
        set(k, &v.0);
    }
    if !env.iter().any(|(k, _)| k == "PATH") {
        env.push(("PATH".into(), DEFAULT_PATH.into()));
    }
    if let Some(h) = &spec.hostname {
        if !env.iter().any(|(k, _)| k == "HOSTNAME") {
            env.push(("HOSTNAME".into(), h.clone()));
        }
    }
    env.into_iter().map(|(k, v)| format!("{k}={v}")).collect()
}

/// The user the container asks for: the task's, else the image's.
pub fn requested_user(spec: &ContainerSpec) -> Option<&str> {
    spec.user
        .as_deref()
        .or(spec.image.config.user.as_deref())
        .filter(|u| !u.is_empty())
}

fn rlimit_type(name: &str) -> Option<PosixRlimitType> {
    let name = name.to_ascii_lowercase();
    let upper = format!(
        "RLIMIT_{}",
        name.trim_start_matches("rlimit_").to_ascii_uppercase()
    );
    PosixRlimitType::from_str(&upper).ok()
}

fn capability(name: &str) -> Option<Capability> {
    let upper = name.trim().to_ascii_uppercase();
    Capability::from_str(upper.trim_start_matches("CAP_")).ok()
}

/// The effective capability set: Docker's defaults (or all, privileged),
/// plus cap_add, minus cap_drop (`ALL` allowed in both). "All" is
/// `current` where known (the agent's own set), else every capability.
pub fn capabilities(
    spec: &ContainerSpec,
    current: Option<&[&'static str]>,
) -> Result<HashSet<Capability>, RuntimeError> {
    let parse_all = |names: &[&str]| -> HashSet<Capability> {
        names.iter().filter_map(|n| capability(n)).collect()
    };
    let all = current.unwrap_or(&ALL_CAPS);
    if spec.privileged {
        return Ok(parse_all(all));
    }
    let mut caps = parse_all(&DEFAULT_CAPS);
    for name in &spec.cap_add {
        if name.eq_ignore_ascii_case("ALL") {
            caps.extend(parse_all(all));
        } else {
            caps.insert(capability(name).ok_or_else(|| {
                create_err(spec, format!("unknown capability {name:?} in cap_add"))
            })?);
        }
    }
    for name in &spec.cap_drop {
        if name.eq_ignore_ascii_case("ALL") {
            caps.clear();
        } else {
            let cap = capability(name).ok_or_else(|| {
                create_err(spec, format!("unknown capability {name:?} in cap_drop"))
            })?;
            caps.remove(&cap);
        }
    }
    Ok(caps)
}

fn rlimits(
    spec: &ContainerSpec,
    ctx: &SpecContext<'_>,
) -> Result<Vec<oci_spec::runtime::PosixRlimit>, RuntimeError> {
    let mut wanted: Vec<(PosixRlimitType, String, u64, u64)> = Vec::new();
    for u in &spec.ulimits {
        let typ = rlimit_type(&u.name)
            .ok_or_else(|| create_err(spec, format!("unknown ulimit {:?}", u.name)))?;
        if u.soft > u.hard {
            return Err(create_err(
                spec,
                format!(
                    "ulimit {}: soft limit {} exceeds hard limit {}",
                    u.name, u.soft, u.hard
                ),
            ));
        }
        wanted.push((typ, u.name.clone(), u.soft, u.hard));
    }
    // containerd's default: without it a container inherits the shim's
    // (possibly huge) nofile limit.
    if !wanted.iter().any(|w| w.0 == PosixRlimitType::RlimitNofile) {
        wanted.push((PosixRlimitType::RlimitNofile, "nofile".into(), 1024, 1024));
    }
    let mut out = Vec::new();
    for (typ, name, mut soft, mut hard) in wanted {
        if let Some(ceiling) = (ctx.hard_limit)(typ) {
            if hard > ceiling {
                tracing::warn!(container = %spec.id, ulimit = %name, asked = hard, ceiling,
                    "ulimit above this agent's own hard limit; clamped (the agent lacks CAP_SYS_RESOURCE)");
                hard = ceiling;
                soft = soft.min(hard);
            }
        }
        out.push(
            PosixRlimitBuilder::default()
                .typ(typ)
                .soft(soft)
                .hard(hard)
                .build()
                .map_err(|e| create_err(spec, e.to_string()))?,
        );
    }
    Ok(out)
}

fn mib(v: u64) -> i64 {
    i64::try_from(v.saturating_mul(1 << 20)).unwrap_or(i64::MAX)
}

/// The cgroup path runc creates under each v1 controller (or the unified
/// hierarchy): per agent namespace, so agents sharing a machine never mix.
pub fn cgroups_path(namespace: &str, id: &str) -> String {
    format!("/orca/{namespace}/{id}")
}

/// The container's mounts: the defaults, then the spec's own in order.
/// readonlyRootFilesystem does not reach them (runc applies the root's
/// read-only flag to the root alone, after mounting), so a volume stays
/// writable unless it is mounted read-only.
pub fn mounts(spec: &ContainerSpec) -> Result<Vec<oci_spec::runtime::Mount>, RuntimeError> {
    let mut out = default_mounts(spec.privileged).map_err(|e| create_err(spec, e))?;
    // Parents before children, as Docker sorts them: a tmpfs at /data/tmp
    // listed before a volume at /data would otherwise be hidden by it.
    let mut ordered: Vec<&crate::MountSpec> = spec.mounts.iter().collect();
    ordered.sort_by_key(|m| m.destination.trim_end_matches('/').matches('/').count());
    for m in ordered {
        if !m.destination.starts_with('/') {
            return Err(create_err(
                spec,
                format!("mount destination {:?} is not absolute", m.destination),
            ));
        }
        let (typ, source, options) = match &m.kind {
            MountKind::Bind { source, readonly } => {
                let mode = if *readonly { "ro" } else { "rw" };
                (
                    "bind",
                    source.clone(),
                    vec![
                        "rbind".to_string(),
                        "rprivate".to_string(),
                        mode.to_string(),
                    ],
                )
            }
            MountKind::Tmpfs { size_mib, options } => {
                let mut all: Vec<String> = ["nosuid", "nodev", "noexec"]
                    .iter()
                    .map(|o| o.to_string())
                    .collect();
                all.extend(options.iter().cloned());
                all.push(format!("size={size_mib}m"));
                ("tmpfs", PathBuf::from("tmpfs"), all)
            }
        };
        out.push(
            MountBuilder::default()
                .destination(PathBuf::from(&m.destination))
                .typ(typ)
                .source(source)
                .options(options)
                .build()
                .map_err(|e| create_err(spec, e.to_string()))?,
        );
    }
    Ok(out)
}

/// Builds the OCI runtime spec.
pub fn build(spec: &ContainerSpec, ctx: &SpecContext<'_>) -> Result<Spec, RuntimeError> {
    let err = |e: oci_spec::OciSpecError| create_err(spec, e.to_string());
    let args = process_args(spec)?;
    let cwd = spec
        .working_directory
        .clone()
        .or_else(|| spec.image.config.working_dir.clone())
        .unwrap_or_else(|| "/".to_string());
    if !cwd.starts_with('/') {
        return Err(create_err(
            spec,
            format!("working directory {cwd:?} is not absolute"),
        ));
    }
    let caps = capabilities(spec, ctx.current_caps)?;
    // Docker's rule: a privileged container runs without a profile; every
    // other one gets the default, opened up by the capabilities it holds.
    let seccomp = if spec.privileged {
        None
    } else {
        Some(super::seccomp::default_profile(&caps).map_err(|e| create_err(spec, e))?)
    };
    let user = UserBuilder::default()
        .uid(ctx.user.uid)
        .gid(ctx.user.gid)
        .additional_gids(ctx.user.additional_gids.clone())
        .build()
        .map_err(err)?;
    let process = ProcessBuilder::default()
        .terminal(false)
        .user(user)
        .args(args)
        .env(process_env(spec))
        .cwd(PathBuf::from(cwd))
        .capabilities(
            LinuxCapabilitiesBuilder::default()
                .bounding(caps.clone())
                .effective(caps.clone())
                .permitted(caps)
                .inheritable(HashSet::new())
                .ambient(HashSet::new())
                .build()
                .map_err(err)?,
        )
        .rlimits(rlimits(spec, ctx)?)
        .no_new_privileges(!spec.privileged)
        .build()
        .map_err(err)?;

    let mut namespaces = Vec::new();
    for typ in [
        LinuxNamespaceType::Pid,
        LinuxNamespaceType::Ipc,
        LinuxNamespaceType::Uts,
        LinuxNamespaceType::Mount,
        // Its own cgroup namespace: /proc/self/cgroup and /sys/fs/cgroup
        // show the container's cgroup as the root, not the host's tree.
        LinuxNamespaceType::Cgroup,
    ] {
        namespaces.push(
            LinuxNamespaceBuilder::default()
                .typ(typ)
                .build()
                .map_err(err)?,
        );
    }
    if let Some(netns) = &spec.netns_path {
        namespaces.push(
            LinuxNamespaceBuilder::default()
                .typ(LinuxNamespaceType::Network)
                .path(netns.clone())
                .build()
                .map_err(err)?,
        );
    }

    let mut memory = LinuxMemoryBuilder::default();
    if let Some(limit) = spec.memory_limit_mib {
        // swap == limit: no swap, so the limit is a real ceiling (and the
        // OOM killer, not swapping, is what a runaway container meets).
        memory = memory.limit(mib(limit)).swap(mib(limit));
    }
    if let Some(soft) = spec.memory_reservation_mib {
        memory = memory.reservation(mib(soft));
    }
    let device_rule = LinuxDeviceCgroupBuilder::default()
        .allow(spec.privileged)
        .access("rwm")
        .build()
        .map_err(err)?;
    let resources = LinuxResourcesBuilder::default()
        .cpu(
            LinuxCpuBuilder::default()
                .shares(spec.cpu_shares.clamp(2, 262_144))
                .build()
                .map_err(err)?,
        )
        .memory(memory.build().map_err(err)?)
        // Deny all device access; runc appends the standard allowed set
        // (null, zero, random, tty...).
        .devices(vec![device_rule])
        .pids(
            LinuxPidsBuilder::default()
                // -1 is the OCI spelling of "max" (no limit).
                .limit(
                    spec.pids_limit
                        .map_or(-1, |l| i64::try_from(l).unwrap_or(i64::MAX)),
                )
                .build()
                .map_err(err)?,
        )
        .build()
        .map_err(err)?;
    let (masked, readonly): (Vec<String>, Vec<String>) = if spec.privileged {
        (Vec::new(), Vec::new())
    } else {
        (
            MASKED_PATHS.iter().map(|s| s.to_string()).collect(),
            READONLY_PATHS.iter().map(|s| s.to_string()).collect(),
        )
    };
    let mut linux = LinuxBuilder::default();
    if let Some(profile) = seccomp {
        linux = linux.seccomp(profile);
    }
    let linux = linux
        .namespaces(namespaces)
        .resources(resources)
        .cgroups_path(PathBuf::from(cgroups_path(ctx.namespace, &spec.id)))
        .masked_paths(masked)
        .readonly_paths(readonly)
        .build()
        .map_err(err)?;

    let mut out = SpecBuilder::default()
        .version("1.0.2-dev")
        .root(
            RootBuilder::default()
                .path("rootfs")
                .readonly(spec.readonly_root_filesystem)
                .build()
                .map_err(err)?,
        )
        .process(process)
        .mounts(mounts(spec)?)
        .linux(linux)
        .build()
        .map_err(err)?;
    out.set_hostname(spec.hostname.clone());
    out.set_annotations(None);
    Ok(out)
}

/// The spec as containerd stores it in a container record.
pub fn to_any(spec: &Spec) -> Result<prost_types::Any, String> {
    Ok(prost_types::Any {
        type_url: SPEC_TYPE_URL.to_string(),
        value: serde_json::to_vec(spec).map_err(|e| format!("encode spec: {e}"))?,
    })
}

#[cfg(test)]
#[path = "spec_tests.rs"]
mod tests;
