//! Hand-built histories: valid ones pass, each kind of violation is found.

use super::*;
use ViolationKind::*;

fn reg(client: usize, invoke: u64, complete: u64, outcome: Outcome) -> Op {
    Op {
        kind: OpKind::Register,
        family: "web".into(),
        client,
        invoke,
        complete,
        outcome,
    }
}

fn read(client: usize, invoke: u64, complete: u64, rev: u64) -> Op {
    Op {
        kind: OpKind::ReadLatest,
        family: "web".into(),
        client,
        invoke,
        complete,
        outcome: Outcome::Ok(rev),
    }
}

fn finals(revs: &[u64]) -> BTreeMap<String, Vec<u64>> {
    BTreeMap::from([("web".to_string(), revs.to_vec())])
}

fn kind(ops: &[Op], stored: Option<&[u64]>) -> Option<ViolationKind> {
    let f = stored.map(finals);
    check_ops(ops, f.as_ref()).err().map(|v| {
        assert!(!v.to_string().is_empty());
        v.kind
    })
}

#[test]
fn valid_histories_pass() {
    use Outcome::*;
    // Sequential, then concurrent registers in either order, reads between.
    let ops = vec![
        reg(1, 1, 2, Ok(1)),
        read(2, 3, 4, 1),
        reg(1, 5, 8, Ok(3)),
        reg(2, 6, 9, Ok(2)),
        read(3, 7, 10, 1),
        read(3, 11, 12, 3),
    ];
    assert_eq!(kind(&ops, None), None);
    assert_eq!(kind(&ops, Some(&[1, 2, 3])), None);
    // An unknown register that applied (revision 2 seen, stored) and one that did not.
    let ops = vec![
        reg(1, 1, 2, Ok(1)),
        reg(2, 3, 4, Unknown),
        reg(3, 5, 6, Failed),
        read(1, 7, 8, 2),
        reg(1, 9, 10, Unknown),
        reg(1, 11, 12, Ok(3)),
    ];
    assert_eq!(kind(&ops, Some(&[1, 2, 3])), None);
    // An unknown register may take effect after it completed.
    let ops = vec![reg(1, 1, 2, Unknown), read(2, 3, 4, 0), read(2, 5, 6, 1)];
    assert_eq!(kind(&ops, Some(&[1])), None);
    // Empty histories and families with nothing stored.
    assert_eq!(kind(&[], Some(&[])), None);
    let history = History::new();
    let p = history.invoke(OpKind::Register, "web", 1);
    history.complete(p, Ok(1));
    let p = history.invoke(OpKind::ReadLatest, "web", 2);
    history.complete(p, Ok(1));
    assert_eq!(history.check(), Result::Ok(()));
    assert_eq!(history.check_final(&finals(&[1])), Result::Ok(()));
    assert_eq!(history.dump().lines().count(), 2);
}

#[test]
fn duplicate_revision_is_detected() {
    let ops = vec![reg(1, 1, 4, Outcome::Ok(1)), reg(2, 2, 3, Outcome::Ok(1))];
    assert_eq!(kind(&ops, None), Some(DuplicateRevision));
}

#[test]
fn register_order_is_detected() {
    let ops = vec![reg(1, 1, 2, Outcome::Ok(2)), reg(2, 3, 4, Outcome::Ok(1))];
    assert_eq!(kind(&ops, None), Some(RegisterOrder));
}

#[test]
fn stale_read_is_detected() {
    let ops = vec![reg(1, 1, 2, Outcome::Ok(1)), read(2, 3, 4, 0)];
    assert_eq!(kind(&ops, None), Some(StaleRead));
}

#[test]
fn absent_reads_are_checked_like_any_read() {
    use Outcome::*;
    // "Absent" (0) before the first register, and while it is in flight.
    let ops = vec![read(2, 1, 2, 0), reg(1, 3, 6, Ok(1)), read(2, 4, 5, 0)];
    assert_eq!(kind(&ops, Some(&[1])), None);
    // A family only ever read as absent, with nothing stored at the end.
    let ops = vec![read(2, 1, 2, 0), read(3, 3, 4, 0)];
    assert_eq!(kind(&ops, Some(&[])), None);
    assert_eq!(kind(&ops, None), None);
    // Absent after an acknowledged register completed: stale.
    let ops = vec![reg(1, 1, 2, Ok(1)), read(2, 3, 4, 0)];
    assert_eq!(kind(&ops, Some(&[1])), Some(StaleRead));
    // Absent after another read had seen revision 1 (its register's
    // outcome unknown): non-monotonic.
    let ops = vec![reg(1, 1, 10, Unknown), read(2, 2, 3, 1), read(3, 4, 5, 0)];
    assert_eq!(kind(&ops, Some(&[1])), Some(NonMonotonicRead));
    // An absent read bounds the first revision from below in the complete
    // check: revision 1 (unknown writer) after tick 6, revision 2 by tick 8.
    let ops = vec![
        reg(1, 1, 20, Unknown),
        reg(2, 2, 8, Ok(2)),
        read(3, 6, 7, 0),
        read(4, 9, 10, 2),
    ];
    assert_eq!(kind(&ops, Some(&[1, 2])), None);
    // A read of 2 that completed before the absent read was invoked.
    let ops = vec![
        reg(1, 1, 20, Unknown),
        reg(2, 2, 8, Ok(2)),
        read(4, 3, 5, 2),
        read(3, 6, 7, 0),
    ];
    assert_eq!(kind(&ops, Some(&[1, 2])), Some(NonMonotonicRead));
}

#[test]
fn read_from_the_future_is_detected() {
    let ops = vec![read(2, 1, 2, 1), reg(1, 3, 4, Outcome::Ok(1))];
    assert_eq!(kind(&ops, None), Some(ReadFromFuture));
    // A revision nobody could have written yet: the only unknown register came later.
    let ops = vec![read(2, 1, 2, 1), reg(1, 3, 4, Outcome::Unknown)];
    assert_eq!(kind(&ops, None), Some(ReadFromFuture));
}

#[test]
fn non_monotonic_reads_are_detected() {
    let ops = vec![
        reg(1, 1, 10, Outcome::Ok(1)),
        read(2, 2, 3, 1),
        read(3, 4, 5, 0),
    ];
    assert_eq!(kind(&ops, None), Some(NonMonotonicRead));
}

#[test]
fn lost_and_phantom_revisions_and_gaps_are_detected() {
    let ops = vec![reg(1, 1, 2, Outcome::Ok(1)), reg(1, 3, 4, Outcome::Ok(2))];
    assert_eq!(kind(&ops, Some(&[1])), Some(LostRevision));
    let ops = vec![
        reg(1, 1, 2, Outcome::Ok(1)),
        read(1, 3, 4, 2),
        reg(2, 1, 5, Outcome::Unknown),
    ];
    assert_eq!(kind(&ops, Some(&[1])), Some(LostRevision));
    // A failed register must not have applied.
    let ops = vec![reg(1, 1, 2, Outcome::Ok(1)), reg(1, 3, 4, Outcome::Failed)];
    assert_eq!(kind(&ops, Some(&[1, 2])), Some(PhantomRevision));
    let ops = vec![reg(1, 1, 2, Outcome::Ok(1)), reg(1, 3, 4, Outcome::Ok(3))];
    assert_eq!(kind(&ops, Some(&[1, 3])), Some(Gap));
    let ops = vec![reg(1, 1, 2, Outcome::Ok(1)), reg(1, 3, 4, Outcome::Unknown)];
    assert_eq!(kind(&ops, Some(&[1, 1, 2])), Some(Gap));
}

#[test]
fn subtler_orders_need_the_complete_check() {
    let ops = vec![
        reg(1, 5, 9, Outcome::Ok(1)),
        reg(2, 1, 10, Outcome::Unknown),
        read(3, 2, 4, 1),
    ];
    // The read saw revision 1 before its acknowledged writer was invoked.
    assert_eq!(kind(&ops, None), Some(ReadFromFuture));
    // Revision 2 was acknowledged at tick 5, yet the only register that
    // could have produced revision 1 was invoked at 10.
    let ops = vec![
        reg(1, 1, 5, Outcome::Ok(2)),
        reg(2, 10, 20, Outcome::Unknown),
    ];
    assert_eq!(kind(&ops, None), Some(NotLinearizable));
    // A read invoked at 4 has not seen revision 2, which another read
    // completed at 3 had seen.
    let ops = vec![
        reg(1, 1, 20, Outcome::Unknown),
        reg(2, 1, 20, Outcome::Unknown),
        read(3, 1, 3, 2),
        read(4, 4, 6, 1),
    ];
    assert_eq!(kind(&ops, None), Some(NonMonotonicRead));
    // Only the complete check sees this one: revisions 1 and 2 are both
    // produced by unknown registers; a read done at 3 saw 2, so p2 < 3;
    // but the second unknown register was invoked at 4.
    let ops = vec![
        reg(1, 1, 20, Outcome::Unknown),
        reg(2, 4, 20, Outcome::Unknown),
        read(3, 2, 3, 2),
    ];
    assert_eq!(kind(&ops, None), Some(NotLinearizable));
}

#[test]
fn outcomes_of_register_errors_are_conservative() {
    let ok: Result<u64, tonic::Status> = Ok(4);
    assert_eq!(Outcome::of_register(&ok), Outcome::Ok(4));
    let bad = Err(tonic::Status::invalid_argument("no containers"));
    assert_eq!(Outcome::of_register(&bad), Outcome::Failed);
    for status in [
        tonic::Status::unavailable("x"),
        tonic::Status::deadline_exceeded("x"),
        tonic::Status::internal("x"),
    ] {
        assert_eq!(Outcome::of_register(&Err(status)), Outcome::Unknown);
    }
}
