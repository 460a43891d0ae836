//! Crash points for tests: `ORCA_AGENT_CRASH_AT=<point>[,<point>...]` makes
//! the agent SIGKILL itself the first time it reaches one of the named
//! points, so an end-to-end test can crash a real agent process at an exact
//! moment (a created container not yet started, containers removed before
//! the final report went up, a registration whose reply was not saved...)
//! instead of sleeping and hoping. Unset, a crash point costs one load of a
//! cached value.

use std::sync::OnceLock;

/// The environment variable naming the crash points.
pub const ENV: &str = "ORCA_AGENT_CRASH_AT";

/// The points of this process, read once.
fn armed() -> &'static [String] {
    static POINTS: OnceLock<Vec<String>> = OnceLock::new();
    POINTS.get_or_init(|| {
        std::env::var(ENV)
            .map(|v| {
                v.split(',')
                    .map(|p| p.trim().to_string())
                    .filter(|p| !p.is_empty())
                    .collect()
            })
            .unwrap_or_default()
    })
}

/// Dies by SIGKILL here if `point` is armed: no destructor, no flush, no
/// shutdown path runs, exactly as with `kill -9` from outside.
pub fn point(point: &str) {
    if armed().iter().any(|p| p == point) {
        // stderr is unbuffered: the test reads this line in the agent log.
        eprintln!("crash point {point}: SIGKILL");
        // SAFETY: getpid and kill have no preconditions.
        unsafe {
            libc::kill(libc::getpid(), libc::SIGKILL);
        }
    }
}
