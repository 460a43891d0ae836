//! Test hosts in Linux network namespaces, joined by one bridge, with
//! partitions made of iptables rules. Root only.
//!
//! A [`TestNet`] of `n` hosts owns a bridge carrying `198.18.S.1/24` on the
//! machine (the test process reaches every host through it) and `n`
//! namespaces; host `i` (1-based, so that host `i` can run controller node
//! `i`) has `eth0` at `198.18.S.(10+i)/24`, loopback up and a default route via
//! `.1`. Programs run inside a host with `nsenter --net=...` (never
//! `ip netns exec`, which remounts /sys and hides the cgroup mounts).
//!
//! Partitions are a set of blocked (from, to) pairs; every change rewrites the
//! `ORCA-PART` chain (jumped to from INPUT) of each namespace atomically with
//! `iptables-restore --noflush`. A host drops packets *arriving* from a
//! blocked peer, so a two-way cut is a rule on each side and senders see
//! silent loss, as in a real partition. The bridge address `.1` is never
//! blocked.
//!
//! Uniqueness: names carry the process id and a per-process TestNet counter
//! (`ot<pid>-<n>-<i>` for namespaces, `ob<pid36><n36>` for the bridge,
//! `ov<pid36><n36>-<i>` for the machine side of each veth, at most 15
//! characters); the subnet `S` is claimed with a lock file
//! `/run/orca-tests/subnet-S` naming its owner's pid and resources, so
//! concurrent test processes never share a subnet and a crashed process's
//! leftovers are removed when its subnet is claimed again.
//! [`lease_subnet`] claims a subnet through the same locks for tests that
//! build their own bridge (orca-net's).

use std::collections::BTreeSet;
use std::ffi::OsStr;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Mutex;

use anyhow::{bail, Context};

/// The chain each namespace's partition rules live in.
const CHAIN: &str = "ORCA-PART";
/// Where subnet claims live (tmpfs: cleared on reboot, like the bridges).
const LOCK_DIR: &str = "/run/orca-tests";

mod partition;
mod routed;

static NEXT_NET: AtomicU32 = AtomicU32::new(0);

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// A missing prerequisite: an error under `CI=true`, otherwise `Ok(false)`
/// after printing why the caller skips.
fn missing(reason: &str) -> anyhow::Result<bool> {
    if in_ci() {
        bail!("{reason} (CI=true: a missing prerequisite is a failure)");
    }
    eprintln!("skipping: {reason}");
    Ok(false)
}

/// Whether the process runs as root (effective uid 0). Not root: an error
/// under `CI=true`, otherwise `Ok(false)` with the reason printed.
pub fn require_root() -> anyhow::Result<bool> {
    let status =
        std::fs::read_to_string("/proc/self/status").context("reading /proc/self/status")?;
    let euid = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .context("no Uid line in /proc/self/status")?;
    if euid == "0" {
        Ok(true)
    } else {
        missing("network-namespace tests need root")
    }
}

fn on_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|dir| dir.join(program).is_file()))
}

/// Everything a [`TestNet`] needs: root, `ip`, `iptables`,
/// `iptables-restore` and `nsenter`. Same contract as [`require_root`].
pub fn netns_available() -> anyhow::Result<bool> {
    if !require_root()? {
        return Ok(false);
    }
    for program in ["ip", "iptables", "iptables-restore", "nsenter"] {
        if !on_path(program) {
            return missing(&format!("`{program}` is not installed"));
        }
    }
    Ok(true)
}

/// Runs a command to completion; fails with its stderr unless it succeeds.
pub fn run(cmd: &mut Command) -> anyhow::Result<Output> {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("running {cmd:?}"))?;
    if !out.status.success() {
        bail!(
            "{cmd:?} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(out)
}

fn ip(args: &[&str]) -> anyhow::Result<()> {
    run(Command::new("ip").args(args)).map(|_| ())
}

/// Best effort, for cleanup: errors are ignored.
fn quietly(program: &str, args: &[&str]) {
    let _ = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

fn base36(mut v: u32, width: usize) -> String {
    let digits = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut out = Vec::new();
    while v > 0 || out.len() < width {
        out.push(digits[(v % 36) as usize]);
        v /= 36;
    }
    out.reverse();
    String::from_utf8_lossy(&out).into_owned()
}

/// One test host: a namespace with one address on the bridge.
#[derive(Debug, Clone)]
pub struct NetHost {
    pub netns: String,
    pub addr: Ipv4Addr,
    /// The machine side of its veth (in the bridge).
    pub veth: String,
}

impl NetHost {
    /// The namespace's bind-mounted handle, for `nsenter --net=`.
    pub fn netns_path(&self) -> PathBuf {
        Path::new("/var/run/netns").join(&self.netns)
    }
}

/// A bridge with `n` namespaces on it; everything it made is removed on drop.
pub struct TestNet {
    bridge: String,
    subnet: u8,
    hosts: Vec<NetHost>,
    lock: Option<PathBuf>,
    bridge_made: bool,
    forward_rule: bool,
    /// Directed pairs (from, to): `to` drops what arrives from `from`.
    blocked: Mutex<BTreeSet<(usize, usize)>>,
    children: Mutex<Vec<Child>>,
    /// A routed net's router namespace and its hosts' subnet locks.
    router: Option<routed::Router>,
}

impl TestNet {
    /// Creates the bridge and `n` hosts (1 ≤ n ≤ 200). Call
    /// [`netns_available`] first to skip cleanly where it cannot work.
    pub fn new(n: usize) -> anyhow::Result<TestNet> {
        anyhow::ensure!(
            (1..=200).contains(&n),
            "a TestNet has 1 to 200 hosts, not {n}"
        );
        let (mut net, seq) = TestNet::unmade(n, true)?;
        // From here on, Drop removes whatever was made if a step fails.
        net.claim_subnet(seq)?;
        net.setup()?;
        Ok(net)
    }

    /// A net of `n` hosts named but not made yet (the machine's veth for
    /// each host only with `veths`), with the leftovers of an earlier
    /// process that had our pid removed; and its sequence number.
    fn unmade(n: usize, veths: bool) -> anyhow::Result<(TestNet, u32)> {
        let pid = std::process::id();
        let seq = NEXT_NET.fetch_add(1, Ordering::Relaxed);
        let tag = format!("{}{}", base36(pid, 5), base36(seq, 1));
        anyhow::ensure!(tag.len() <= 8, "too many TestNets in one process");
        let bridge = format!("ob{tag}");
        let hosts: Vec<NetHost> = (1..=n)
            .map(|i| NetHost {
                netns: format!("ot{pid}-{seq}-{i}"),
                addr: Ipv4Addr::UNSPECIFIED,
                veth: if veths {
                    format!("ov{tag}-{i}")
                } else {
                    String::new()
                },
            })
            .collect();
        // Leftovers of an earlier process that had our pid (it is dead now).
        for h in &hosts {
            quietly("ip", &["netns", "del", &h.netns]);
        }
        quietly("ip", &["link", "del", &bridge]);
        let net = TestNet {
            bridge,
            subnet: 0,
            hosts,
            lock: None,
            bridge_made: false,
            forward_rule: false,
            blocked: Mutex::new(BTreeSet::new()),
            children: Mutex::new(Vec::new()),
            router: None,
        };
        Ok((net, seq))
    }

    fn claim_subnet(&mut self, seq: u32) -> anyhow::Result<()> {
        let mut record = format!("pid={}\nbridge={}\n", std::process::id(), self.bridge);
        for h in &self.hosts {
            record.push_str(&format!("netns={}\n", h.netns));
        }
        let start = std::process::id().wrapping_add(seq.wrapping_mul(7));
        let (subnet, lock) = claim_free_subnet(start, &record)?;
        self.lock = Some(lock);
        self.subnet = subnet;
        for (i, h) in self.hosts.iter_mut().enumerate() {
            h.addr = Ipv4Addr::new(198, 18, subnet, 11 + i as u8);
        }
        Ok(())
    }

    fn setup(&mut self) -> anyhow::Result<()> {
        let br = self.bridge.clone();
        let cidr = format!("{}/24", self.host_addr());
        ip(&["link", "add", &br, "type", "bridge"])?;
        self.bridge_made = true;
        ip(&["addr", "add", &cidr, "dev", &br])?;
        ip(&["link", "set", &br, "up"])?;
        // bridge-nf-call-iptables=1 sends bridged frames through FORWARD.
        run(Command::new("iptables").args(forward_rule("-I", &br)))?;
        self.forward_rule = true;
        let gateway = self.host_addr().to_string();
        for h in self.hosts.clone() {
            ip(&["netns", "add", &h.netns])?;
            ip(&[
                "link", "add", &h.veth, "type", "veth", "peer", "name", "eth0", "netns", &h.netns,
            ])?;
            ip(&["link", "set", &h.veth, "master", &br, "up"])?;
            let addr = format!("{}/24", h.addr);
            ip(&["-n", &h.netns, "addr", "add", &addr, "dev", "eth0"])?;
            ip(&["-n", &h.netns, "link", "set", "lo", "up"])?;
            ip(&["-n", &h.netns, "link", "set", "eth0", "up"])?;
            ip(&["-n", &h.netns, "route", "add", "default", "via", &gateway])?;
            run(nsenter(&h).args(["iptables", "-N", CHAIN]))?;
            run(nsenter(&h).args(["iptables", "-A", "INPUT", "-j", CHAIN]))?;
        }
        Ok(())
    }

    /// How many hosts.
    pub fn len(&self) -> usize {
        self.hosts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.hosts.is_empty()
    }

    /// The bridge's name.
    pub fn bridge(&self) -> &str {
        &self.bridge
    }

    /// The third octet of `198.18.S.0/24`.
    pub fn subnet(&self) -> u8 {
        self.subnet
    }

    /// The machine's address on the bridge (`198.18.S.1`), reachable from
    /// every host whatever the partitions.
    pub fn host_addr(&self) -> Ipv4Addr {
        Ipv4Addr::new(198, 18, self.subnet, 1)
    }

    /// Host `i` (1-based). Panics on an index out of range, like slicing.
    pub fn host(&self, i: usize) -> &NetHost {
        assert!(
            (1..=self.hosts.len()).contains(&i),
            "host {i} out of 1..={}",
            self.hosts.len()
        );
        &self.hosts[i - 1]
    }

    /// Host `i`'s address (`198.18.S.(10+i)`).
    pub fn addr(&self, i: usize) -> Ipv4Addr {
        self.host(i).addr
    }

    /// Host `i`'s namespace name (under /var/run/netns).
    pub fn netns(&self, i: usize) -> &str {
        &self.host(i).netns
    }

    /// `nsenter --net=<host i> -- program`: add arguments and stdio, then run
    /// it or hand it to [`TestNet::spawn`].
    pub fn command(&self, i: usize, program: impl AsRef<OsStr>) -> Command {
        let mut cmd = nsenter(self.host(i));
        cmd.arg("--").arg(program);
        cmd
    }

    /// The argument vector that runs a program in host `i`
    /// (`nsenter --net=PATH --`), for callers that build their own Command.
    pub fn wrapper(&self, i: usize) -> Vec<std::ffi::OsString> {
        let mut net = std::ffi::OsString::from("--net=");
        net.push(self.host(i).netns_path());
        vec!["nsenter".into(), net, "--".into()]
    }

    /// Runs `cmd`'s program, arguments, environment and working directory in
    /// host `i` to completion (stdin null, output captured). Its exit status
    /// is the caller's to judge.
    pub fn run_in(&self, i: usize, cmd: &Command) -> anyhow::Result<Output> {
        let mut wrapped = self.wrap(i, cmd);
        wrapped
            .stdin(Stdio::null())
            .output()
            .with_context(|| format!("running {wrapped:?}"))
    }

    /// Starts `cmd` in host `i` (stdin null; stdout and stderr appended to
    /// `log`, or discarded) and returns its pid. Killed on drop or by
    /// [`TestNet::kill`].
    pub fn spawn_in(&self, i: usize, cmd: &Command, log: Option<&Path>) -> anyhow::Result<u32> {
        let mut wrapped = self.wrap(i, cmd);
        wrapped.stdin(Stdio::null());
        match log {
            Some(path) => {
                let f = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .with_context(|| format!("opening {}", path.display()))?;
                wrapped.stdout(f.try_clone()?).stderr(f);
            }
            None => {
                wrapped.stdout(Stdio::null()).stderr(Stdio::null());
            }
        }
        self.spawn(wrapped)
    }

    /// Spawns an already wrapped command (see [`TestNet::command`]) in a
    /// process group of its own and keeps it, to kill with its whole group
    /// (children it forked included) on drop; returns its pid.
    pub fn spawn(&self, mut cmd: Command) -> anyhow::Result<u32> {
        use std::os::unix::process::CommandExt;
        cmd.process_group(0);
        let child = cmd.spawn().with_context(|| format!("spawning {cmd:?}"))?;
        let pid = child.id();
        self.lock_children().push(child);
        Ok(pid)
    }

    /// SIGKILLs a process started by this TestNet, and its process group,
    /// and reaps it.
    pub fn kill(&self, pid: u32) -> anyhow::Result<()> {
        let mut children = self.lock_children();
        let pos = children
            .iter()
            .position(|c| c.id() == pid)
            .with_context(|| format!("pid {pid} was not started by this TestNet"))?;
        let child = children.remove(pos);
        kill_group(child)?;
        Ok(())
    }

    fn wrap(&self, i: usize, cmd: &Command) -> Command {
        let mut wrapped = self.command(i, cmd.get_program());
        wrapped.args(cmd.get_args());
        for (k, v) in cmd.get_envs() {
            match v {
                Some(v) => wrapped.env(k, v),
                None => wrapped.env_remove(k),
            };
        }
        if let Some(dir) = cmd.get_current_dir() {
            wrapped.current_dir(dir);
        }
        wrapped
    }

    fn lock_children(&self) -> std::sync::MutexGuard<'_, Vec<Child>> {
        self.children.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// SIGKILLs `child`'s process group (its pgid is its pid, see
/// [`TestNet::spawn`]), then the child itself, and reaps it.
fn kill_group(mut child: Child) -> std::io::Result<()> {
    quietly("kill", &["-KILL", "--", &format!("-{}", child.id())]);
    let _ = child.kill();
    child.wait().map(|_| ())
}

fn nsenter(h: &NetHost) -> Command {
    let mut cmd = Command::new("nsenter");
    let mut net = std::ffi::OsString::from("--net=");
    net.push(h.netns_path());
    cmd.arg(net);
    cmd
}

fn forward_rule<'a>(op: &'a str, bridge: &'a str) -> [&'a str; 8] {
    [op, "FORWARD", "-i", bridge, "-o", bridge, "-j", "ACCEPT"]
}

/// Claims the first /24 `198.18.S.0` (S from `start` on, 1 to 254) that no
/// interface uses and no live process holds, writing `record` (which starts
/// with `pid=`) into its lock file. Returns S and the lock's path.
fn claim_free_subnet(start: u32, record: &str) -> anyhow::Result<(u8, PathBuf)> {
    std::fs::create_dir_all(LOCK_DIR).with_context(|| format!("creating {LOCK_DIR}"))?;
    let in_use = String::from_utf8_lossy(
        &run(Command::new("ip").args(["-4", "-o", "addr", "show"]))?.stdout,
    )
    .into_owned();
    for k in 0..254u32 {
        let subnet = (1 + (start.wrapping_add(k)) % 254) as u8;
        if in_use.contains(&format!(" 198.18.{subnet}.")) {
            continue;
        }
        let lock = Path::new(LOCK_DIR).join(format!("subnet-{subnet}"));
        if !take_lock(&lock)? {
            continue;
        }
        std::fs::write(&lock, record).with_context(|| format!("writing {}", lock.display()))?;
        return Ok((subnet, lock));
    }
    bail!("no free /24 in 198.18.0.0/16 (see {LOCK_DIR})")
}

static NEXT_LEASE: AtomicU32 = AtomicU32::new(0);

/// A `198.18.S.0/24` claimed for a test that builds its own bridge (orca-net's
/// task network tests), through the same lock files as [`TestNet`], so the
/// two never share a subnet. The caller creates and removes the bridge
/// itself; the lock goes on drop. Should the process crash, whoever claims
/// S next removes the bridge, its FORWARD rules and the namespaces named
/// `{netns_prefix}-*`.
#[derive(Debug)]
pub struct SubnetLease {
    subnet: u8,
    lock: PathBuf,
}

/// Claims a subnet for a bridge named `bridge` whose namespaces are named
/// `{netns_prefix}-...`.
pub fn lease_subnet(bridge: &str, netns_prefix: &str) -> anyhow::Result<SubnetLease> {
    let record = format!(
        "pid={}\nbridge={bridge}\nforward_rules={bridge}\nnetns_prefix={netns_prefix}\n",
        std::process::id()
    );
    // Offset from TestNet's starting points so the two rarely probe the same S.
    let seq = NEXT_LEASE.fetch_add(1, Ordering::Relaxed);
    let start = std::process::id()
        .wrapping_add(127)
        .wrapping_add(seq.wrapping_mul(11));
    let (subnet, lock) = claim_free_subnet(start, &record)?;
    Ok(SubnetLease { subnet, lock })
}

impl SubnetLease {
    /// The third octet S.
    pub fn octet(&self) -> u8 {
        self.subnet
    }

    /// `198.18.S.0/24`.
    pub fn cidr(&self) -> String {
        format!("198.18.{}.0/24", self.subnet)
    }
}

impl Drop for SubnetLease {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.lock);
    }
}

/// Removes the namespaces under /run/netns named `{prefix}-*` (a crashed
/// lease holder's leftovers).
fn delete_namespaces_with_prefix(prefix: &str) {
    let Ok(entries) = std::fs::read_dir("/run/netns") else {
        return;
    };
    let wanted = format!("{prefix}-");
    for entry in entries.flatten() {
        if let Some(name) = entry.file_name().to_str() {
            if !prefix.is_empty() && name.starts_with(&wanted) {
                quietly("ip", &["netns", "del", name]);
            }
        }
    }
}

/// Creates `lock` exclusively; a lock whose owner pid is dead is removed with
/// the resources it names, then taken. Ok(false): someone alive holds it.
fn take_lock(lock: &Path) -> anyhow::Result<bool> {
    for _ in 0..2 {
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(lock)
        {
            Ok(_) => return Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                let record = std::fs::read_to_string(lock).unwrap_or_default();
                let pid = record.lines().find_map(|l| l.strip_prefix("pid="));
                let alive = match pid {
                    Some(pid) => Path::new("/proc").join(pid).exists(),
                    // Being written right now, or unreadable: not ours.
                    None => true,
                };
                if alive {
                    return Ok(false);
                }
                for line in record.lines() {
                    if let Some(ns) = line.strip_prefix("netns=") {
                        quietly("ip", &["netns", "del", ns]);
                    } else if let Some(br) = line.strip_prefix("bridge=") {
                        quietly("iptables", &forward_rule("-D", br));
                        quietly("ip", &["link", "del", br]);
                    } else if let Some(br) = line.strip_prefix("forward_rules=") {
                        // orca-net's rules: one for each direction.
                        for dir in ["-i", "-o"] {
                            quietly("iptables", &["-D", "FORWARD", dir, br, "-j", "ACCEPT"]);
                        }
                    } else if let Some(prefix) = line.strip_prefix("netns_prefix=") {
                        delete_namespaces_with_prefix(prefix);
                    }
                }
                let _ = std::fs::remove_file(lock);
            }
            Err(e) => return Err(e).with_context(|| format!("creating {}", lock.display())),
        }
    }
    Ok(false)
}

impl Drop for TestNet {
    fn drop(&mut self) {
        for child in self.lock_children().drain(..) {
            let _ = kill_group(child);
        }
        // Deleting a namespace takes its end of the veth, and with it ours.
        for h in &self.hosts {
            quietly("ip", &["netns", "del", &h.netns]);
        }
        // The kernel tears a namespace down asynchronously: wait for the
        // veths to go (a few ms), delete any still there after a second.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(1);
        if let Some(router) = &self.router {
            router.remove();
        }
        for h in self.hosts.iter().filter(|h| !h.veth.is_empty()) {
            let sys = Path::new("/sys/class/net").join(&h.veth);
            while sys.exists() && std::time::Instant::now() < deadline {
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            if sys.exists() {
                quietly("ip", &["link", "del", &h.veth]);
            }
        }
        if self.forward_rule {
            quietly("iptables", &forward_rule("-D", &self.bridge));
        }
        if self.bridge_made {
            quietly("ip", &["link", "del", &self.bridge]);
        }
        if let Some(lock) = &self.lock {
            let _ = std::fs::remove_file(lock);
        }
    }
}

/// Runs `f`'s future to completion on a fresh thread inside the network
/// namespace at `path`, on a runtime of its own, so that netlink sockets,
/// listeners and child processes it opens belong to that namespace.
pub fn block_in<T, F, Fut>(path: &Path, f: F) -> T
where
    T: Send + 'static,
    F: FnOnce() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = T>,
{
    orca_net::netns::in_namespace(path, move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime")
            .block_on(f())
    })
    .expect("entering the namespace")
}
