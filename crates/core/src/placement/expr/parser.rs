//! The recursive-descent parser behind [`super::parse`]. It reads characters
//! directly rather than tokens, because what a character means depends on
//! where it stands (`!` negates before a subject but starts `!=` after one,
//! and a word after an operator is an argument whatever it spells).
//! Positions are 1-based character columns.

use super::values::{self, AttrValue, Check, Version};
use super::vocab::{Base, Op, Subject};
use super::{ExprError, Node, Test, MAX_EXPRESSION_CHARS, MAX_NESTING};
use crate::placement::is_attribute_name_char;

pub(super) fn parse(src: &str) -> Result<Node, ExprError> {
    let chars: Vec<char> = src.chars().collect();
    if chars.len() > MAX_EXPRESSION_CHARS {
        return Err(error_at(
            MAX_EXPRESSION_CHARS,
            format!(
                "the expression is {} characters long; at most {MAX_EXPRESSION_CHARS} are allowed",
                chars.len()
            ),
        ));
    }
    let mut p = Parser {
        chars,
        pos: 0,
        depth: 0,
    };
    p.skip_ws();
    if p.at_end() {
        return Err(error_at(0, "the expression is empty"));
    }
    let node = p.or_expr()?;
    p.skip_ws();
    match p.peek() {
        None => Ok(node),
        Some(')') => Err(error_at(p.pos, "unmatched \")\"")),
        Some(_) => Err(error_at(
            p.pos,
            format!(
                "expected \"&&\", \"||\" or the end of the expression, found {}",
                p.found(p.pos)
            ),
        )),
    }
}

/// An error at the 0-based character index `index`.
fn error_at(index: usize, message: impl Into<String>) -> ExprError {
    ExprError {
        position: index + 1,
        message: message.into(),
    }
}

/// Characters that end a bare-word argument.
fn ends_word(c: char) -> bool {
    c.is_whitespace() || matches!(c, ')' | ']' | ',' | '&' | '|')
}

struct Parser {
    chars: Vec<char>,
    /// Index of the next character to read.
    pos: usize,
    /// Open `(` and `!` around the current position, bounded by MAX_NESTING.
    depth: usize,
}

/// An argument as written, with the 0-based index of each value for errors.
enum RawArg {
    One(usize, String),
    List(usize, Vec<(usize, String)>),
}

impl Parser {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn at_end(&self) -> bool {
        self.pos >= self.chars.len()
    }

    fn skip_ws(&mut self) {
        while self.peek().is_some_and(char::is_whitespace) {
            self.pos += 1;
        }
    }

    fn starts_with(&self, s: &str) -> bool {
        let mut rest = self.chars.get(self.pos..).unwrap_or_default().iter();
        s.chars().all(|c| rest.next() == Some(&c))
    }

    /// The characters from `start` while `keep` holds.
    fn take_from(&self, start: usize, keep: impl Fn(char) -> bool) -> String {
        self.chars
            .get(start..)
            .unwrap_or_default()
            .iter()
            .take_while(|c| keep(**c))
            .collect()
    }

    /// What stands at `index`, quoted, for "found ..." in messages.
    fn found(&self, index: usize) -> String {
        let Some(&first) = self.chars.get(index) else {
            return "end of expression".to_string();
        };
        let mut token: String = self.take_from(index, |c| !ends_word(c) && c != '(');
        if token.is_empty() {
            token.push(first);
        }
        if token.chars().count() > 24 {
            token = token.chars().take(24).collect::<String>() + "...";
        }
        format!("\"{token}\"")
    }

    /// Consumes the word `keyword` (any case) if it stands here as a whole
    /// word, so that `or` is taken but `order` is not.
    fn keyword(&mut self, keyword: &str) -> bool {
        let word = self.take_from(self.pos, is_attribute_name_char);
        if word.eq_ignore_ascii_case(keyword) {
            self.pos += word.chars().count();
            true
        } else {
            false
        }
    }

    fn enter(&mut self, at: usize) -> Result<(), ExprError> {
        self.depth += 1;
        if self.depth > MAX_NESTING {
            return Err(error_at(
                at,
                format!("the expression nests \"(\" and \"!\" deeper than {MAX_NESTING} levels"),
            ));
        }
        Ok(())
    }

    fn or_expr(&mut self) -> Result<Node, ExprError> {
        let mut items = vec![self.and_expr()?];
        loop {
            self.skip_ws();
            if self.starts_with("||") {
                self.pos += 2;
            } else if !self.keyword("or") {
                break;
            }
            items.push(self.and_expr()?);
        }
        Ok(flatten(items, Node::Any))
    }

    fn and_expr(&mut self) -> Result<Node, ExprError> {
        let mut items = vec![self.unary()?];
        loop {
            self.skip_ws();
            if self.starts_with("&&") {
                self.pos += 2;
            } else if !self.keyword("and") {
                break;
            }
            items.push(self.unary()?);
        }
        Ok(flatten(items, Node::All))
    }

    fn unary(&mut self) -> Result<Node, ExprError> {
        self.skip_ws();
        let start = self.pos;
        let negation = if self.peek() == Some('!') {
            self.pos += 1;
            true
        } else {
            self.keyword("not")
        };
        if negation {
            self.enter(start)?;
            let inner = self.unary()?;
            self.depth -= 1;
            return Ok(Node::Not(Box::new(inner)));
        }
        if self.peek() == Some('(') {
            self.pos += 1;
            self.enter(start)?;
            let inner = self.or_expr()?;
            self.skip_ws();
            if self.peek() != Some(')') {
                return Err(error_at(
                    self.pos,
                    format!(
                        "expected \")\" to close the \"(\" at position {}, found {}",
                        start + 1,
                        self.found(self.pos)
                    ),
                ));
            }
            self.pos += 1;
            self.depth -= 1;
            return Ok(inner);
        }
        self.comparison()
    }

    fn comparison(&mut self) -> Result<Node, ExprError> {
        let start = self.pos;
        let word = self.take_from(start, is_attribute_name_char);
        if word.is_empty() {
            return Err(error_at(
                start,
                format!("expected a subject, found {}", self.found(start)),
            ));
        }
        let subject = Subject::parse(&word).ok_or_else(|| {
            error_at(
                start,
                format!(
                    "unknown subject \"{word}\": expected agentConnected, agentVersion, \
                     attribute:<name>, ec2InstanceId, instanceId, registeredAt, \
                     runningTasksCount or task:group"
                ),
            )
        })?;
        if let Subject::Attribute(name) = subject {
            if name.is_empty() {
                return Err(error_at(
                    start,
                    "attribute: needs a name, as in attribute:ecs.instance-type",
                ));
            }
        }
        self.pos += word.chars().count();
        self.skip_ws();
        let op_start = self.pos;
        let op = self.operator()?;
        if !subject.allows(op) {
            let allowed: Vec<&str> = Op::ALL
                .iter()
                .filter(|o| subject.allows(**o))
                .map(|o| o.symbol())
                .collect();
            return Err(error_at(
                op_start,
                format!(
                    "\"{}\" does not apply to {}: use {}",
                    op.symbol(),
                    subject.name(),
                    allowed.join(", ")
                ),
            ));
        }
        let arg = match op.base() {
            Base::Exists => None,
            _ => Some(self.argument(op)?),
        };
        let test = match subject {
            Subject::AgentConnected => Test::AgentConnected(check(op, arg, values::parse_bool)?),
            Subject::AgentVersion => Test::AgentVersion(check(op, arg, Version::parse)?),
            Subject::Attribute(name) => Test::Attribute {
                name: name.to_string(),
                check: check(op, arg, |v| Ok(AttrValue::new(v)))?,
            },
            Subject::InstanceId => Test::InstanceId(check(op, arg, |v| Ok(v.to_string()))?),
            Subject::RegisteredAt => Test::RegisteredAt(check(op, arg, values::parse_time_ms)?),
            Subject::RunningTasksCount => {
                Test::RunningTasksCount(check(op, arg, values::parse_count)?)
            }
            Subject::TaskGroup => Test::TaskGroup(check(op, arg, |v| Ok(v.to_string()))?),
        };
        Ok(Node::Test {
            test,
            negated: op.negated(),
        })
    }

    fn operator(&mut self) -> Result<Op, ExprError> {
        let start = self.pos;
        for (symbol, op) in Op::SYMBOLS {
            if self.starts_with(symbol) {
                self.pos += symbol.len();
                return Ok(op);
            }
        }
        // Words, and the two symbols spelled with one: `!exists`, `!in`.
        let bang = self.peek() == Some('!');
        let word_start = start + usize::from(bang);
        let word = self.take_from(word_start, |c| c.is_ascii_alphanumeric() || c == '_');
        let op = if bang {
            [("exists", Op::NotExists), ("in", Op::NotIn)]
                .into_iter()
                .find(|(w, _)| word.eq_ignore_ascii_case(w))
        } else {
            Op::WORDS
                .into_iter()
                .find(|(w, _)| word.eq_ignore_ascii_case(w))
        };
        match op {
            Some((_, op)) => {
                self.pos = word_start + word.len();
                Ok(op)
            }
            None => Err(error_at(
                start,
                format!("expected an operator, found {}", self.found(start)),
            )),
        }
    }

    fn argument(&mut self, op: Op) -> Result<RawArg, ExprError> {
        self.skip_ws();
        let start = self.pos;
        match self.peek() {
            Some('[') => self.list(),
            Some(c) if !ends_word(c) => {
                let (at, value) = self.value()?;
                Ok(RawArg::One(at, value))
            }
            _ => Err(error_at(
                start,
                format!(
                    "expected an argument after \"{}\", found {}",
                    op.symbol(),
                    self.found(start)
                ),
            )),
        }
    }

    fn list(&mut self) -> Result<RawArg, ExprError> {
        let open = self.pos;
        self.pos += 1;
        let mut items = Vec::new();
        loop {
            self.skip_ws();
            items.push(self.value()?);
            self.skip_ws();
            match self.peek() {
                Some(',') => self.pos += 1,
                Some(']') => {
                    self.pos += 1;
                    return Ok(RawArg::List(open, items));
                }
                _ => {
                    return Err(error_at(
                        self.pos,
                        format!(
                            "expected \",\" or \"]\" in the list opened at position {}, found {}",
                            open + 1,
                            self.found(self.pos)
                        ),
                    ))
                }
            }
        }
    }

    /// A quoted string (no escapes: regexes keep their backslashes) or a
    /// bare word.
    fn value(&mut self) -> Result<(usize, String), ExprError> {
        let start = self.pos;
        if let Some(quote @ ('"' | '\'')) = self.peek() {
            let text = self.take_from(start + 1, |c| c != quote);
            let close = start + 1 + text.chars().count();
            if close >= self.chars.len() {
                return Err(error_at(
                    start,
                    format!("unterminated string: the {quote} that opens it is never closed"),
                ));
            }
            self.pos = close + 1;
            return Ok((start, text));
        }
        let word = self.take_from(start, |c| !ends_word(c));
        if word.is_empty() {
            return Err(error_at(
                start,
                format!("expected a value, found {}", self.found(start)),
            ));
        }
        self.pos += word.chars().count();
        Ok((start, word))
    }
}

/// One item stands alone; more become an `Any` or `All`.
fn flatten(mut items: Vec<Node>, join: fn(Vec<Node>) -> Node) -> Node {
    if items.len() == 1 {
        if let Some(only) = items.pop() {
            return only;
        }
    }
    join(items)
}

/// Types the argument for one subject with `convert`, whose error names the
/// rule and is placed at the offending value.
fn check<T>(
    op: Op,
    arg: Option<RawArg>,
    convert: impl Fn(&str) -> Result<T, String>,
) -> Result<Check<T>, ExprError> {
    let typed = |(at, text): (usize, String)| convert(&text).map_err(|m| error_at(at, m));
    let Some(arg) = arg else {
        return Ok(Check::Exists);
    };
    match (op.base(), arg) {
        (Base::Exists, _) => Ok(Check::Exists),
        (Base::In, RawArg::One(at, text)) => Ok(Check::In(vec![typed((at, text))?])),
        (Base::In, RawArg::List(_, items)) => Ok(Check::In(
            items.into_iter().map(typed).collect::<Result<_, _>>()?,
        )),
        (_, RawArg::List(open, _)) => Err(error_at(
            open,
            format!(
                "a list is only allowed with in and !in, not with \"{}\"",
                op.symbol()
            ),
        )),
        (Base::Matches, RawArg::One(at, text)) => values::full_match_regex(&text)
            .map(Check::Matches)
            .map_err(|m| error_at(at, m)),
        (Base::Cmp(cmp), RawArg::One(at, text)) => Ok(Check::Cmp(cmp, typed((at, text))?)),
    }
}
