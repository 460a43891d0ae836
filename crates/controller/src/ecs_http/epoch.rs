//! ECS's JSON protocol carries timestamps as epoch seconds with fractions
//! (botocore's `unixtimestamp`), where orca's gRPC JSON carries RFC 3339
//! strings. One model, two renderings: the output documents are rendered
//! once, and the members ECS's model types as timestamps are rewritten here
//! for the JSON 1.1 endpoint.

use serde_json::Value;

/// The members of ECS's output shapes whose type is `Timestamp`.
const TIMESTAMP_MEMBERS: &[&str] = &[
    "createdAt",
    "updatedAt",
    "startedAt",
    "stoppedAt",
    "stoppingAt",
    "executionStoppedAt",
    "pullStartedAt",
    "pullStoppedAt",
    "connectivityAt",
    "registeredAt",
    "deregisteredAt",
    "lastStartedAt",
    "lastUpdatedAt",
    "lastStatusChangedAt",
    "lastSeenAt",
    "expiresAt",
    "deleteRequestedAt",
];

/// Rewrites every timestamp member under `value` as epoch seconds.
pub fn to_epoch_seconds(value: &mut Value) {
    match value {
        Value::Object(map) => {
            for (key, member) in map.iter_mut() {
                if TIMESTAMP_MEMBERS.contains(&key.as_str()) {
                    if let Some(seconds) = member.as_str().and_then(epoch_seconds) {
                        *member = seconds;
                        continue;
                    }
                }
                to_epoch_seconds(member);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(to_epoch_seconds),
        _ => {}
    }
}

fn epoch_seconds(rfc3339: &str) -> Option<Value> {
    let t = chrono::DateTime::parse_from_rfc3339(rfc3339).ok()?;
    let millis = t.timestamp_millis();
    // Milliseconds are what ECS records; a float of seconds keeps them.
    serde_json::Number::from_f64(millis as f64 / 1000.0).map(Value::Number)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn timestamp_members_become_epoch_seconds_everywhere_else_untouched() {
        let mut v = json!({
            "tasks": [{"createdAt": "2026-11-28T16:37:21.458+00:00", "group": "2026-11-28T16:37:21Z",
                       "containers": [{"name": "a"}]}],
            "service": {"events": [{"createdAt": "2026-11-28T16:37:21Z", "message": "m"}],
                        "deployments": [{"updatedAt": "not a time"}]}
        });
        to_epoch_seconds(&mut v);
        assert_eq!(v["tasks"][0]["createdAt"], json!(1795883841.458));
        assert_eq!(v["tasks"][0]["group"], "2026-11-28T16:37:21Z");
        assert_eq!(v["service"]["events"][0]["createdAt"], json!(1795883841.0));
        assert_eq!(v["service"]["deployments"][0]["updatedAt"], "not a time");
    }
}
