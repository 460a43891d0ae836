//! A table of invalid expressions, each with the exact position the error
//! must name and a fragment of its message.

use super::expr::{parse, ExprError, MAX_EXPRESSION_CHARS, MAX_NESTING};

fn rows() -> Vec<(String, usize, &'static str)> {
    let fixed: &[(&str, usize, &str)] = &[
        // empty
        ("", 1, "the expression is empty"),
        ("   ", 1, "the expression is empty"),
        // subjects
        ("foo == bar", 1, "unknown subject \"foo\""),
        (
            "agentConnected == true && bogus exists",
            27,
            "unknown subject \"bogus\"",
        ),
        ("attribute: exists", 1, "attribute: needs a name"),
        ("()", 2, "expected a subject, found \")\""),
        (
            "&& agentConnected == true",
            1,
            "expected a subject, found \"&\"",
        ),
        ("not", 4, "expected a subject, found end of expression"),
        (
            "attribute:x exists &&",
            22,
            "expected a subject, found end of expression",
        ),
        (
            "agentConnected == true ||",
            26,
            "expected a subject, found end of expression",
        ),
        // operators
        (
            "attribute:abc foo bar",
            15,
            "expected an operator, found \"foo\"",
        ),
        (
            "runningTasksCount",
            18,
            "expected an operator, found end of expression",
        ),
        ("attribute:x = y", 13, "expected an operator, found \"=\""),
        (
            "attribute:x existsx",
            13,
            "expected an operator, found \"existsx\"",
        ),
        (
            "attribute:x !inx [a]",
            13,
            "expected an operator, found \"!inx\"",
        ),
        (
            "task:group > 3",
            12,
            "\">\" does not apply to task:group: use ==, !=, exists, !exists, in, !in, =~, !~",
        ),
        (
            "agentConnected exists",
            16,
            "\"exists\" does not apply to agentConnected",
        ),
        (
            "registeredAt =~ 2017.*",
            14,
            "\"=~\" does not apply to registeredAt",
        ),
        ("instanceId > i-1", 12, "\">\" does not apply to instanceId"),
        (
            "agentVersion in [1.0]",
            14,
            "\"in\" does not apply to agentVersion",
        ),
        // arguments
        (
            "attribute:x ==",
            15,
            "expected an argument after \"==\", found end of expression",
        ),
        (
            "attribute:x == )",
            16,
            "expected an argument after \"==\", found \")\"",
        ),
        (
            "attribute:x in",
            15,
            "expected an argument after \"in\", found end of expression",
        ),
        (
            "attribute:x == [a, b]",
            16,
            "a list is only allowed with in and !in, not with \"==\"",
        ),
        (
            "attribute:x =~ [a]",
            16,
            "a list is only allowed with in and !in, not with \"=~\"",
        ),
        ("attribute:x in [a, ]", 20, "expected a value, found \"]\""),
        ("attribute:x in []", 17, "expected a value, found \"]\""),
        (
            "attribute:x in [a b]",
            19,
            "expected \",\" or \"]\" in the list opened at position 16, found \"b\"",
        ),
        (
            "attribute:x in [a",
            18,
            "expected \",\" or \"]\" in the list opened at position 16, found end of expression",
        ),
        ("attribute:x == 'abc", 16, "unterminated string"),
        ("attribute:x in [\"abc]", 17, "unterminated string"),
        (
            "attribute:x =~ \"a(\"",
            16,
            "invalid regex \"a(\": unclosed group",
        ),
        ("attribute:x =~ 'a)|(b'", 16, "invalid regex \"a)|(b\""),
        ("task:group !~ *", 15, "invalid regex \"*\""),
        (
            "registeredAt > 2017-13-01",
            16,
            "\"2017-13-01\" is not a date",
        ),
        (
            "registeredAt > yesterday",
            16,
            "\"yesterday\" is not a date",
        ),
        (
            "runningTasksCount > 1.5",
            21,
            "\"1.5\" is not a whole number",
        ),
        ("runningTasksCount > -1", 21, "\"-1\" is not a whole number"),
        (
            "runningTasksCount in [1, x]",
            26,
            "\"x\" is not a whole number",
        ),
        ("agentConnected == yes", 19, "\"yes\" is not true or false"),
        ("agentVersion > 1.x", 16, "\"1.x\" is not a version"),
        ("agentVersion > 1..2", 16, "\"1..2\" is not a version"),
        // parentheses
        (
            "(attribute:x == 1",
            18,
            "expected \")\" to close the \"(\" at position 1, found end of expression",
        ),
        (
            "((attribute:x == 1) && (agentConnected == true)",
            48,
            "to close the \"(\" at position 1",
        ),
        ("attribute:x == 1)", 17, "unmatched \")\""),
        ("(agentConnected == true))", 25, "unmatched \")\""),
        // trailing garbage
        (
            "agentConnected == true garbage",
            24,
            "expected \"&&\", \"||\" or the end of the expression, found \"garbage\"",
        ),
        (
            "agentConnected == true & runningTasksCount == 1",
            24,
            "found \"&\"",
        ),
        ("attribute:x !exists y", 21, "found \"y\""),
        ("attribute:x in [a, b] == c", 23, "found \"==\""),
        ("attribute:x == 'a' b", 20, "found \"b\""),
    ];
    let mut rows: Vec<(String, usize, &'static str)> = fixed
        .iter()
        .map(|(s, p, m)| (s.to_string(), *p, *m))
        .collect();
    rows.push((
        format!("{}agentConnected == true", "!".repeat(40)),
        MAX_NESTING + 1,
        "deeper than 32 levels",
    ));
    rows.push((
        format!(
            "{}(agentConnected == true{}",
            "(".repeat(40),
            ")".repeat(41)
        ),
        MAX_NESTING + 1,
        "deeper than 32 levels",
    ));
    rows.push((
        format!("attribute:x == {}", "a".repeat(MAX_EXPRESSION_CHARS)),
        MAX_EXPRESSION_CHARS + 1,
        "at most 2000 are allowed",
    ));
    rows
}

#[test]
fn every_invalid_expression_fails_at_its_position() {
    let mut failures = Vec::new();
    for (src, position, fragment) in rows() {
        match parse(&src) {
            Ok(_) => failures.push(format!("{src:?}: parsed, want an error at {position}")),
            Err(ExprError {
                position: got,
                message,
            }) => {
                if got != position || !message.contains(fragment) {
                    failures.push(format!(
                        "{src:?}: got \"at position {got}: {message}\", want position {position} \
                         and {fragment:?}"
                    ));
                }
            }
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

#[test]
fn the_error_reads_at_position_n_then_the_rule() {
    let e = parse("attribute:abc foo bar").err();
    assert_eq!(
        e.map(|e| e.to_string()).as_deref(),
        Some("at position 15: expected an operator, found \"foo\"")
    );
}

#[test]
fn an_expression_of_exactly_the_limit_parses() {
    let src = format!(
        "attribute:x == {}",
        "a".repeat(MAX_EXPRESSION_CHARS - "attribute:x == ".len())
    );
    assert_eq!(src.chars().count(), MAX_EXPRESSION_CHARS);
    assert!(parse(&src).is_ok());
}
