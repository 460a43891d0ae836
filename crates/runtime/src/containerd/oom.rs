//! OOM detection. Two sources, because either alone can miss:
//! - containerd's `/tasks/oom` events (the runc shim watches the cgroup's
//!   `memory.oom_control` eventfd on cgroup v1 and `memory.events` on v2),
//!   collected by the event subscription ([`super::events`]);
//! - the cgroup's own `oom_kill` counter, read when the exit is observed (the
//!   cgroup lives until the task is deleted), which also covers an agent that
//!   restarted and missed the event.

use std::collections::HashSet;
use std::sync::Mutex;

use super::spec::cgroups_path;

/// Container ids the kernel OOM-killed in, as containerd reported.
#[derive(Default)]
pub struct OomWatch {
    seen: Mutex<HashSet<String>>,
}

impl OomWatch {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashSet<String>> {
        self.seen.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn saw(&self, id: &str) -> bool {
        self.lock().contains(id)
    }

    /// Forgets a container (it was removed, or is being started afresh).
    pub fn forget(&self, id: &str) {
        self.lock().remove(id);
    }

    pub(crate) fn record(&self, id: String) {
        self.lock().insert(id);
    }
}

/// The kernel's OOM-kill count for the container's cgroup, if readable
/// (cgroup v1 `memory.oom_control`, or v2 `memory.events`).
pub fn cgroup_oom_kills(namespace: &str, id: &str) -> Option<u64> {
    let rel = cgroups_path(namespace, id);
    let rel = rel.trim_start_matches('/');
    let candidates = [
        (
            format!("/sys/fs/cgroup/memory/{rel}/memory.oom_control"),
            "oom_kill ",
        ),
        (format!("/sys/fs/cgroup/{rel}/memory.events"), "oom_kill "),
        (
            format!("/sys/fs/cgroup/unified/{rel}/memory.events"),
            "oom_kill ",
        ),
    ];
    for (path, key) in candidates {
        if let Ok(text) = std::fs::read_to_string(&path) {
            if let Some(n) = text
                .lines()
                .find_map(|l| l.strip_prefix(key))
                .and_then(|v| v.trim().parse().ok())
            {
                return Some(n);
            }
        }
    }
    None
}
