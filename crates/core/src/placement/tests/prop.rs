//! Property tests: `parse` never panics, on arbitrary text or on soups of
//! the language's own pieces; every error points inside the text (or just
//! past it); whatever parses keeps its source and evaluates without
//! panicking.

use proptest::prelude::*;

use super::fleet;
use crate::placement::expr::parse;

const PIECES: &[&str] = &[
    "agentConnected",
    "agentVersion",
    "attribute:ecs.os-type",
    "attribute:size",
    "attribute:",
    "instanceId",
    "ec2InstanceId",
    "registeredAt",
    "runningTasksCount",
    "task:group",
    "==",
    "!=",
    ">",
    ">=",
    "<",
    "<=",
    "=~",
    "!~",
    "exists",
    "!exists",
    "in",
    "!in",
    "not_in",
    "matches",
    "true",
    "1.10.0",
    "2017-07-01",
    "3",
    "linux",
    "t3.*",
    "(",
    ")",
    "[",
    "]",
    ",",
    "&&",
    "||",
    "!",
    "not",
    "and",
    "or",
    "'",
    "\"",
    " ",
    "é",
];

fn check(src: &str) -> Result<(), TestCaseError> {
    match parse(src) {
        Err(e) => {
            prop_assert!(!e.message.is_empty());
            prop_assert!(
                (1..=src.chars().count() + 1).contains(&e.position),
                "{src:?}: position {} out of range",
                e.position
            );
        }
        Ok(expr) => {
            prop_assert_eq!(expr.source(), src);
            for inst in fleet() {
                expr.matches(&inst);
            }
        }
    }
    Ok(())
}

proptest! {
    #[test]
    fn parse_never_panics_on_arbitrary_text(src in ".{0,200}") {
        check(&src)?;
    }

    #[test]
    fn parse_never_panics_on_the_languages_own_pieces(
        picks in prop::collection::vec(0..PIECES.len(), 0..24),
        spaced in any::<bool>(),
    ) {
        let sep = if spaced { " " } else { "" };
        let src = picks.iter().map(|i| PIECES[*i]).collect::<Vec<_>>().join(sep);
        check(&src)?;
    }
}
