//! Unit tests of the OCI spec rules (Docker's args/env/caps semantics, the
//! rlimit clamp, resources and namespaces).

use std::path::PathBuf;

use oci_spec::runtime::{Capability, LinuxNamespaceType, PosixRlimitType};

use super::*;
use crate::{ImageConfig, ImageInfo, Sensitive, Ulimit};

fn spec() -> ContainerSpec {
    let image = ImageInfo {
        reference: "busybox:1".into(),
        digest: "sha256:00".into(),
        config: ImageConfig {
            entrypoint: vec!["/entry".into()],
            cmd: vec!["run".into(), "--fast".into()],
            env: vec!["PATH=/img/bin".into(), "A=image".into(), "B=image".into()],
            working_dir: Some("/srv".into()),
            user: None,
        },
    };
    ContainerSpec::new("c1", image, PathBuf::from("/tmp/log"))
}

fn no_ceiling(_: PosixRlimitType) -> Option<u64> {
    None
}

fn build_with(s: &ContainerSpec, ceiling: &dyn Fn(PosixRlimitType) -> Option<u64>) -> Spec {
    build(
        s,
        &SpecContext {
            namespace: "agent-1",
            user: ResolvedUser::default(),
            hard_limit: ceiling,
            current_caps: None,
        },
    )
    .expect("spec builds")
}

fn strs(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

#[test]
fn args_follow_docker_rules() {
    let mut s = spec();
    assert_eq!(
        process_args(&s).unwrap(),
        strs(&["/entry", "run", "--fast"])
    );
    s.command = Some(strs(&["other"]));
    assert_eq!(process_args(&s).unwrap(), strs(&["/entry", "other"]));
    s.command = None;
    s.entry_point = Some(strs(&["sh", "-c"]));
    assert_eq!(
        process_args(&s).unwrap(),
        strs(&["sh", "-c"]),
        "entryPoint drops image Cmd"
    );
    s.command = Some(strs(&["echo hi"]));
    assert_eq!(process_args(&s).unwrap(), strs(&["sh", "-c", "echo hi"]));
}

#[test]
fn empty_args_are_a_create_error() {
    let mut s = spec();
    s.image.config.entrypoint.clear();
    s.image.config.cmd.clear();
    match process_args(&s) {
        Err(RuntimeError::Create { id, message }) => {
            assert_eq!(id, "c1");
            assert!(message.contains("no command"), "{message}");
        }
        other => panic!("expected a create error, got {other:?}"),
    }
}

#[test]
fn env_overrides_by_key_and_adds_defaults() {
    let mut s = spec();
    s.environment = vec![("B".into(), "task".into()), ("C".into(), "x=y".into())];
    s.hostname = Some("web-1".into());
    assert_eq!(
        process_env(&s),
        strs(&[
            "PATH=/img/bin",
            "A=image",
            "B=task",
            "C=x=y",
            "HOSTNAME=web-1"
        ])
    );
    s.image.config.env.clear();
    s.hostname = None;
    assert_eq!(
        process_env(&s),
        vec![
            "B=task".into(),
            "C=x=y".into(),
            format!("PATH={DEFAULT_PATH}")
        ]
    );
}

#[test]
fn caps_default_add_drop_and_privileged() {
    let mut s = spec();
    let caps = capabilities(&s, None).unwrap();
    assert_eq!(caps.len(), DEFAULT_CAPS.len());
    assert!(caps.contains(&Capability::NetBindService));
    assert!(!caps.contains(&Capability::NetAdmin));
    s.cap_add = strs(&["NET_ADMIN", "CAP_SYS_TIME"]);
    s.cap_drop = strs(&["net_raw"]);
    let caps = capabilities(&s, None).unwrap();
    assert!(caps.contains(&Capability::NetAdmin) && caps.contains(&Capability::SysTime));
    assert!(!caps.contains(&Capability::NetRaw));
    s.cap_add = strs(&["NOT_A_CAP"]);
    assert!(matches!(
        capabilities(&s, None),
        Err(RuntimeError::Create { .. })
    ));
    s.cap_add.clear();
    s.privileged = true;
    assert!(capabilities(&s, None)
        .unwrap()
        .contains(&Capability::SysAdmin));
    // "All" is what the agent holds: runc cannot grant more.
    let held = super::super::spec_defaults::caps_of_mask("000001fffeffffff").unwrap();
    assert_eq!(held.len(), ALL_CAPS.len() - 1);
    assert!(!held.contains(&"SYS_RESOURCE"), "bit 24");
    let caps = capabilities(&s, Some(&held)).unwrap();
    assert!(caps.contains(&Capability::SysAdmin) && !caps.contains(&Capability::SysResource));
    s.privileged = false;
    s.cap_drop.clear();
    s.cap_add = strs(&["ALL"]);
    assert_eq!(capabilities(&s, Some(&held)).unwrap().len(), held.len());
}

#[test]
fn ulimits_are_clamped_to_the_agents_own_hard_limit() {
    let mut s = spec();
    s.ulimits = vec![
        Ulimit {
            name: "nofile".into(),
            soft: 65536,
            hard: 65536,
        },
        Ulimit {
            name: "core".into(),
            soft: 0,
            hard: 0,
        },
    ];
    let ceiling = |t: PosixRlimitType| (t == PosixRlimitType::RlimitNofile).then_some(20000);
    let built = build_with(&s, &ceiling);
    let rl = built.process().as_ref().unwrap().rlimits().clone().unwrap();
    let nofile = rl
        .iter()
        .find(|r| r.typ() == PosixRlimitType::RlimitNofile)
        .unwrap();
    assert_eq!((nofile.soft(), nofile.hard()), (20000, 20000));
    assert!(rl.iter().any(|r| r.typ() == PosixRlimitType::RlimitCore));
    s.ulimits = vec![Ulimit {
        name: "bogus".into(),
        soft: 1,
        hard: 1,
    }];
    assert!(build(
        &s,
        &SpecContext {
            namespace: "n",
            user: ResolvedUser::default(),
            hard_limit: &no_ceiling,
            current_caps: None,
        }
    )
    .is_err());
}

#[test]
fn resources_namespaces_and_security() {
    let mut s = spec();
    s.cpu_shares = 0;
    s.memory_limit_mib = Some(16);
    s.memory_reservation_mib = Some(8);
    s.netns_path = Some(PathBuf::from("/var/run/netns/task-1"));
    s.readonly_root_filesystem = true;
    s.hostname = Some("h".into());
    let built = build_with(&s, &no_ceiling);
    let linux = built.linux().as_ref().unwrap();
    let res = linux.resources().as_ref().unwrap();
    assert_eq!(
        res.cpu().as_ref().unwrap().shares(),
        Some(2),
        "0 cpu units is the kernel minimum"
    );
    let mem = res.memory().as_ref().unwrap();
    assert_eq!(mem.limit(), Some(16 << 20));
    assert_eq!(mem.reservation(), Some(8 << 20));
    let ns = linux.namespaces().as_ref().unwrap();
    let net = ns
        .iter()
        .find(|n| n.typ() == LinuxNamespaceType::Network)
        .unwrap();
    assert_eq!(
        net.path().as_deref(),
        Some(std::path::Path::new("/var/run/netns/task-1"))
    );
    assert_eq!(
        linux.cgroups_path().as_deref(),
        Some(std::path::Path::new("/orca/agent-1/c1"))
    );
    assert!(linux
        .masked_paths()
        .as_ref()
        .unwrap()
        .contains(&"/proc/kcore".to_string()));
    assert!(built.root().as_ref().unwrap().readonly().unwrap_or(false));
    assert_eq!(built.hostname().as_deref(), Some("h"));
    let process = built.process().as_ref().unwrap();
    assert_eq!(process.no_new_privileges(), Some(true));
    assert_eq!(process.cwd(), std::path::Path::new("/srv"));

    // Host network: no network namespace at all.
    s.netns_path = None;
    s.privileged = true;
    let built = build_with(&s, &no_ceiling);
    let linux = built.linux().as_ref().unwrap();
    assert!(!linux
        .namespaces()
        .as_ref()
        .unwrap()
        .iter()
        .any(|n| n.typ() == LinuxNamespaceType::Network));
    assert!(linux.masked_paths().as_ref().unwrap().is_empty());
    assert_eq!(
        built.process().as_ref().unwrap().no_new_privileges(),
        Some(false)
    );
}

#[test]
fn spec_any_has_containerds_type_url() {
    let built = build_with(&spec(), &no_ceiling);
    let any = to_any(&built).unwrap();
    assert_eq!(any.type_url, SPEC_TYPE_URL);
    let json: serde_json::Value = serde_json::from_slice(&any.value).unwrap();
    assert_eq!(json["process"]["args"][0], "/entry");
    assert_eq!(json["root"]["path"], "rootfs");
}

#[test]
fn mounts_follow_the_defaults_parents_first_and_keep_their_modes() {
    use crate::{MountKind, MountSpec};
    let mut s = spec();
    s.readonly_root_filesystem = true;
    s.mounts = vec![
        MountSpec {
            destination: "/data/tmp".into(),
            kind: MountKind::Tmpfs {
                size_mib: 64,
                options: strs(&["exec", "mode=1777"]),
            },
        },
        MountSpec {
            destination: "/data".into(),
            kind: MountKind::Bind {
                source: PathBuf::from("/var/lib/orca-agent/volumes/t1/data"),
                readonly: false,
            },
        },
        MountSpec {
            destination: "/etc/hosts".into(),
            kind: MountKind::Bind {
                source: PathBuf::from("/var/lib/orca-agent/task-files/t1/app/hosts"),
                readonly: true,
            },
        },
    ];
    let built = build_with(&s, &no_ceiling);
    // The root stays read-only; the volume is writable all the same.
    assert!(built.root().as_ref().unwrap().readonly().unwrap_or(false));
    let all = built.mounts().as_ref().unwrap();
    let defaults = default_mounts(false).unwrap().len();
    let ours: Vec<(String, String, Vec<String>)> = all[defaults..]
        .iter()
        .map(|m| {
            (
                m.destination().display().to_string(),
                m.typ().clone().unwrap_or_default(),
                m.options().clone().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        ours,
        vec![
            (
                "/data".into(),
                "bind".into(),
                strs(&["rbind", "rprivate", "rw"])
            ),
            (
                "/data/tmp".into(),
                "tmpfs".into(),
                strs(&["nosuid", "nodev", "noexec", "exec", "mode=1777", "size=64m"])
            ),
            (
                "/etc/hosts".into(),
                "bind".into(),
                strs(&["rbind", "rprivate", "ro"])
            ),
        ]
    );
    assert_eq!(
        all[defaults].source().as_ref().unwrap(),
        &PathBuf::from("/var/lib/orca-agent/volumes/t1/data")
    );

    s.mounts = vec![MountSpec {
        destination: "data".into(),
        kind: MountKind::Tmpfs {
            size_mib: 1,
            options: Vec::new(),
        },
    }];
    let err = build(
        &s,
        &SpecContext {
            namespace: "agent-1",
            user: ResolvedUser::default(),
            hard_limit: &no_ceiling,
            current_caps: None,
        },
    )
    .err()
    .map(|e| e.to_string())
    .unwrap_or_default();
    assert!(err.contains("not absolute"), "{err}");
}

#[test]
fn secrets_are_set_last_and_never_printed() {
    let mut s = spec();
    s.environment = vec![("B".into(), "task".into())];
    s.secret_environment = vec![("B".into(), Sensitive("hunter2".into()))];
    assert!(process_env(&s).contains(&"B=hunter2".to_string()));
    assert!(!format!("{s:?}").contains("hunter2"));
}

#[test]
fn hardening_pids_cgroup_namespace_and_seccomp() {
    let mut s = spec();
    let out = build_with(&s, &no_ceiling);
    let linux = out.linux().as_ref().unwrap();
    assert!(linux
        .namespaces()
        .iter()
        .flatten()
        .any(|n| n.typ() == LinuxNamespaceType::Cgroup));
    let pids = |o: &Spec| {
        o.linux()
            .as_ref()
            .and_then(|l| l.resources().as_ref())
            .and_then(|r| r.pids().as_ref())
            .map(|p| p.limit())
    };
    assert_eq!(pids(&out), Some(-1), "no limit: max");
    let seccomp = linux.seccomp().as_ref().expect("a default profile");
    assert_eq!(
        seccomp.default_action(),
        oci_spec::runtime::LinuxSeccompAction::ScmpActErrno
    );
    s.pids_limit = Some(50);
    assert_eq!(pids(&build_with(&s, &no_ceiling)), Some(50));
    s.privileged = true;
    let out = build_with(&s, &no_ceiling);
    assert!(
        out.linux().as_ref().unwrap().seccomp().is_none(),
        "privileged: no profile, as Docker"
    );
}
