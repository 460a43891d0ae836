//! ECS's cluster query language, the expressions of `memberOf` constraints.
//!
//! [`parse`] turns the text into an [`Expr`] once, when the request arrives,
//! with every argument already typed (versions split, dates read, regexes
//! compiled), so that the scheduler only evaluates it: it runs for each
//! instance of the cluster on every placement, and allocates nothing in the
//! common paths.
//!
//! Grammar (precedence `!` > `&&` > `||`; the word forms `not`, `and`,
//! `or` and the operator words are case-insensitive):
//!
//! ```text
//! expr       = and_expr { ("||" | "or") and_expr }
//! and_expr   = unary { ("&&" | "and") unary }
//! unary      = ("!" | "not") unary | "(" expr ")" | comparison
//! comparison = subject operator [argument]
//! argument   = value | "[" value { "," value } "]"
//! value      = word | 'text' | "text"
//! ```
//!
//! Regexes use the `regex` crate, not Java's engine: no look-around or
//! back-references. As Java's `matches`, they must match the whole value.

mod parser;
mod values;
mod vocab;

use std::cmp::Ordering;
use std::fmt;

use values::{AttrValue, Check, CmpOp, Version};

/// The longest expression accepted, as ECS.
pub const MAX_EXPRESSION_CHARS: usize = 2000;
/// How deeply `(` and `!` may nest; the parser and the evaluator recurse,
/// and an unbounded depth would let a request overflow a worker's stack.
pub const MAX_NESTING: usize = 32;

/// What an expression can ask about a container instance. The scheduler
/// implements it over its view of the cluster.
pub trait InstanceFacts {
    fn instance_id(&self) -> &str;
    fn agent_connected(&self) -> bool;
    fn agent_version(&self) -> &str;
    /// `Some("")` for a name-only attribute.
    fn attribute(&self, name: &str) -> Option<&str>;
    /// Epoch milliseconds.
    fn registered_at_ms(&self) -> i64;
    fn running_tasks_count(&self) -> u32;
    /// Whether the instance runs (has placed and not stopped) a task of `group`.
    fn has_task_group(&self, group: &str) -> bool;
    /// Every task group running on the instance (for regex and exists on task:group).
    fn task_groups(&self) -> Vec<&str>;
}

/// Why an expression does not parse, at a 1-based character column.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("at position {position}: {message}")]
pub struct ExprError {
    /// 1-based character column; one past the last character when the
    /// expression ends too early.
    pub position: usize,
    pub message: String,
}

/// A parsed expression. It keeps its source so that constraints can be
/// echoed and logged as the user wrote them.
#[derive(Debug, Clone)]
pub struct Expr {
    source: String,
    root: Node,
}

/// Parses a cluster-query-language expression.
pub fn parse(src: &str) -> Result<Expr, ExprError> {
    let root = parser::parse(src)?;
    Ok(Expr {
        source: src.to_string(),
        root,
    })
}

impl Expr {
    /// The text the expression was parsed from.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Whether the instance belongs to the group the expression describes.
    pub fn matches(&self, facts: &impl InstanceFacts) -> bool {
        self.root.eval(facts)
    }
}

impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

/// The expression tree. `&&` and `||` chains are flat lists rather than
/// nested pairs, so that a long chain does not deepen the recursion.
#[derive(Debug, Clone)]
enum Node {
    Any(Vec<Node>),
    All(Vec<Node>),
    Not(Box<Node>),
    /// One comparison; `negated` turns `==` into `!=`, `in` into `!in`,
    /// `=~` into `!~` and `exists` into `!exists`.
    Test {
        test: Test,
        negated: bool,
    },
}

/// A subject with its typed check.
#[derive(Debug, Clone)]
enum Test {
    AgentConnected(Check<bool>),
    AgentVersion(Check<Version>),
    Attribute {
        name: String,
        check: Check<AttrValue>,
    },
    /// `instanceId` and its alias `ec2InstanceId`.
    InstanceId(Check<String>),
    /// Epoch milliseconds.
    RegisteredAt(Check<i64>),
    RunningTasksCount(Check<u32>),
    TaskGroup(Check<String>),
}

impl Node {
    fn eval<F: InstanceFacts + ?Sized>(&self, facts: &F) -> bool {
        match self {
            Node::Any(nodes) => nodes.iter().any(|n| n.eval(facts)),
            Node::All(nodes) => nodes.iter().all(|n| n.eval(facts)),
            Node::Not(node) => !node.eval(facts),
            // Without a value to compare, a negated test is false too: ECS
            // requires the attribute to exist for `!=`, `!in` and `!~`.
            Node::Test { test, negated } => test.holds(facts).is_some_and(|b| b != *negated),
        }
    }
}

impl Test {
    /// Whether the positive form of the test holds, or `None` when the
    /// instance has no comparable value (a missing attribute, an agent
    /// version that is not dotted numbers).
    fn holds<F: InstanceFacts + ?Sized>(&self, facts: &F) -> Option<bool> {
        match self {
            Test::AgentConnected(check) => {
                let connected = facts.agent_connected();
                let text = if connected { "true" } else { "false" };
                check.eval(Some(text), |arg| Some(connected.cmp(arg)))
            }
            Test::AgentVersion(check) => {
                let version = facts.agent_version();
                check.eval(Some(version), |arg| arg.instance_cmp(version))
            }
            Test::Attribute { name, check } => match facts.attribute(name) {
                None => matches!(check, Check::Exists).then_some(false),
                Some(value) => check.eval(Some(value), |arg| Some(arg.instance_cmp(value))),
            },
            Test::InstanceId(check) => {
                let id = facts.instance_id();
                check.eval(Some(id), |arg| Some(id.cmp(arg.as_str())))
            }
            Test::RegisteredAt(check) => {
                let at = facts.registered_at_ms();
                check.eval(None, |arg| Some(at.cmp(arg)))
            }
            Test::RunningTasksCount(check) => {
                let count = facts.running_tasks_count();
                check.eval(None, |arg| Some(count.cmp(arg)))
            }
            Test::TaskGroup(check) => task_group_holds(check, facts),
        }
    }
}

/// `task:group` asks whether ANY group on the instance matches; the negated
/// forms therefore mean that none does. `==` and `in` go through
/// `has_task_group` so that the caller can answer from an index.
fn task_group_holds<F: InstanceFacts + ?Sized>(check: &Check<String>, facts: &F) -> Option<bool> {
    match check {
        Check::Cmp(CmpOp::Eq, group) => Some(facts.has_task_group(group)),
        // The parser admits no ordering on task:group.
        Check::Cmp(..) => None,
        Check::In(groups) => Some(groups.iter().any(|g| facts.has_task_group(g))),
        Check::Matches(re) => Some(facts.task_groups().iter().any(|g| re.is_match(g))),
        Check::Exists => Some(!facts.task_groups().is_empty()),
    }
}

impl<T> Check<T> {
    /// Evaluates the positive form against one instance value: `text` is
    /// its string form for regexes, `cmp` orders it against an argument
    /// (`None` when the two cannot be compared).
    fn eval(&self, text: Option<&str>, cmp: impl Fn(&T) -> Option<Ordering>) -> Option<bool> {
        match self {
            Check::Cmp(op, arg) => cmp(arg).map(|o| op.holds(o)),
            Check::In(args) => {
                let mut comparable = false;
                for arg in args {
                    match cmp(arg) {
                        Some(Ordering::Equal) => return Some(true),
                        Some(_) => comparable = true,
                        None => {}
                    }
                }
                comparable.then_some(false)
            }
            Check::Matches(re) => text.map(|t| re.is_match(t)),
            Check::Exists => Some(true),
        }
    }
}
