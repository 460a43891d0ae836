//! ECS's JSON protocol carries timestamps as epoch seconds with fractions
//! (botocore's `unixtimestamp`), where orca's gRPC JSON carries RFC 3339
//! strings. One model, two renderings: the output documents are rendered
//! once, and the members ECS's model types as timestamps are rewritten here
//! for the JSON 1.1 endpoint, in one pass over the document's text (no
//! parse into a tree and back: a DescribeTasks answer is tens of KiB).

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

/// `document` (valid JSON) with every timestamp member whose value is an
/// RFC 3339 string written as epoch seconds; everything else byte for byte.
///
/// A string followed by `:` is an object key (a value string is followed
/// by `,`, `}` or `]`), and strings are skipped escape-aware, so text
/// inside a string never matches.
pub fn to_epoch_seconds(document: &str) -> String {
    let bytes = document.as_bytes();
    let mut out = String::with_capacity(document.len());
    let mut copied = 0;
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'"' {
            i += 1;
            continue;
        }
        let key_end = string_end(bytes, i);
        let mut j = skip_space(bytes, key_end + 1);
        if bytes.get(j) != Some(&b':') {
            i = key_end + 1;
            continue;
        }
        j = skip_space(bytes, j + 1);
        let key = &document[i + 1..key_end];
        if bytes.get(j) == Some(&b'"') && TIMESTAMP_MEMBERS.contains(&key) {
            let value_end = string_end(bytes, j);
            if let Some(seconds) = epoch_seconds(&document[j + 1..value_end]) {
                out.push_str(&document[copied..j]);
                out.push_str(&seconds);
                copied = value_end + 1;
            }
            i = value_end + 1;
        } else {
            i = j;
        }
    }
    out.push_str(&document[copied..]);
    out
}

/// The index of the quote closing the string that opens at `start`.
fn string_end(bytes: &[u8], start: usize) -> usize {
    let mut i = start + 1;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b'"' => return i,
            _ => i += 1,
        }
    }
    bytes.len()
}

fn skip_space(bytes: &[u8], mut i: usize) -> usize {
    while bytes.get(i).is_some_and(u8::is_ascii_whitespace) {
        i += 1;
    }
    i
}

fn epoch_seconds(rfc3339: &str) -> Option<String> {
    let t = chrono::DateTime::parse_from_rfc3339(rfc3339).ok()?;
    let millis = t.timestamp_millis();
    // Milliseconds are what ECS records; a float of seconds keeps them.
    serde_json::Number::from_f64(millis as f64 / 1000.0).map(|n| n.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn rewritten(v: &Value) -> Value {
        serde_json::from_str(&to_epoch_seconds(&v.to_string())).expect("still JSON")
    }

    #[test]
    fn timestamp_members_become_epoch_seconds_everywhere_else_untouched() {
        let v = json!({
            "tasks": [{"createdAt": "2026-11-28T16:37:21.458+00:00", "group": "2026-11-28T16:37:21Z",
                       "containers": [{"name": "a"}]}],
            "service": {"events": [{"createdAt": "2026-11-28T16:37:21Z", "message": "m"}],
                        "deployments": [{"updatedAt": "not a time"}]},
            "stoppedAt": null,
            "startedAt": 12
        });
        let mut expected = v.clone();
        expected["tasks"][0]["createdAt"] = json!(1795883841.458);
        expected["service"]["events"][0]["createdAt"] = json!(1795883841.0);
        assert_eq!(rewritten(&v), expected);
    }

    #[test]
    fn text_inside_strings_is_never_taken_for_a_member() {
        let v = json!({
            "message": "\"createdAt\":\"2026-11-28T16:37:21Z\"",
            "detail": "ends with a backslash \\",
            "createdAt": "2026-11-28T16:37:21Z",
            "name": "createdAt",
            "value": ["createdAt", "2026-11-28T16:37:21Z"]
        });
        let mut expected = v.clone();
        expected["createdAt"] = json!(1795883841.0);
        assert_eq!(rewritten(&v), expected);
    }

    #[test]
    fn pretty_printed_documents_are_rewritten_too() {
        let v = json!({"cluster": {"registeredAt": "2026-11-28T16:37:21.5+00:00", "tags": []}});
        let pretty = serde_json::to_string_pretty(&v).expect("pretty");
        let out: Value = serde_json::from_str(&to_epoch_seconds(&pretty)).expect("JSON");
        assert_eq!(
            out,
            json!({"cluster": {"registeredAt": 1795883841.5, "tags": []}})
        );
    }
}
