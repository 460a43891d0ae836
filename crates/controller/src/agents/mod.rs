//! The leader's side of the agents: one session per connected agent
//! (`session`), the registry of live sessions and of when each agent was
//! last heard from, kept in memory (heartbeats never enter the Raft log),
//! and the liveness loop, the one owner of disconnection and loss decisions
//! (`liveness`), and the discovery publisher feeding every session its
//! cluster's zone (`discovery`).

pub mod discovery;
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

/// The live sessions and the term they serve, under one lock, so a session
/// can never open in a term whose leader work has ended (it would hold the
/// instance's agent on a controller that no longer leads).
#[derive(Default)]
struct Sessions {
    /// The term whose leader work is running here; 0 when none is.
    term: u64,
    by_instance: BTreeMap<String, Entry>,
}

impl Sessions {
    fn cancel_all(&mut self) {
        for (_, e) in std::mem::take(&mut self.by_instance) {
            e.cancel.cancel();
        }
    }
}

/// The agents holding a session with this controller, by instance id.
pub struct SessionRegistry {
    sessions: Mutex<Sessions>,
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
            sessions: Mutex::new(Sessions::default()),
            heard: Mutex::new(BTreeMap::new()),
            next_id: AtomicU64::new(1),
            root,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Sessions> {
        self.sessions.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Leader work of `term` starts here: sessions of any earlier term end,
    /// heartbeats heard before are forgotten (the liveness loop of the new
    /// term starts its clocks afresh), and sessions of `term` may open.
    pub fn begin_term(&self, term: u64) {
        let mut sessions = self.lock();
        sessions.cancel_all();
        sessions.term = term;
        drop(sessions);
        self.forget_heartbeats();
    }

    /// Leader work of `term` stopped: its sessions end and no session of it
    /// opens any more. Does nothing if a later term has begun.
    pub fn end_term(&self, term: u64) {
        let mut sessions = self.lock();
        if sessions.term != term {
            return;
        }
        sessions.cancel_all();
        sessions.term = 0;
        drop(sessions);
        self.forget_heartbeats();
    }

    /// Records a new session of `instance_id` in `term`, ending any older
    /// one. None if leader work of `term` is not running (it ended between
    /// the session's first check and now): the caller must not serve it.
    pub fn open(&self, instance_id: &str, term: u64) -> Option<(u64, CancellationToken)> {
        let mut sessions = self.lock();
        if sessions.term != term || term == 0 {
            return None;
        }
        let session_id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let cancel = self.root.child_token();
        let old = sessions.by_instance.insert(
            instance_id.to_string(),
            Entry {
                session_id,
                cancel: cancel.clone(),
            },
        );
        if let Some(old) = old {
            old.cancel.cancel();
        }
        Some((session_id, cancel))
    }

    /// Forgets the session unless a newer one replaced it.
    pub fn close(&self, instance_id: &str, session_id: u64) {
        let mut sessions = self.lock();
        if sessions
            .by_instance
            .get(instance_id)
            .is_some_and(|e| e.session_id == session_id)
        {
            sessions.by_instance.remove(instance_id);
        }
    }

    pub fn is_connected(&self, instance_id: &str) -> bool {
        self.lock().by_instance.contains_key(instance_id)
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

    fn forget_heartbeats(&self) {
        self.heard.lock().unwrap_or_else(|p| p.into_inner()).clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_newer_session_replaces_and_ends_the_older() {
        let registry = SessionRegistry::new(CancellationToken::new());
        registry.begin_term(3);
        let (first, first_cancel) = registry.open("i-1", 3).expect("term 3 runs");
        let (second, second_cancel) = registry.open("i-1", 3).expect("term 3 runs");
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

    #[test]
    fn no_session_opens_in_a_term_whose_leader_work_ended() {
        let registry = SessionRegistry::new(CancellationToken::new());
        assert!(registry.open("i-1", 0).is_none(), "nothing leads yet");
        assert!(registry.open("i-1", 3).is_none(), "term 3 has not begun");
        registry.begin_term(3);
        let (_, cancel) = registry.open("i-1", 3).expect("term 3 runs");
        registry.heard("i-1");
        // Leadership is lost while another agent's session is between its
        // first check and opening: that session must not open.
        registry.end_term(3);
        assert!(cancel.is_cancelled(), "term 3's sessions end with it");
        assert!(registry.open("i-2", 3).is_none());
        assert!(!registry.is_connected("i-2"));
        assert!(registry.last_heard("i-1").is_none());
    }

    #[test]
    fn a_new_term_ends_the_old_terms_sessions_and_a_late_end_changes_nothing() {
        let registry = SessionRegistry::new(CancellationToken::new());
        registry.begin_term(3);
        let (_, old) = registry.open("i-1", 3).expect("term 3 runs");
        registry.begin_term(5);
        assert!(old.is_cancelled());
        assert!(registry.open("i-1", 3).is_none(), "term 3 is over");
        let (_, new) = registry.open("i-1", 5).expect("term 5 runs");
        // Term 3's liveness loop noticing its cancellation late.
        registry.end_term(3);
        assert!(!new.is_cancelled());
        assert!(registry.is_connected("i-1"));
    }
}
