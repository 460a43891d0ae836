//! The typed arguments of expression tests and how each reads from text:
//! booleans, dotted versions, dates, task counts, attribute values (numeric
//! when they can be) and full-match regexes. Every conversion happens at
//! parse time; the comparisons here run at evaluation time without
//! allocating.

use std::cmp::Ordering;

use chrono::{DateTime, NaiveDate, NaiveDateTime};
use regex::Regex;

/// What a test asks of the instance's value (the positive form; the
/// negation is kept beside it in the tree).
#[derive(Debug, Clone)]
pub(super) enum Check<T> {
    Cmp(CmpOp, T),
    /// Never empty: the parser rejects `[]`.
    In(Vec<T>),
    /// Anchored to the whole value.
    Matches(Regex),
    Exists,
}

/// The comparisons; `!=` is a negated `Eq`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum CmpOp {
    Eq,
    Gt,
    Ge,
    Lt,
    Le,
}

impl CmpOp {
    /// Whether `instance <op> argument` holds, given `instance.cmp(argument)`.
    pub(super) fn holds(self, ordering: Ordering) -> bool {
        match self {
            CmpOp::Eq => ordering == Ordering::Equal,
            CmpOp::Gt => ordering == Ordering::Greater,
            CmpOp::Ge => ordering != Ordering::Less,
            CmpOp::Lt => ordering == Ordering::Less,
            CmpOp::Le => ordering != Ordering::Greater,
        }
    }
}

/// A dotted version such as `1.70.0`, compared component by component as
/// numbers so that 1.10.0 > 1.9.9; missing components count as 0.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Version(Vec<u64>);

impl Version {
    pub(super) fn parse(text: &str) -> Result<Version, String> {
        text.split('.')
            .map(version_component)
            .collect::<Option<Vec<u64>>>()
            .map(Version)
            .ok_or_else(|| {
                format!("\"{text}\" is not a version: use numbers separated by dots, as in 1.70.0")
            })
    }

    /// Orders the instance's version against this one, reading it in place
    /// (no allocation); `None` when it is not dotted numbers, even past the
    /// component that decides.
    pub(super) fn instance_cmp(&self, instance: &str) -> Option<Ordering> {
        let mut theirs = instance.split('.');
        let mut ours = self.0.iter();
        let mut ordering = Ordering::Equal;
        loop {
            let (a, b) = match (theirs.next(), ours.next()) {
                (None, None) => return Some(ordering),
                (a, b) => (
                    a.map_or(Some(0), version_component)?,
                    b.copied().unwrap_or(0),
                ),
            };
            if ordering == Ordering::Equal {
                ordering = a.cmp(&b);
            }
        }
    }
}

fn version_component(part: &str) -> Option<u64> {
    if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    part.parse().ok()
}

/// An attribute argument: compared as a number when both it and the
/// instance's value read as finite numbers (so `10 > 9.5`), else as text.
#[derive(Debug, Clone)]
pub(super) struct AttrValue {
    text: String,
    number: Option<f64>,
}

impl AttrValue {
    pub(super) fn new(text: &str) -> AttrValue {
        AttrValue {
            text: text.to_string(),
            number: finite_number(text),
        }
    }

    /// Orders the instance's value against this argument.
    pub(super) fn instance_cmp(&self, value: &str) -> Ordering {
        if let (Some(arg), Some(value)) = (self.number, finite_number(value)) {
            // Both finite, so the comparison is total.
            return value.partial_cmp(&arg).unwrap_or(Ordering::Equal);
        }
        value.cmp(self.text.as_str())
    }
}

/// Infinities and NaN read as numbers in Rust but not in the attributes
/// anyone writes (`nan`, `inf`), so they compare as text.
fn finite_number(text: &str) -> Option<f64> {
    text.trim().parse::<f64>().ok().filter(|n| n.is_finite())
}

pub(super) fn parse_bool(text: &str) -> Result<bool, String> {
    if text.eq_ignore_ascii_case("true") {
        Ok(true)
    } else if text.eq_ignore_ascii_case("false") {
        Ok(false)
    } else {
        Err(format!("\"{text}\" is not true or false"))
    }
}

pub(super) fn parse_count(text: &str) -> Result<u32, String> {
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        if let Ok(n) = text.parse() {
            return Ok(n);
        }
    }
    Err(format!("\"{text}\" is not a whole number of tasks"))
}

/// The date forms ECS accepts, as epoch milliseconds (UTC when no offset
/// is given): `2018-06-18`, `2018-06-18T22:28:28`, `2018-06-18T22:28:28Z`
/// and `2018-06-18T22:28:28+00:00`. A date alone is its midnight, so
/// `registeredAt == 2018-06-18` matches only that instant.
pub(super) fn parse_time_ms(text: &str) -> Result<i64, String> {
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Ok(t.timestamp_millis());
    }
    if let Ok(t) = NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f") {
        return Ok(t.and_utc().timestamp_millis());
    }
    if let Some(t) = NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
    {
        return Ok(t.and_utc().timestamp_millis());
    }
    Err(format!(
        "\"{text}\" is not a date: use 2018-06-18, 2018-06-18T22:28:28 or 2018-06-18T22:28:28Z"
    ))
}

/// Compiles `pattern` to match whole values, as Java's `matches`.
pub(super) fn full_match_regex(pattern: &str) -> Result<Regex, String> {
    // The pattern alone is checked first: wrapped, `a)|(b` would compile
    // into a different regex, and the error would show the wrapper.
    let wrapped = Regex::new(pattern).and_then(|_| Regex::new(&format!(r"\A(?:{pattern})\z")));
    wrapped.map_err(|e| format!("invalid regex \"{pattern}\": {}", regex_reason(&e)))
}

/// The last line of the regex crate's message ("error: unclosed group"),
/// without the pattern it prints above it.
fn regex_reason(e: &regex::Error) -> String {
    match e {
        regex::Error::Syntax(text) => text
            .lines()
            .last()
            .map(|l| l.trim_start_matches("error: ").to_string())
            .unwrap_or_default(),
        other => other.to_string(),
    }
}
