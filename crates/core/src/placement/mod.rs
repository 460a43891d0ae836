//! Task placement as ECS defines it: constraints (`distinctInstance`, and
//! `memberOf` with a cluster-query-language expression, see [`expr`]) that
//! bind, and strategies (`binpack`, `spread`, `random`) that are best
//! effort. Requests carry ECS's JSON shapes, kept as they came so that they
//! can be stored and echoed; [`parse_constraints`] and [`parse_strategies`]
//! check them with ECS's rules and give the scheduler typed values.

pub mod expr;
#[cfg(test)]
mod tests;

use serde::{Deserialize, Serialize};

use crate::error::{ApiError, Exception};

/// The most placement constraints a task or service may carry, as ECS.
pub const MAX_CONSTRAINTS: usize = 10;
/// The most placement strategies a task or service may carry, as ECS.
pub const MAX_STRATEGIES: usize = 5;

#[derive(Debug, Clone)]
pub enum Constraint {
    /// Each task of the group on a different instance.
    DistinctInstance,
    /// Only instances the expression matches.
    MemberOf(expr::Expr),
}

/// Strategies apply in the order given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Strategy {
    /// Prefer the instance with the least of the field left.
    Binpack(BinpackField),
    /// Spread evenly over the values of the field.
    Spread(SpreadField),
    Random,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinpackField {
    Cpu,
    Memory,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SpreadField {
    /// `instanceId`, or its synonym `host`.
    InstanceId,
    /// `attribute:<name>`; holds the name without the prefix.
    Attribute(String),
}

/// ECS's `placementConstraints[]` item as it comes in a request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PlacementConstraintInput {
    pub r#type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expression: Option<String>,
}

/// ECS's `placementStrategy[]` item as it comes in a request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PlacementStrategyInput {
    pub r#type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

/// Checks and types `inputs`, found at `path` (for example
/// `placementConstraints`); every failure is an InvalidParameterException
/// at `path`, `path[i].type` or `path[i].expression`.
pub fn parse_constraints(
    inputs: &[PlacementConstraintInput],
    path: &str,
) -> Result<Vec<Constraint>, ApiError> {
    if inputs.len() > MAX_CONSTRAINTS {
        return Err(invalid(
            path,
            format!(
                "{} constraints given; at most {MAX_CONSTRAINTS} are allowed",
                inputs.len()
            ),
        ));
    }
    inputs
        .iter()
        .enumerate()
        .map(|(i, input)| parse_constraint(input, &format!("{path}[{i}]")))
        .collect()
}

fn parse_constraint(input: &PlacementConstraintInput, at: &str) -> Result<Constraint, ApiError> {
    // A blank expression is no expression: some tools send "" for none.
    let expression = input.expression.as_deref().filter(|e| !e.trim().is_empty());
    match input.r#type.as_str() {
        "distinctInstance" => match expression {
            None => Ok(Constraint::DistinctInstance),
            Some(_) => Err(invalid(
                format!("{at}.expression"),
                "distinctInstance takes no expression",
            )),
        },
        "memberOf" => {
            let src = expression.ok_or_else(|| {
                invalid(
                    format!("{at}.expression"),
                    "memberOf requires an expression",
                )
            })?;
            expr::parse(src)
                .map(Constraint::MemberOf)
                .map_err(|e| invalid(format!("{at}.expression"), e))
        }
        other => Err(invalid(
            format!("{at}.type"),
            format!("unknown value '{other}': expected distinctInstance or memberOf"),
        )),
    }
}

/// Checks and types `inputs`, found at `path` (for example
/// `placementStrategy`); every failure is an InvalidParameterException at
/// `path`, `path[i].type` or `path[i].field`.
pub fn parse_strategies(
    inputs: &[PlacementStrategyInput],
    path: &str,
) -> Result<Vec<Strategy>, ApiError> {
    if inputs.len() > MAX_STRATEGIES {
        return Err(invalid(
            path,
            format!(
                "{} strategies given; at most {MAX_STRATEGIES} are allowed",
                inputs.len()
            ),
        ));
    }
    inputs
        .iter()
        .enumerate()
        .map(|(i, input)| parse_strategy(input, &format!("{path}[{i}]")))
        .collect()
}

fn parse_strategy(input: &PlacementStrategyInput, at: &str) -> Result<Strategy, ApiError> {
    let field_path = || format!("{at}.field");
    let field = input.field.as_deref();
    match input.r#type.as_str() {
        "binpack" => {
            let field = field
                .ok_or_else(|| invalid(field_path(), "binpack requires a field: cpu or memory"))?;
            if field.eq_ignore_ascii_case("cpu") {
                Ok(Strategy::Binpack(BinpackField::Cpu))
            } else if field.eq_ignore_ascii_case("memory") {
                Ok(Strategy::Binpack(BinpackField::Memory))
            } else {
                Err(invalid(
                    field_path(),
                    format!("unknown value '{field}': expected cpu or memory"),
                ))
            }
        }
        "spread" => {
            let field = field.ok_or_else(|| {
                invalid(
                    field_path(),
                    "spread requires a field: instanceId, host or attribute:<name>",
                )
            })?;
            spread_field(field).map(Strategy::Spread).ok_or_else(|| {
                invalid(
                    field_path(),
                    format!(
                        "unknown value '{field}': expected instanceId, host or attribute:<name>"
                    ),
                )
            })
        }
        // ECS ignores the field of a random strategy.
        "random" => Ok(Strategy::Random),
        other => Err(invalid(
            format!("{at}.type"),
            format!("unknown value '{other}': expected binpack, random or spread"),
        )),
    }
}

fn spread_field(field: &str) -> Option<SpreadField> {
    const PREFIX: &str = "attribute:";
    if field.eq_ignore_ascii_case("instanceId") || field.eq_ignore_ascii_case("host") {
        return Some(SpreadField::InstanceId);
    }
    let name = field
        .get(..PREFIX.len())
        .filter(|p| p.eq_ignore_ascii_case(PREFIX))
        .and_then(|_| field.get(PREFIX.len()..))?;
    (!name.is_empty() && name.chars().all(is_attribute_name_char))
        .then(|| SpreadField::Attribute(name.to_string()))
}

/// The characters of attribute names (`ecs.availability-zone`,
/// `com.example/tier:gold`), shared by expressions and spread fields.
fn is_attribute_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | ':' | '/')
}

fn invalid(path: impl Into<String>, rule: impl std::fmt::Display) -> ApiError {
    ApiError::field(Exception::InvalidParameterException, path, rule)
}
