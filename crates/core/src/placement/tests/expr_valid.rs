//! A table of valid expressions, each with the fleet instances it must
//! match: every subject, operator and word form, lists, quoting,
//! precedence, parentheses and nested negation.

use super::matching;

const ROWS: &[(&str, &str)] = &[
    // agentConnected
    ("agentConnected == true", "ac"),
    ("agentConnected != true", "b"),
    ("agentConnected == FALSE", "b"),
    ("agentConnected in [false]", "b"),
    ("agentConnected !in [true, false]", ""),
    ("agentConnected =~ t.*", "ac"),
    ("agentConnected !~ t.*", "b"),
    // agentVersion: numeric per component, missing components are 0
    ("agentVersion > 1.9.9", "ac"),
    ("agentVersion >= 1.10", "ac"),
    ("agentVersion == 1.10.0", "c"),
    ("agentVersion < 1.10.0", "b"),
    ("agentVersion <= 1.9.9", "b"),
    ("agentVersion != 1.70.0", "bc"),
    // attribute:<name>
    ("attribute:ecs.instance-type == t3.micro", "a"),
    ("attribute:ecs.instance-type != t3.micro", "bc"),
    ("attribute:ecs.instance-type =~ t3\\..*", "ac"),
    ("attribute:ecs.instance-type =~ t3", ""),
    ("attribute:ecs.instance-type !~ t3.*", "b"),
    ("attribute:ecs.instance-type in [t3.micro, m5.large]", "ab"),
    (
        "attribute:ecs.instance-type !in ['t3.micro', \"m5.large\"]",
        "c",
    ),
    ("attribute:ecs.availability-zone in us-east-1c", "c"),
    ("attribute:gpu exists", "a"),
    ("attribute:gpu !exists", "bc"),
    ("attribute:gpu == ''", "a"),
    ("attribute:stack != prod", "b"),
    ("attribute:stack =~ '[Pp]rod'", "ab"),
    ("attribute:size > 9.75", "ac"),
    ("attribute:size < 10", "b"),
    ("attribute:size == 10.0", "a"),
    ("attribute:size >= 9.5", "abc"),
    ("attribute:size in [10, big]", "ac"),
    ("attribute:team == 'red team'", "c"),
    ("attribute:com.example/tier:level == gold", "b"),
    // instanceId and ec2InstanceId
    ("instanceId == i-aaa", "a"),
    ("instanceId !in [i-aaa]", "bc"),
    ("ec2InstanceId in [i-aaa, i-ccc]", "ac"),
    ("ec2InstanceId =~ \"i-(a|b)+\"", "ab"),
    ("ec2InstanceId !~ i-c.*", "ab"),
    // registeredAt
    ("registeredAt < 2017-07-01", "a"),
    ("registeredAt >= 2017-07-01T12:00:00Z", "bc"),
    ("registeredAt == 2017-07-01T12:00:00Z", "c"),
    ("registeredAt > 2017-07-01T12:00:00", "b"),
    ("registeredAt < 2017-07-01T14:00:00+02:00", "a"),
    ("registeredAt != 2018-01-01", "ac"),
    ("registeredAt <= 2017-07-01T12:00:00.000Z", "ac"),
    // runningTasksCount
    ("runningTasksCount == 0", "b"),
    ("runningTasksCount != 3", "bc"),
    ("runningTasksCount > 2", "ac"),
    ("runningTasksCount >= 10", "c"),
    ("runningTasksCount < 1", "b"),
    ("runningTasksCount <= 3", "ab"),
    ("runningTasksCount in [0, 10]", "bc"),
    ("runningTasksCount !in [3]", "bc"),
    // task:group: any group matches; negations mean none does
    ("task:group == service:web", "a"),
    ("task:group != service:web", "bc"),
    ("task:group in [batch, service:api]", "ac"),
    ("task:group in batch", "a"),
    ("task:group !in [batch]", "bc"),
    ("task:group =~ service:.*", "ac"),
    ("task:group !~ service:.*", "b"),
    ("task:group exists", "ac"),
    ("task:group !exists", "b"),
    // operator words, in any case
    ("attribute:ecs.os-type EQUALS linux", "ac"),
    ("attribute:ecs.os-type not_equals linux", "b"),
    ("runningTasksCount greater_than 3", "c"),
    ("runningTasksCount Greater_Than_Equal 3", "ac"),
    ("runningTasksCount less_than 3", "b"),
    ("runningTasksCount less_than_equal 3", "ab"),
    ("attribute:gpu EXISTS", "a"),
    ("attribute:gpu not_exists", "bc"),
    ("attribute:gpu !EXISTS", "bc"),
    ("task:group IN [batch]", "a"),
    ("task:group not_in [batch]", "bc"),
    ("attribute:ecs.instance-type matches t3.*", "ac"),
    ("attribute:ecs.instance-type NOT_MATCHES t3.*", "b"),
    // subject names in any case; attribute names keep theirs
    ("AGENTCONNECTED == true", "ac"),
    ("Attribute:ecs.os-type == linux", "ac"),
    ("attribute:ECS.os-type exists", ""),
    // precedence: ! > && > ||
    ("agentConnected == true && runningTasksCount > 5", "c"),
    ("agentConnected == false || runningTasksCount > 5", "bc"),
    (
        "runningTasksCount == 0 || agentConnected == true && runningTasksCount == 3",
        "ab",
    ),
    (
        "(runningTasksCount == 0 || agentConnected == true) && runningTasksCount == 3",
        "a",
    ),
    ("!agentConnected == true && runningTasksCount == 0", "b"),
    ("!runningTasksCount == 0 || agentConnected == false", "abc"),
    ("runningTasksCount == 0 or runningTasksCount == 10", "bc"),
    (
        "NOT (runningTasksCount > 0 AND agentConnected == true)",
        "b",
    ),
    // negation and parentheses
    ("!agentConnected == true", "b"),
    ("!(agentConnected == true)", "b"),
    ("!!agentConnected == true", "ac"),
    ("! ! (agentConnected == true)", "ac"),
    ("not agentConnected == true", "b"),
    ("not(agentConnected == true)", "b"),
    (
        "!(!(agentConnected == true) || runningTasksCount == 10)",
        "a",
    ),
    (
        "((task:group == batch) || (task:group == service:api)) and not attribute:gpu exists",
        "c",
    ),
    // spacing and quoting
    ("runningTasksCount>2&&agentConnected==true", "ac"),
    ("(attribute:ecs.os-type==linux)", "ac"),
    ("  attribute:ecs.os-type == linux  ", "ac"),
    ("attribute:ecs.availability-zone == \"us-east-1a\"", "a"),
    (
        "attribute:ecs.availability-zone in ['us-east-1a','us-east-1b']",
        "ab",
    ),
    (
        "attribute:ecs.availability-zone in [ us-east-1a ,us-east-1c ]",
        "ac",
    ),
];

#[test]
fn every_valid_expression_matches_its_instances() {
    let mut failures = Vec::new();
    for (src, want) in ROWS {
        match matching(src) {
            Ok(got) if got == *want => {}
            Ok(got) => failures.push(format!("{src:?}: matched {got:?}, want {want:?}")),
            Err(e) => failures.push(format!("{src:?}: {e}")),
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

#[test]
fn an_expression_keeps_its_source() {
    let src = "  attribute:ecs.os-type == linux  ";
    let e = super::expr::parse(src).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(e.source(), src);
    assert_eq!(e.to_string(), src);
}
