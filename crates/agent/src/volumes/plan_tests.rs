//! One test per rule of the volume planner.

use serde_json::{json, Value};

use super::*;

fn settings() -> VolumeSettings {
    VolumeSettings {
        volumes_dir: PathBuf::from("/data/volumes"),
        files_dir: PathBuf::from("/data/task-files"),
        host_volume_paths: vec![PathBuf::from("/srv/shared"), PathBuf::from("/mnt/x")],
        dns_servers: vec![Ipv4Addr::new(192, 0, 2, 53)],
    }
}

fn volumes(v: Value) -> Vec<Volume> {
    serde_json::from_value(v).unwrap_or_else(|e| panic!("{e}"))
}

fn containers(v: Value) -> Vec<ContainerDefinition> {
    serde_json::from_value(v).unwrap_or_else(|e| panic!("{e}"))
}

fn run(vols: Value, defs: Value) -> Result<TaskSetup, VolumeError> {
    let (vols, defs) = (volumes(vols), containers(defs));
    plan(
        &TaskInput {
            task_id: "t1",
            mode: NetworkMode::Awsvpc,
            volumes: &vols,
            containers: &defs,
            network: Some(&task_network(&[])),
            secrets: &[],
        },
        &settings(),
    )
}

/// The task's network at 198.19.0.2; in bridge mode each of
/// `containers` has its own address from .2 on.
fn task_network(containers: &[&str]) -> orca_net::TaskNetwork {
    let endpoints: Vec<orca_net::Endpoint> = containers
        .iter()
        .zip(2u8..)
        .map(|(name, last)| orca_net::Endpoint {
            container: name.to_string(),
            netns_path: PathBuf::from(format!("/run/netns/x-t1.{}", last - 2)),
            ip: Ipv4Addr::new(198, 19, 0, last),
            mac_address: String::new(),
            host_veth: String::new(),
        })
        .collect();
    orca_net::TaskNetwork {
        task_id: "t1".into(),
        netns_path: PathBuf::from("/run/netns/x-t1"),
        ip: Ipv4Addr::new(198, 19, 0, 2),
        prefix_len: 24,
        gateway: Ipv4Addr::new(198, 19, 0, 1),
        mac_address: String::new(),
        host_veth: String::new(),
        loopback_only: false,
        endpoints,
    }
}

fn ok(vols: Value, defs: Value) -> TaskSetup {
    run(vols, defs).unwrap_or_else(|e| panic!("{e}"))
}

fn bind(source: &str, readonly: bool) -> MountKind {
    MountKind::Bind {
        source: PathBuf::from(source),
        readonly,
    }
}

/// A container's mounts other than the /etc files.
fn volume_mounts_of(setup: &TaskSetup, name: &str) -> Vec<(String, MountKind)> {
    setup.mounts[name]
        .iter()
        .filter(|m| !m.destination.starts_with("/etc/"))
        .map(|m| (m.destination.clone(), m.kind.clone()))
        .collect()
}

#[test]
fn a_scratch_volume_is_a_task_directory_shared_by_its_containers() {
    let s = ok(
        json!([{"name": "scratch"}, {"name": "empty-host", "host": {}}]),
        json!([
            {"name": "w", "image": "b", "mountPoints": [{"sourceVolume": "scratch", "containerPath": "/out"}]},
            {"name": "r", "image": "b", "mountPoints": [{"sourceVolume": "scratch", "containerPath": "/in/", "readOnly": true}]}
        ]),
    );
    assert_eq!(
        s.task_dirs,
        vec![
            PathBuf::from("/data/volumes/tasks/t1/scratch"),
            PathBuf::from("/data/volumes/tasks/t1/empty-host")
        ]
    );
    assert_eq!(
        volume_mounts_of(&s, "w"),
        vec![("/out".into(), bind("/data/volumes/tasks/t1/scratch", false))]
    );
    assert_eq!(
        volume_mounts_of(&s, "r"),
        vec![("/in".into(), bind("/data/volumes/tasks/t1/scratch", true))]
    );
    assert!(s.shared.is_empty() && s.host_paths.is_empty());
}

#[test]
fn a_task_scoped_docker_volume_is_the_task_directory_too() {
    let s = ok(
        json!([{"name": "d", "dockerVolumeConfiguration": {"scope": "task", "driver": "local", "labels": {"a": "b"}}},
               {"name": "e", "dockerVolumeConfiguration": {}}]),
        json!([{"name": "c", "image": "b"}]),
    );
    assert_eq!(
        s.task_dirs,
        vec![
            PathBuf::from("/data/volumes/tasks/t1/d"),
            PathBuf::from("/data/volumes/tasks/t1/e")
        ]
    );
}

#[test]
fn a_shared_volume_lives_outside_the_task_with_its_labels() {
    let s = ok(
        json!([{"name": "cache", "dockerVolumeConfiguration": {"scope": "shared", "autoprovision": true, "labels": {"team": "a"}}}]),
        json!([{"name": "c", "image": "b", "mountPoints": [{"sourceVolume": "cache", "containerPath": "/cache"}]}]),
    );
    assert_eq!(
        s.shared,
        vec![SharedVolume {
            name: "cache".into(),
            dir: PathBuf::from("/data/volumes/shared/cache"),
            driver: "local".into(),
            labels: BTreeMap::from([("team".to_string(), "a".to_string())]),
            autoprovision: true,
        }]
    );
    assert!(s.task_dirs.is_empty());
    assert_eq!(
        volume_mounts_of(&s, "c"),
        vec![(
            "/cache".into(),
            bind("/data/volumes/shared/cache/_data", false)
        )]
    );
    let s = ok(
        json!([{"name": "cache", "dockerVolumeConfiguration": {"scope": "shared"}}]),
        json!([{"name": "c", "image": "b"}]),
    );
    assert!(!s.shared[0].autoprovision);
}

#[test]
fn other_drivers_and_driver_opts_are_refused() {
    let e = run(
        json!([{"name": "v", "dockerVolumeConfiguration": {"driver": "rexray/ebs"}}]),
        json!([{"name": "c", "image": "b"}]),
    );
    assert_eq!(
        e.err().map(|e| e.reason()),
        Some(
            "CannotCreateVolumeError: volume v: driver rexray/ebs is not supported (only local)"
                .into()
        )
    );
    let e = run(
        json!([{"name": "v", "dockerVolumeConfiguration": {"driver": "local", "driverOpts": {"type": "nfs"}}}]),
        json!([{"name": "c", "image": "b"}]),
    );
    assert!(matches!(e, Err(VolumeError::DriverOpts { .. })));
}

#[test]
fn efs_fsx_and_launch_configured_volumes_are_refused() {
    for v in [
        json!({"name": "v", "efsVolumeConfiguration": {"fileSystemId": "fs-1"}}),
        json!({"name": "v", "fsxWindowsFileServerVolumeConfiguration": {"fileSystemId": "fs-1", "rootDirectory": "x", "authorizationConfig": {"credentialsParameter": "a", "domain": "d"}}}),
        json!({"name": "v", "configuredAtLaunch": true}),
    ] {
        let e = run(json!([v]), json!([{"name": "c", "image": "b"}]));
        assert!(matches!(e, Err(VolumeError::Unsupported { .. })), "{e:?}");
    }
}

#[test]
fn host_paths_must_be_under_the_allow_list() {
    let s = ok(
        json!([{"name": "h", "host": {"sourcePath": "/srv/shared/./app/../web"}}]),
        json!([{"name": "c", "image": "b", "mountPoints": [{"sourceVolume": "h", "containerPath": "/web", "readOnly": true}]}]),
    );
    assert_eq!(
        s.host_paths,
        vec![HostPath {
            volume: "h".into(),
            path: PathBuf::from("/srv/shared/web")
        }]
    );
    assert_eq!(
        volume_mounts_of(&s, "c"),
        vec![("/web".into(), bind("/srv/shared/web", true))]
    );
    assert_eq!(s.allowed_roots, settings().host_volume_paths);
    // The root of the allow-list itself is allowed; a sibling with the
    // same prefix, a climb out, and a relative path are not.
    assert!(
        ok(
            json!([{"name": "h", "host": {"sourcePath": "/mnt/x"}}]),
            json!([{"name": "c", "image": "b"}])
        )
        .host_paths
        .len()
            == 1
    );
    for path in ["/mnt/xy", "/srv/shared/../../etc", "/etc/shadow"] {
        let e = run(
            json!([{"name": "h", "host": {"sourcePath": path}}]),
            json!([{"name": "c", "image": "b"}]),
        );
        assert!(
            matches!(e, Err(VolumeError::HostPathNotAllowed { .. })),
            "{path}: {e:?}"
        );
    }
    let e = run(
        json!([{"name": "h", "host": {"sourcePath": "etc"}}]),
        json!([{"name": "c", "image": "b"}]),
    );
    assert!(matches!(e, Err(VolumeError::HostPathNotAbsolute { .. })));
}

#[test]
fn with_no_allow_list_every_host_path_is_refused_clearly() {
    let (vols, defs) = (
        volumes(json!([{"name": "h", "host": {"sourcePath": "/srv/shared"}}])),
        containers(json!([{"name": "c", "image": "b"}])),
    );
    let e = plan(
        &TaskInput {
            task_id: "t1",
            mode: NetworkMode::Bridge,
            volumes: &vols,
            containers: &defs,
            network: None,
            secrets: &[],
        },
        &VolumeSettings::default(),
    );
    assert_eq!(
        e.err().map(|e| e.reason()),
        Some(
            "CannotCreateVolumeError: volume h: host path /srv/shared is not under the agent's \
             host_volume_paths (none configured)"
                .into()
        )
    );
}

#[test]
fn volumes_from_is_recursive_with_a_read_only_override() {
    let s = ok(
        json!([{"name": "a"}, {"name": "b"}]),
        json!([
            {"name": "base", "image": "b", "mountPoints": [{"sourceVolume": "a", "containerPath": "/a"}]},
            {"name": "mid", "image": "b", "volumesFrom": [{"sourceContainer": "base"}],
             "mountPoints": [{"sourceVolume": "b", "containerPath": "/b", "readOnly": true}]},
            {"name": "top", "image": "b", "volumesFrom": [{"sourceContainer": "mid", "readOnly": true}]},
            {"name": "own", "image": "b", "volumesFrom": [{"sourceContainer": "mid", "readOnly": false}],
             "mountPoints": [{"sourceVolume": "b", "containerPath": "/a"}]}
        ]),
    );
    assert_eq!(
        volume_mounts_of(&s, "mid"),
        vec![
            ("/a".into(), bind("/data/volumes/tasks/t1/a", false)),
            ("/b".into(), bind("/data/volumes/tasks/t1/b", true)),
        ]
    );
    assert_eq!(
        volume_mounts_of(&s, "top"),
        vec![
            ("/a".into(), bind("/data/volumes/tasks/t1/a", true)),
            ("/b".into(), bind("/data/volumes/tasks/t1/b", true)),
        ]
    );
    // readOnly false keeps the source's modes; the container's own mount
    // wins on the same path.
    assert_eq!(
        volume_mounts_of(&s, "own"),
        vec![
            ("/b".into(), bind("/data/volumes/tasks/t1/b", true)),
            ("/a".into(), bind("/data/volumes/tasks/t1/b", false)),
        ]
    );
}

#[test]
fn a_volumes_from_cycle_is_refused() {
    let e = run(
        json!([]),
        json!([
            {"name": "x", "image": "b", "volumesFrom": [{"sourceContainer": "y"}]},
            {"name": "y", "image": "b", "volumesFrom": [{"sourceContainer": "x"}]}
        ]),
    );
    assert!(
        matches!(&e, Err(VolumeError::VolumesFromCycle { container, .. }) if container == "x"),
        "{e:?}"
    );
}

#[test]
fn tmpfs_mounts_carry_size_and_options_and_are_not_inherited() {
    let s = ok(
        json!([]),
        json!([
            {"name": "c", "image": "b", "linuxParameters": {"tmpfs": [{"containerPath": "/run/x", "size": 16, "mountOptions": ["exec", "mode=1777"]}]}},
            {"name": "d", "image": "b", "volumesFrom": [{"sourceContainer": "c"}]}
        ]),
    );
    assert_eq!(
        volume_mounts_of(&s, "c"),
        vec![(
            "/run/x".into(),
            MountKind::Tmpfs {
                size_mib: 16,
                options: vec!["exec".into(), "mode=1777".into()]
            }
        )]
    );
    assert!(volume_mounts_of(&s, "d").is_empty());
}

#[test]
fn every_container_gets_its_etc_files_read_only_with_a_read_only_root() {
    let s = ok(
        json!([]),
        json!([
            {"name": "app", "image": "b"},
            {"name": "ro", "image": "b", "readonlyRootFilesystem": true}
        ]),
    );
    let etc: Vec<(String, MountKind)> = s.mounts["app"]
        .iter()
        .map(|m| (m.destination.clone(), m.kind.clone()))
        .collect();
    assert_eq!(
        etc,
        vec![
            (
                "/etc/resolv.conf".into(),
                bind("/data/task-files/t1/app/resolv.conf", false)
            ),
            (
                "/etc/hosts".into(),
                bind("/data/task-files/t1/app/hosts", false)
            ),
            (
                "/etc/hostname".into(),
                bind("/data/task-files/t1/app/hostname", false)
            ),
        ]
    );
    assert!(s.mounts["ro"]
        .iter()
        .all(|m| matches!(m.kind, MountKind::Bind { readonly: true, .. })));
    let files: BTreeMap<PathBuf, String> = s.files.iter().cloned().collect();
    assert_eq!(
        files[&PathBuf::from("/data/task-files/t1/app/resolv.conf")],
        "# written by orca-agent\nnameserver 192.0.2.53\n"
    );
    assert!(files[&PathBuf::from("/data/task-files/t1/app/hosts")].ends_with("198.19.0.2\tt1\n"));
    assert_eq!(
        files[&PathBuf::from("/data/task-files/t1/app/hostname")],
        "t1\n"
    );
}

#[test]
fn a_user_mount_on_an_etc_file_replaces_the_agents() {
    let s = ok(
        json!([{"name": "h", "host": {"sourcePath": "/srv/shared/hosts"}}]),
        json!([{"name": "c", "image": "b", "mountPoints": [{"sourceVolume": "h", "containerPath": "/etc/hosts"}]}]),
    );
    let hosts: Vec<&MountSpec> = s.mounts["c"]
        .iter()
        .filter(|m| m.destination == "/etc/hosts")
        .collect();
    assert_eq!(hosts.len(), 1);
    assert_eq!(hosts[0].kind, bind("/srv/shared/hosts", false));
    assert_eq!(s.files.len(), 2);
}

#[test]
fn normalize_resolves_dots_lexically() {
    assert_eq!(normalize("/a/./b/../c/"), Some(PathBuf::from("/a/c")));
    assert_eq!(normalize("/../.."), Some(PathBuf::from("/")));
    assert_eq!(normalize("a/b"), None);
}

#[test]
fn bridge_links_name_each_linked_containers_own_address() {
    let defs = containers(json!([
        {"name": "db", "image": "b"},
        {"name": "web", "image": "b", "links": ["db:database", "cache"]},
        {"name": "cache", "image": "b"}
    ]));
    let network = task_network(&["db", "web", "cache"]);
    let setup = plan(
        &TaskInput {
            task_id: "t1",
            mode: NetworkMode::Bridge,
            volumes: &[],
            containers: &defs,
            network: Some(&network),
            secrets: &[],
        },
        &settings(),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let hosts_of = |name: &str| {
        setup
            .files
            .iter()
            .find(|(path, _)| path.ends_with(format!("{name}/hosts")))
            .map(|(_, text)| text.clone())
            .unwrap_or_else(|| panic!("no hosts file for {name}"))
    };
    assert!(
        hosts_of("web").ends_with("198.19.0.2\tdatabase db\n198.19.0.4\tcache\n198.19.0.3\tt1\n"),
        "{}",
        hosts_of("web")
    );
    assert!(
        hosts_of("db").ends_with("ip6-allrouters\n198.19.0.2\tt1\n"),
        "{}",
        hosts_of("db")
    );
}

#[test]
fn secrets_as_files_are_a_read_only_directory_of_the_task() {
    use orca_core::agent_protocol::ContainerSecret;
    use orca_core::secrets::SecretValue;
    let defs = containers(json!([
        {"name": "app", "image": "b", "dockerLabels": {"orca.secrets.files": "/run/secrets/"}},
        {"name": "side", "image": "b"}
    ]));
    let secret = |container: &str, name: &str| ContainerSecret {
        container: container.into(),
        name: name.into(),
        value: SecretValue::new("v"),
    };
    let secrets = [secret("app", "DB_PASSWORD"), secret("side", "TOKEN")];
    let setup = plan(
        &TaskInput {
            task_id: "t1",
            mode: NetworkMode::Awsvpc,
            volumes: &[],
            containers: &defs,
            network: Some(&task_network(&[])),
            secrets: &secrets,
        },
        &settings(),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    // Only the container asking for files gets them; the other keeps its
    // secrets for the environment.
    assert_eq!(setup.secret_files.len(), 1);
    let files = &setup.secret_files[0];
    assert_eq!(
        files.dir,
        settings().task_files_dir("t1").join("app.secrets")
    );
    assert_eq!(files.files[0].0, "DB_PASSWORD");
    let mount = setup.mounts["app"]
        .iter()
        .find(|m| m.destination == "/run/secrets")
        .cloned();
    assert_eq!(
        mount.map(|m| m.kind),
        Some(MountKind::Bind {
            source: files.dir.clone(),
            readonly: true
        })
    );
    assert!(!setup.mounts["side"]
        .iter()
        .any(|m| m.destination == "/run/secrets"));
    assert!(
        !format!("{setup:?}").contains("\"v\""),
        "values never print"
    );
}
