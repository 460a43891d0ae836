//! The words of the cluster query language: its subjects and operators,
//! how each is spelled, and which operators apply to which subject.

use super::values::CmpOp;

/// What a comparison asks about; `ec2InstanceId` reads as `InstanceId`.
#[derive(Debug, Clone, Copy)]
pub(super) enum Subject<'a> {
    AgentConnected,
    AgentVersion,
    Attribute(&'a str),
    InstanceId,
    RegisteredAt,
    RunningTasksCount,
    TaskGroup,
}

impl<'a> Subject<'a> {
    /// Subject names match in any case; an attribute's name keeps its own.
    pub(super) fn parse(word: &'a str) -> Option<Subject<'a>> {
        const PREFIX: &str = "attribute:";
        if word
            .get(..PREFIX.len())
            .is_some_and(|p| p.eq_ignore_ascii_case(PREFIX))
        {
            return word.get(PREFIX.len()..).map(Subject::Attribute);
        }
        [
            ("agentConnected", Subject::AgentConnected),
            ("agentVersion", Subject::AgentVersion),
            ("instanceId", Subject::InstanceId),
            ("ec2InstanceId", Subject::InstanceId),
            ("registeredAt", Subject::RegisteredAt),
            ("runningTasksCount", Subject::RunningTasksCount),
            ("task:group", Subject::TaskGroup),
        ]
        .into_iter()
        .find(|(name, _)| word.eq_ignore_ascii_case(name))
        .map(|(_, s)| s)
    }

    pub(super) fn name(self) -> &'static str {
        match self {
            Subject::AgentConnected => "agentConnected",
            Subject::AgentVersion => "agentVersion",
            Subject::Attribute(_) => "attribute:<name>",
            Subject::InstanceId => "instanceId",
            Subject::RegisteredAt => "registeredAt",
            Subject::RunningTasksCount => "runningTasksCount",
            Subject::TaskGroup => "task:group",
        }
    }

    /// ECS's table of valid operators per subject, plus ordering on
    /// attributes (numeric when both sides are numbers), which orca adds.
    pub(super) fn allows(self, op: Op) -> bool {
        use Op::*;
        match self {
            Subject::AgentConnected | Subject::InstanceId => {
                matches!(op, Eq | Ne | In | NotIn | Matches | NotMatches)
            }
            Subject::AgentVersion | Subject::RegisteredAt => {
                matches!(op, Eq | Ne | Gt | Ge | Lt | Le)
            }
            Subject::RunningTasksCount => matches!(op, Eq | Ne | Gt | Ge | Lt | Le | In | NotIn),
            Subject::TaskGroup => !matches!(op, Gt | Ge | Lt | Le),
            Subject::Attribute(_) => true,
        }
    }
}

/// An operator, whichever way it was spelled (`!=` or `not_equals`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Op {
    Eq,
    Ne,
    Gt,
    Ge,
    Lt,
    Le,
    Exists,
    NotExists,
    In,
    NotIn,
    Matches,
    NotMatches,
}

/// What an operator tests, before negation.
pub(super) enum Base {
    Cmp(CmpOp),
    In,
    Matches,
    Exists,
}

impl Op {
    pub(super) const ALL: [Op; 12] = [
        Op::Eq,
        Op::Ne,
        Op::Gt,
        Op::Ge,
        Op::Lt,
        Op::Le,
        Op::Exists,
        Op::NotExists,
        Op::In,
        Op::NotIn,
        Op::Matches,
        Op::NotMatches,
    ];

    /// Two-character symbols come before their one-character prefixes.
    pub(super) const SYMBOLS: [(&'static str, Op); 8] = [
        ("==", Op::Eq),
        ("!=", Op::Ne),
        (">=", Op::Ge),
        ("<=", Op::Le),
        ("=~", Op::Matches),
        ("!~", Op::NotMatches),
        (">", Op::Gt),
        ("<", Op::Lt),
    ];

    pub(super) const WORDS: [(&'static str, Op); 12] = [
        ("equals", Op::Eq),
        ("not_equals", Op::Ne),
        ("greater_than", Op::Gt),
        ("greater_than_equal", Op::Ge),
        ("less_than", Op::Lt),
        ("less_than_equal", Op::Le),
        ("exists", Op::Exists),
        ("not_exists", Op::NotExists),
        ("in", Op::In),
        ("not_in", Op::NotIn),
        ("matches", Op::Matches),
        ("not_matches", Op::NotMatches),
    ];

    pub(super) fn symbol(self) -> &'static str {
        match self {
            Op::Eq => "==",
            Op::Ne => "!=",
            Op::Gt => ">",
            Op::Ge => ">=",
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Exists => "exists",
            Op::NotExists => "!exists",
            Op::In => "in",
            Op::NotIn => "!in",
            Op::Matches => "=~",
            Op::NotMatches => "!~",
        }
    }

    pub(super) fn negated(self) -> bool {
        matches!(self, Op::Ne | Op::NotExists | Op::NotIn | Op::NotMatches)
    }

    pub(super) fn base(self) -> Base {
        match self {
            Op::Eq | Op::Ne => Base::Cmp(CmpOp::Eq),
            Op::Gt => Base::Cmp(CmpOp::Gt),
            Op::Ge => Base::Cmp(CmpOp::Ge),
            Op::Lt => Base::Cmp(CmpOp::Lt),
            Op::Le => Base::Cmp(CmpOp::Le),
            Op::Exists | Op::NotExists => Base::Exists,
            Op::In | Op::NotIn => Base::In,
            Op::Matches | Op::NotMatches => Base::Matches,
        }
    }
}
