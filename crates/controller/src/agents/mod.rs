//! The leader's side of the agents: one session per connected agent
//! (`session`), the registry of live sessions and of when each agent was
//! last heard from, kept in memory (heartbeats never enter the Raft log),
//! and the liveness loop, the one owner of disconnection and loss decisions
//! (`liveness`).

pub mod liveness;
pub mod session;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use tokio_util::sync::CancellationToken;

/// One live session.
struct Entry {
    session_id: u64,
    /// Cancelled when a newer session of the same instance replaces it.
    cancel: CancellationToken,
}

/// The agents holding a session with this controller, by instance id.
pub struct SessionRegistry {
    sessions: Mutex<BTreeMap<String, Entry>>,
    /// When each agent's last message arrived (kept after its session
    /// closes: a closed session does not shorten the clock).
    heard: Mutex<BTreeMap<String, tokio::time::Instant>>,
    next_id: AtomicU64,
    /// Parent of every session's token: cancelled at shutdown.
    root: CancellationToken,
}

impl SessionRegistry {
    pub fn new(root: CancellationToken) -> Self {
        SessionRegistry {
            sessions: Mutex::new(BTreeMap::new()),
            heard: Mutex::new(BTreeMap::new()),
            next_id: AtomicU64::new(1),
            root,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Entry>> {
        self.sessions.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records a new session of `instance_id`, ending any older one.
    pub fn open(&self, instance_id: &str) -> (u64, CancellationToken) {
        let session_id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let cancel = self.root.child_token();
        let old = self.lock().insert(
            instance_id.to_string(),
            Entry {
                session_id,
                cancel: cancel.clone(),
            },
        );
        if let Some(old) = old {
            old.cancel.cancel();
        }
        (session_id, cancel)
    }

    /// Forgets the session unless a newer one replaced it.
    pub fn close(&self, instance_id: &str, session_id: u64) {
        let mut sessions = self.lock();
        if sessions
            .get(instance_id)
            .is_some_and(|e| e.session_id == session_id)
        {
            sessions.remove(instance_id);
        }
    }

    pub fn is_connected(&self, instance_id: &str) -> bool {
        self.lock().contains_key(instance_id)
    }

    /// Records a message from the instance's agent.
    pub fn heard(&self, instance_id: &str) {
        let now = tokio::time::Instant::now();
        self.heard
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(instance_id.to_string(), now);
    }

    /// When the instance's agent was last heard from, if ever by this leader.
    pub fn last_heard(&self, instance_id: &str) -> Option<tokio::time::Instant> {
        self.heard
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(instance_id)
            .copied()
    }

    /// Ends every session and forgets every heartbeat (this controller
    /// stopped leading; a later term starts its clocks afresh).
    pub fn close_all(&self) {
        for (_, e) in std::mem::take(&mut *self.lock()) {
            e.cancel.cancel();
        }
        self.heard.lock().unwrap_or_else(|p| p.into_inner()).clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_newer_session_replaces_and_ends_the_older() {
        let registry = SessionRegistry::new(CancellationToken::new());
        let (first, first_cancel) = registry.open("i-1");
        let (second, second_cancel) = registry.open("i-1");
        assert!(first_cancel.is_cancelled());
        assert!(!second_cancel.is_cancelled());
        registry.close("i-1", first);
        assert!(
            registry.is_connected("i-1"),
            "the old session's close keeps the new one"
        );
        registry.close("i-1", second);
        assert!(!registry.is_connected("i-1"));
    }
}
