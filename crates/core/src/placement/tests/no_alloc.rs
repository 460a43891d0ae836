//! Evaluation allocates nothing in the common paths: the scheduler runs
//! every expression against each instance of the cluster. A counting
//! allocator (per thread, so concurrent tests do not disturb it) wraps
//! the system one for this crate's test binary.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use super::fleet;
use crate::placement::expr::parse;

struct Counting;

thread_local! {
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

// SAFETY: every call is forwarded unchanged to the system allocator; the
// counter is a const-initialised thread-local, which never allocates.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
        // SAFETY: same contract as our caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as our caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
        // SAFETY: same contract as our caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations() -> u64 {
    ALLOCATIONS.with(Cell::get)
}

#[test]
fn evaluation_allocates_nothing_in_the_common_paths() {
    let sources = [
        "agentConnected == true && runningTasksCount < 5",
        "agentVersion >= 1.10.0",
        "attribute:ecs.instance-type in [t3.micro, m5.large] || attribute:size > 9.5",
        "attribute:gpu exists || !(attribute:stack != prod)",
        "ec2InstanceId != i-aaa",
        "registeredAt > 2017-07-01",
        "runningTasksCount in [0, 10]",
        "task:group == service:web || task:group !in [batch]",
        "attribute:ecs.instance-type =~ t3\\..*",
    ];
    let exprs: Vec<_> = sources
        .iter()
        .map(|s| parse(s).unwrap_or_else(|e| panic!("{s}: {e}")))
        .collect();
    let fleet = fleet();
    // Warm up: the regex crate sets up its per-thread match cache once.
    let mut matched = 0usize;
    for e in &exprs {
        for inst in &fleet {
            matched += usize::from(e.matches(inst));
        }
    }
    let before = allocations();
    for _ in 0..100 {
        for e in &exprs {
            for inst in &fleet {
                matched += usize::from(e.matches(inst));
            }
        }
    }
    assert_eq!(allocations() - before, 0, "evaluation allocated");
    assert!(matched > 0);
}
