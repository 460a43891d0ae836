//! Task-level `cpu` and `memory` as ECS accepts them: a JSON string or
//! number, in CPU units / MiB ("1024", 1024) or with a unit ("1 vCPU",
//! "0.25 vcpu", "2vCPU"; "1GB", "0.5 GB"). Both normalise to the decimal
//! string of CPU units / MiB. Arithmetic is exact decimal, never float.

use std::fmt;

use serde::de::{self, Deserializer, Visitor};

/// CPU units in one vCPU, MiB in one GB (ECS's GB is a GiB).
const SCALE: u64 = 1024;
/// ECS's task-level CPU range: 0.125 to 192 vCPU.
pub const TASK_CPU_MIN: u32 = 128;
pub const TASK_CPU_MAX: u32 = 196_608;
/// The smallest memory limit Docker (and so ECS) accepts, in MiB.
pub const MEMORY_MIN_MIB: u32 = 6;

/// Parses task-level `cpu` to CPU units; the error states the rule.
pub fn parse_cpu(input: &str) -> Result<u32, String> {
    let s = input.trim();
    let units = match strip_suffix_ignore_case(s, "vcpu") {
        Some(number) => scaled(number.trim()).ok_or_else(|| {
            format!(
                "'{input}' is not a valid CPU value: expected a whole number of CPU units \
                 (1024 per vCPU) such as '512', or vCPUs such as '0.5 vCPU'"
            )
        })?,
        None => integer(s).ok_or_else(|| {
            format!(
                "'{input}' is not a valid CPU value: expected a whole number of CPU units \
                 (1024 per vCPU) such as '512', or vCPUs such as '1 vCPU'"
            )
        })?,
    };
    if !(u64::from(TASK_CPU_MIN)..=u64::from(TASK_CPU_MAX)).contains(&units) {
        return Err(format!(
            "'{input}' is {units} CPU units; task CPU must be between {TASK_CPU_MIN} and \
             {TASK_CPU_MAX} CPU units (0.125 to 192 vCPU)"
        ));
    }
    u32::try_from(units).map_err(|_| format!("'{input}' is out of range"))
}

/// Parses task-level `memory` to MiB; the error states the rule.
pub fn parse_memory(input: &str) -> Result<u32, String> {
    let s = input.trim();
    let mib = match strip_suffix_ignore_case(s, "gb") {
        Some(number) => scaled(number.trim()).ok_or_else(|| {
            format!(
                "'{input}' is not a valid memory value: expected a whole number of MiB such \
                 as '2048', or GB such as '2 GB' that is a whole number of MiB"
            )
        })?,
        None => integer(s).ok_or_else(|| {
            format!(
                "'{input}' is not a valid memory value: expected a whole number of MiB such \
                 as '2048', or GB such as '2 GB'"
            )
        })?,
    };
    if mib < u64::from(MEMORY_MIN_MIB) {
        return Err(format!(
            "'{input}' is {mib} MiB; task memory must be at least {MEMORY_MIN_MIB} MiB"
        ));
    }
    u32::try_from(mib).map_err(|_| format!("'{input}' is more memory than orca can represent"))
}

fn strip_suffix_ignore_case<'a>(s: &'a str, suffix: &str) -> Option<&'a str> {
    let split = s.len().checked_sub(suffix.len())?;
    let tail = s.get(split..)?;
    tail.eq_ignore_ascii_case(suffix)
        .then(|| s.get(..split))
        .flatten()
}

/// A plain whole number of at most 12 digits.
fn integer(s: &str) -> Option<u64> {
    if s.is_empty() || s.len() > 12 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// `number × 1024` for a decimal `number` ("1", "0.25", "2."), if the
/// product is a whole number.
fn scaled(number: &str) -> Option<u64> {
    let (int, frac) = number.split_once('.').unwrap_or((number, ""));
    let digits = |t: &str| t.len() <= 12 && t.bytes().all(|b| b.is_ascii_digit());
    if (int.is_empty() && frac.is_empty()) || !digits(int) || !digits(frac) {
        return None;
    }
    let parse = |t: &str| {
        if t.is_empty() {
            Some(0u128)
        } else {
            t.parse::<u128>().ok()
        }
    };
    let denominator = 10u128.checked_pow(u32::try_from(frac.len()).ok()?)?;
    let numerator = parse(int)?
        .checked_mul(denominator)?
        .checked_add(parse(frac)?)?;
    let product = numerator.checked_mul(u128::from(SCALE))?;
    if product % denominator != 0 {
        return None;
    }
    u64::try_from(product / denominator).ok()
}

/// Deserialises an optional string-or-number into its string form; the
/// value itself is checked later by `parse_cpu` / `parse_memory`.
pub(crate) fn string_or_number<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<String>, D::Error> {
    struct StringOrNumber;
    impl<'de> Visitor<'de> for StringOrNumber {
        type Value = Option<String>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a string such as \"1024\" or \"1 vCPU\", or a number")
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
            Ok(Some(v.to_string()))
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
            Ok(Some(v.to_string()))
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
            Ok(Some(v.to_string()))
        }
        fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
            Ok(Some(v.to_string()))
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_some<D2: Deserializer<'de>>(self, d: D2) -> Result<Self::Value, D2::Error> {
            d.deserialize_any(StringOrNumber)
        }
    }
    deserializer.deserialize_any(StringOrNumber)
}
