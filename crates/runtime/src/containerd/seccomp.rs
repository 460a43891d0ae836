//! The default seccomp profile: the one Docker and containerd give every
//! container that is not privileged, written out as data. Everything is
//! refused with EPERM except an allow-list of ordinary syscalls; the
//! syscalls that reach into the kernel's global state (mount, unshare,
//! module loading, kexec, bpf, keyrings, clock setting...) are allowed
//! only when the container holds the capability that governs them, as in
//! Docker's profile, so `cap_add` and the profile agree.
//!
//! Left out on purpose: the kernel-version conditions Docker's profile has
//! (orca needs a kernel newer than 4.8, where ptrace no longer bypasses
//! seccomp, so ptrace and process_vm_* are simply allowed), and the
//! architectures orca does not build for.

use std::collections::HashSet;

use oci_spec::runtime::{
    Arch, Capability, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompArg, LinuxSeccompBuilder,
    LinuxSeccompOperator, LinuxSyscall, LinuxSyscallBuilder,
};

/// EPERM: what a refused syscall returns (Docker's defaultErrnoRet), so a
/// program sees an ordinary permission error rather than a kill.
const EPERM: u32 = 1;
/// ENOSYS: clone3 without CAP_SYS_ADMIN looks unimplemented, so libc falls
/// back to clone, whose namespace flags the profile can inspect (clone3
/// passes them in memory seccomp cannot read).
const ENOSYS: u32 = 38;

/// The namespace flags of clone(2) (CLONE_NEWNS | NEWCGROUP | NEWUTS |
/// NEWIPC | NEWUSER | NEWPID | NEWNET): a container without CAP_SYS_ADMIN
/// may clone only with none of them set.
pub const CLONE_NAMESPACE_FLAGS: u64 = 0x7E02_0000;

/// Allowed for every container.
pub const ALLOWED: &[&str] = &[
    "accept",
    "accept4",
    "access",
    "adjtimex",
    "alarm",
    "bind",
    "brk",
    "cachestat",
    "capget",
    "capset",
    "chdir",
    "chmod",
    "chown",
    "chown32",
    "clock_adjtime",
    "clock_adjtime64",
    "clock_getres",
    "clock_getres_time64",
    "clock_gettime",
    "clock_gettime64",
    "clock_nanosleep",
    "clock_nanosleep_time64",
    "close",
    "close_range",
    "connect",
    "copy_file_range",
    "creat",
    "dup",
    "dup2",
    "dup3",
    "epoll_create",
    "epoll_create1",
    "epoll_ctl",
    "epoll_ctl_old",
    "epoll_pwait",
    "epoll_pwait2",
    "epoll_wait",
    "epoll_wait_old",
    "eventfd",
    "eventfd2",
    "execve",
    "execveat",
    "exit",
    "exit_group",
    "faccessat",
    "faccessat2",
    "fadvise64",
    "fadvise64_64",
    "fallocate",
    "fanotify_mark",
    "fchdir",
    "fchmod",
    "fchmodat",
    "fchmodat2",
    "fchown",
    "fchown32",
    "fchownat",
    "fcntl",
    "fcntl64",
    "fdatasync",
    "fgetxattr",
    "flistxattr",
    "flock",
    "fork",
    "fremovexattr",
    "fsetxattr",
    "fstat",
    "fstat64",
    "fstatat64",
    "fstatfs",
    "fstatfs64",
    "fsync",
    "ftruncate",
    "ftruncate64",
    "futex",
    "futex_requeue",
    "futex_time64",
    "futex_wait",
    "futex_waitv",
    "futex_wake",
    "futimesat",
    "get_robust_list",
    "get_thread_area",
    "getcpu",
    "getcwd",
    "getdents",
    "getdents64",
    "getegid",
    "getegid32",
    "geteuid",
    "geteuid32",
    "getgid",
    "getgid32",
    "getgroups",
    "getgroups32",
    "getitimer",
    "getpeername",
    "getpgid",
    "getpgrp",
    "getpid",
    "getppid",
    "getpriority",
    "getrandom",
    "getresgid",
    "getresgid32",
    "getresuid",
    "getresuid32",
    "getrlimit",
    "getrusage",
    "getsid",
    "getsockname",
    "getsockopt",
    "gettid",
    "gettimeofday",
    "getuid",
    "getuid32",
    "getxattr",
    "inotify_add_watch",
    "inotify_init",
    "inotify_init1",
    "inotify_rm_watch",
    "io_cancel",
    "io_destroy",
    "io_getevents",
    "io_pgetevents",
    "io_pgetevents_time64",
    "io_setup",
    "io_submit",
    "ioctl",
    "ioprio_get",
    "ioprio_set",
    "ipc",
    "kill",
    "landlock_add_rule",
    "landlock_create_ruleset",
    "landlock_restrict_self",
    "lchown",
    "lchown32",
    "lgetxattr",
    "link",
    "linkat",
    "listen",
    "listxattr",
    "llistxattr",
    "_llseek",
    "lremovexattr",
    "lseek",
    "lsetxattr",
    "lstat",
    "lstat64",
    "madvise",
    "map_shadow_stack",
    "membarrier",
    "memfd_create",
    "memfd_secret",
    "mincore",
    "mkdir",
    "mkdirat",
    "mknod",
    "mknodat",
    "mlock",
    "mlock2",
    "mlockall",
    "mmap",
    "mmap2",
    "mprotect",
    "mq_getsetattr",
    "mq_notify",
    "mq_open",
    "mq_timedreceive",
    "mq_timedreceive_time64",
    "mq_timedsend",
    "mq_timedsend_time64",
    "mq_unlink",
    "mremap",
    "msgctl",
    "msgget",
    "msgrcv",
    "msgsnd",
    "msync",
    "munlock",
    "munlockall",
    "munmap",
    "nanosleep",
    "newfstatat",
    "_newselect",
    "open",
    "openat",
    "openat2",
    "pause",
    "pidfd_open",
    "pidfd_send_signal",
    "pipe",
    "pipe2",
    "pkey_alloc",
    "pkey_free",
    "pkey_mprotect",
    "poll",
    "ppoll",
    "ppoll_time64",
    "prctl",
    "pread64",
    "preadv",
    "preadv2",
    "prlimit64",
    "process_mrelease",
    "process_vm_readv",
    "process_vm_writev",
    "pselect6",
    "pselect6_time64",
    "ptrace",
    "pwrite64",
    "pwritev",
    "pwritev2",
    "read",
    "readahead",
    "readlink",
    "readlinkat",
    "readv",
    "recv",
    "recvfrom",
    "recvmmsg",
    "recvmmsg_time64",
    "recvmsg",
    "remap_file_pages",
    "removexattr",
    "rename",
    "renameat",
    "renameat2",
    "restart_syscall",
    "rmdir",
    "rseq",
    "rt_sigaction",
    "rt_sigpending",
    "rt_sigprocmask",
    "rt_sigqueueinfo",
    "rt_sigreturn",
    "rt_sigsuspend",
    "rt_sigtimedwait",
    "rt_sigtimedwait_time64",
    "rt_tgsigqueueinfo",
    "sched_get_priority_max",
    "sched_get_priority_min",
    "sched_getaffinity",
    "sched_getattr",
    "sched_getparam",
    "sched_getscheduler",
    "sched_rr_get_interval",
    "sched_rr_get_interval_time64",
    "sched_setaffinity",
    "sched_setattr",
    "sched_setparam",
    "sched_setscheduler",
    "sched_yield",
    "seccomp",
    "select",
    "semctl",
    "semget",
    "semop",
    "semtimedop",
    "semtimedop_time64",
    "send",
    "sendfile",
    "sendfile64",
    "sendmmsg",
    "sendmsg",
    "sendto",
    "set_robust_list",
    "set_thread_area",
    "set_tid_address",
    "setfsgid",
    "setfsgid32",
    "setfsuid",
    "setfsuid32",
    "setgid",
    "setgid32",
    "setgroups",
    "setgroups32",
    "setitimer",
    "setpgid",
    "setpriority",
    "setregid",
    "setregid32",
    "setresgid",
    "setresgid32",
    "setresuid",
    "setresuid32",
    "setreuid",
    "setreuid32",
    "setrlimit",
    "setsid",
    "setsockopt",
    "setuid",
    "setuid32",
    "setxattr",
    "shmat",
    "shmctl",
    "shmdt",
    "shmget",
    "shutdown",
    "sigaltstack",
    "signalfd",
    "signalfd4",
    "sigprocmask",
    "sigreturn",
    "socket",
    "socketcall",
    "socketpair",
    "splice",
    "stat",
    "stat64",
    "statfs",
    "statfs64",
    "statx",
    "symlink",
    "symlinkat",
    "sync",
    "sync_file_range",
    "syncfs",
    "sysinfo",
    "tee",
    "tgkill",
    "time",
    "timer_create",
    "timer_delete",
    "timer_getoverrun",
    "timer_gettime",
    "timer_gettime64",
    "timer_settime",
    "timer_settime64",
    "timerfd_create",
    "timerfd_gettime",
    "timerfd_gettime64",
    "timerfd_settime",
    "timerfd_settime64",
    "times",
    "tkill",
    "truncate",
    "truncate64",
    "ugetrlimit",
    "umask",
    "uname",
    "unlink",
    "unlinkat",
    "utime",
    "utimensat",
    "utimensat_time64",
    "utimes",
    "vfork",
    "vmsplice",
    "wait4",
    "waitid",
    "waitpid",
    "write",
    "writev",
];

/// Allowed to a container holding a capability: the syscalls that
/// capability governs. Not listed anywhere (so refused to every container
/// that is not privileged): keyctl, add_key, request_key (the keyrings are
/// not namespaced), kexec_load and kexec_file_load, swapon and swapoff,
/// userfaultfd, io_uring_*, nfsservctl and the like.
pub const BY_CAPABILITY: &[(Capability, &[&str])] = &[
    (Capability::DacReadSearch, &["open_by_handle_at"]),
    (
        Capability::SysAdmin,
        &[
            "bpf",
            "clone",
            "clone3",
            "fanotify_init",
            "fsconfig",
            "fsmount",
            "fsopen",
            "fspick",
            "lookup_dcookie",
            "mount",
            "mount_setattr",
            "move_mount",
            "name_to_handle_at",
            "open_tree",
            "perf_event_open",
            "quotactl",
            "quotactl_fd",
            "setdomainname",
            "sethostname",
            "setns",
            "syslog",
            "umount",
            "umount2",
            "unshare",
        ],
    ),
    (Capability::SysBoot, &["reboot"]),
    (Capability::SysChroot, &["chroot"]),
    (
        Capability::SysModule,
        &["delete_module", "init_module", "finit_module"],
    ),
    (Capability::SysPacct, &["acct"]),
    (
        Capability::SysPtrace,
        &["kcmp", "pidfd_getfd", "process_madvise"],
    ),
    (Capability::SysRawio, &["iopl", "ioperm"]),
    (
        Capability::SysTime,
        &["settimeofday", "stime", "clock_settime", "clock_settime64"],
    ),
    (Capability::SysTtyConfig, &["vhangup"]),
    (
        Capability::SysNice,
        &[
            "get_mempolicy",
            "mbind",
            "set_mempolicy",
            "set_mempolicy_home_node",
        ],
    ),
    (Capability::Syslog, &["syslog"]),
    (Capability::Bpf, &["bpf"]),
    (Capability::Perfmon, &["perf_event_open"]),
];

/// Syscalls of one architecture only.
fn arch_specific() -> Vec<&'static str> {
    if cfg!(target_arch = "x86_64") {
        vec!["arch_prctl", "modify_ldt"]
    } else if cfg!(target_arch = "aarch64") {
        vec![
            "arm_fadvise64_64",
            "arm_sync_file_range",
            "sync_file_range2",
            "breakpoint",
            "cacheflush",
            "set_tls",
        ]
    } else {
        Vec::new()
    }
}

/// The architectures the filter covers: the native one and the 32-bit
/// ABIs its kernel also runs, so 32-bit programs work under the same rules
/// (runc refuses every syscall of an architecture the profile leaves out).
fn architectures() -> Vec<Arch> {
    if cfg!(target_arch = "x86_64") {
        vec![Arch::ScmpArchX86_64, Arch::ScmpArchX86, Arch::ScmpArchX32]
    } else if cfg!(target_arch = "aarch64") {
        vec![Arch::ScmpArchAarch64, Arch::ScmpArchArm]
    } else {
        vec![Arch::ScmpArchNative]
    }
}

/// personality(2) personas Docker allows: the default (0), PER_LINUX32
/// (8), UNAME26 (0x20000), PER_LINUX32|UNAME26 and the query (0xffffffff).
const PERSONAS: [u64; 5] = [0x0, 0x8, 0x20000, 0x20008, 0xffff_ffff];

fn allow(names: Vec<String>, args: Option<Vec<LinuxSeccompArg>>) -> Result<LinuxSyscall, String> {
    let mut b = LinuxSyscallBuilder::default()
        .names(names)
        .action(LinuxSeccompAction::ScmpActAllow);
    if let Some(args) = args {
        b = b.args(args);
    }
    b.build().map_err(|e| e.to_string())
}

fn arg(
    index: usize,
    value: u64,
    value_two: Option<u64>,
    op: LinuxSeccompOperator,
) -> Result<LinuxSeccompArg, String> {
    let mut b = oci_spec::runtime::LinuxSeccompArgBuilder::default()
        .index(index)
        .value(value)
        .op(op);
    if let Some(v) = value_two {
        b = b.value_two(v);
    }
    b.build().map_err(|e| e.to_string())
}

/// The profile for a container holding `caps`. Privileged containers get
/// none (the caller leaves `linux.seccomp` unset), as Docker does.
pub fn default_profile(caps: &HashSet<Capability>) -> Result<LinuxSeccomp, String> {
    let mut names: Vec<String> = ALLOWED.iter().map(|s| s.to_string()).collect();
    names.extend(arch_specific().into_iter().map(str::to_string));
    for (cap, calls) in BY_CAPABILITY {
        if caps.contains(cap) {
            names.extend(calls.iter().map(|s| s.to_string()));
        }
    }
    names.sort();
    names.dedup();
    let mut syscalls = vec![allow(names, None)?];
    for persona in PERSONAS {
        syscalls.push(allow(
            vec!["personality".into()],
            Some(vec![arg(
                0,
                persona,
                None,
                LinuxSeccompOperator::ScmpCmpEq,
            )?]),
        )?);
    }
    if !caps.contains(&Capability::SysAdmin) {
        // fork and threads, but no new namespaces.
        syscalls.push(allow(
            vec!["clone".into()],
            Some(vec![arg(
                0,
                CLONE_NAMESPACE_FLAGS,
                Some(0),
                LinuxSeccompOperator::ScmpCmpMaskedEq,
            )?]),
        )?);
        syscalls.push(
            LinuxSyscallBuilder::default()
                .names(vec!["clone3".to_string()])
                .action(LinuxSeccompAction::ScmpActErrno)
                .errno_ret(ENOSYS)
                .build()
                .map_err(|e| e.to_string())?,
        );
    }
    LinuxSeccompBuilder::default()
        .default_action(LinuxSeccompAction::ScmpActErrno)
        .default_errno_ret(EPERM)
        .architectures(architectures())
        .syscalls(syscalls)
        .build()
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allowed(p: &LinuxSeccomp) -> HashSet<String> {
        p.syscalls()
            .iter()
            .flatten()
            .filter(|s| s.action() == LinuxSeccompAction::ScmpActAllow && s.args().is_none())
            .flat_map(|s| s.names().iter().cloned())
            .collect()
    }

    fn default_caps() -> HashSet<Capability> {
        super::super::spec_defaults::DEFAULT_CAPS
            .iter()
            .filter_map(|n| n.parse().ok())
            .collect()
    }

    #[test]
    fn refuses_with_eperm_outside_the_allow_list() {
        let p = default_profile(&default_caps()).unwrap();
        assert_eq!(p.default_action(), LinuxSeccompAction::ScmpActErrno);
        assert_eq!(p.default_errno_ret(), Some(EPERM));
        assert!(!p.architectures().as_deref().unwrap_or_default().is_empty());
        let ok = allowed(&p);
        for call in [
            "read", "execve", "fork", "socket", "ptrace", "chroot", "wait4",
        ] {
            assert!(ok.contains(call), "{call} is allowed");
        }
        for call in [
            "mount",
            "umount2",
            "unshare",
            "setns",
            "keyctl",
            "add_key",
            "request_key",
            "init_module",
            "finit_module",
            "delete_module",
            "kexec_load",
            "bpf",
            "perf_event_open",
            "reboot",
            "swapon",
            "clock_settime",
            "clone",
            "clone3",
        ] {
            assert!(!ok.contains(call), "{call} is refused");
        }
    }

    #[test]
    fn clone_without_sys_admin_may_not_make_namespaces() {
        let p = default_profile(&default_caps()).unwrap();
        let rules = p.syscalls().clone().unwrap_or_default();
        let clone = rules
            .iter()
            .find(|s| s.names() == &vec!["clone".to_string()])
            .expect("a conditional clone rule");
        let a = clone.args().clone().unwrap_or_default();
        assert_eq!(a.len(), 1);
        assert_eq!(a[0].op(), LinuxSeccompOperator::ScmpCmpMaskedEq);
        assert_eq!(
            (a[0].value(), a[0].value_two()),
            (CLONE_NAMESPACE_FLAGS, Some(0))
        );
        let clone3 = rules
            .iter()
            .find(|s| s.names() == &vec!["clone3".to_string()])
            .expect("clone3 rule");
        assert_eq!(clone3.errno_ret(), Some(ENOSYS));
    }

    #[test]
    fn capabilities_open_the_syscalls_they_govern() {
        let mut caps = default_caps();
        caps.insert(Capability::SysAdmin);
        caps.insert(Capability::SysModule);
        let p = default_profile(&caps).unwrap();
        let ok = allowed(&p);
        for call in [
            "mount",
            "unshare",
            "setns",
            "clone",
            "clone3",
            "init_module",
        ] {
            assert!(ok.contains(call), "{call} is allowed with its capability");
        }
        // No capability opens the keyrings or kexec.
        for call in ["keyctl", "add_key", "kexec_load", "reboot"] {
            assert!(!ok.contains(call), "{call} stays refused");
        }
        let rules = p.syscalls().clone().unwrap_or_default();
        assert!(
            !rules
                .iter()
                .any(|s| s.action() == LinuxSeccompAction::ScmpActErrno),
            "no clone3 ENOSYS rule with CAP_SYS_ADMIN"
        );
    }
}
