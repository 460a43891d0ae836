//! [`Timestamp`]: milliseconds since the Unix epoch, written the way the
//! AWS CLI prints ECS timestamps (`2026-11-22T05:18:46.123000+00:00`).
//! The proposer supplies the value; nothing here reads a clock.

use std::fmt;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::de::{self, Deserializer, Visitor};
use serde::{Serialize, Serializer};

/// Milliseconds since the Unix epoch.
///
/// Serialises as RFC 3339 in UTC with six fractional digits and a `+00:00`
/// offset; deserialises from any RFC 3339 string (truncated to the
/// millisecond) or from a number of epoch seconds, as the ECS API sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(pub i64);

impl Timestamp {
    /// The RFC 3339 form, or None when the instant is outside chrono's range.
    pub fn to_rfc3339(self) -> Option<String> {
        let dt = DateTime::<Utc>::from_timestamp_millis(self.0)?;
        // Micros (always ...000) match the AWS CLI; `+00:00` rather than `Z`.
        Some(dt.to_rfc3339_opts(SecondsFormat::Micros, false))
    }

    /// Parses an RFC 3339 string such as `2026-11-22T05:18:46.123+00:00`.
    pub fn parse_rfc3339(s: &str) -> Option<Timestamp> {
        DateTime::parse_from_rfc3339(s)
            .ok()
            .map(|dt| Timestamp(dt.timestamp_millis()))
    }

    /// From (fractional) epoch seconds, rounded to the millisecond.
    pub fn from_epoch_seconds(secs: f64) -> Option<Timestamp> {
        let millis = (secs * 1000.0).round();
        // i64 bounds as f64; chrono's own range is narrower and checked on output.
        (millis.is_finite() && millis.abs() < 9.0e18).then_some(Timestamp(millis as i64))
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.to_rfc3339() {
            Some(s) => f.write_str(&s),
            None => write!(f, "{}ms", self.0),
        }
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self.to_rfc3339() {
            Some(s) => serializer.serialize_str(&s),
            None => Err(serde::ser::Error::custom(format!(
                "timestamp {} ms is outside the representable range",
                self.0
            ))),
        }
    }
}

impl<'de> serde::Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct TimestampVisitor;
        impl Visitor<'_> for TimestampVisitor {
            type Value = Timestamp;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an RFC 3339 timestamp or a number of epoch seconds")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Timestamp, E> {
                Timestamp::parse_rfc3339(v)
                    .ok_or_else(|| E::custom(format!("'{v}' is not an RFC 3339 timestamp")))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Timestamp, E> {
                v.checked_mul(1000)
                    .map(Timestamp)
                    .ok_or_else(|| E::custom("timestamp out of range"))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Timestamp, E> {
                i64::try_from(v)
                    .map_err(|_| E::custom("timestamp out of range"))
                    .and_then(|v| self.visit_i64(v))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Timestamp, E> {
                Timestamp::from_epoch_seconds(v).ok_or_else(|| E::custom("timestamp out of range"))
            }
        }
        deserializer.deserialize_any(TimestampVisitor)
    }
}
