//! Property tests: parse_register_input never panics, every error has a
//! path-prefixed, non-empty message, and whatever it accepts registers and
//! reads back from its describe JSON unchanged.

use proptest::prelude::*;
use proptest::sample::Index;
use serde_json::{json, Map, Value};

use super::kitchen_sink;
use crate::task_definition::{parse_register_input, TaskDefinition, Timestamp};

/// Runs the parser and checks the properties on its result.
fn check(input: &str) -> Result<(), TestCaseError> {
    match parse_register_input(input) {
        Err(e) => {
            prop_assert!(!e.message.is_empty());
            if let Some(field) = &e.field {
                prop_assert!(e.message.starts_with(field.as_str()), "{}", e.message);
            }
        }
        Ok(parsed) => {
            let td = TaskDefinition::new(parsed.spec, "arn".into(), 1, Timestamp(0), "me".into());
            let text =
                serde_json::to_string(&td).map_err(|e| TestCaseError::fail(e.to_string()))?;
            let back: TaskDefinition =
                serde_json::from_str(&text).map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(back, td);
        }
    }
    Ok(())
}

/// Every key the kitchen sink uses, so random objects hit real fields.
fn field_names() -> Vec<String> {
    fn walk(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::Object(m) => {
                for (k, v) in m {
                    out.push(k.clone());
                    walk(v, out);
                }
            }
            Value::Array(a) => a.iter().for_each(|v| walk(v, out)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(&kitchen_sink(), &mut out);
    out.sort();
    out.dedup();
    out
}

fn key() -> impl Strategy<Value = String> {
    prop_oneof![4 => proptest::sample::select(field_names()), 1 => "[a-zA-Z]{0,8}"]
}

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        (-100_000i64..100_000).prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        "\\PC{0,12}".prop_map(Value::String),
        proptest::sample::select(vec![
            "CMD",
            "CMD-SHELL",
            "NONE",
            "tcp",
            "awsvpc",
            "bridge",
            "FARGATE",
            "HEALTHY",
            "1 vCPU",
            "2 GB",
            "app",
            "web",
            "arn:aws:iam::123456789012:role/x",
            "memberOf",
            "s3",
            "GPU",
        ])
        .prop_map(Value::from),
    ]
}

fn json_value() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((key(), inner), 0..6)
                .prop_map(|kv| Value::Object(kv.into_iter().collect::<Map<String, Value>>())),
        ]
    })
}

/// A task definition whose containers are random objects over real field names.
fn random_definition() -> impl Strategy<Value = Value> {
    let container = prop::collection::vec((key(), json_value()), 0..8).prop_map(|kv| {
        let mut m: Map<String, Value> = kv.into_iter().collect();
        m.entry("name").or_insert_with(|| json!("app"));
        m.entry("image").or_insert_with(|| json!("nginx"));
        Value::Object(m)
    });
    (
        prop::collection::vec(container, 0..4),
        prop::collection::vec((key(), json_value()), 0..4),
    )
        .prop_map(|(containers, extra)| {
            let mut m: Map<String, Value> = extra.into_iter().collect();
            m.insert("family".into(), json!("f"));
            m.insert("containerDefinitions".into(), Value::Array(containers));
            Value::Object(m)
        })
}

/// JSON pointers to every node of `v`.
fn pointers(v: &Value, here: String, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for (k, child) in m {
                let p = format!("{here}/{}", k.replace('~', "~0").replace('/', "~1"));
                out.push(p.clone());
                pointers(child, p, out);
            }
        }
        Value::Array(a) => {
            for (i, child) in a.iter().enumerate() {
                let p = format!("{here}/{i}");
                out.push(p.clone());
                pointers(child, p, out);
            }
        }
        _ => {}
    }
}

#[derive(Debug, Clone)]
enum Mutation {
    Delete,
    Replace(Value),
    Duplicate,
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        Just(Mutation::Delete),
        Just(Mutation::Duplicate),
        leaf().prop_map(Mutation::Replace),
        proptest::sample::select(vec![
            json!(0),
            json!(-1),
            json!(65536),
            json!(4_294_967_296u64),
            json!(""),
            json!([]),
            json!({}),
            json!("x"),
            json!(1.5),
            json!([[]]),
        ])
        .prop_map(Mutation::Replace),
    ]
}

fn apply(mut v: Value, at: &str, m: &Mutation) -> Value {
    let Some((parent_ptr, last)) = at.rsplit_once('/') else {
        return v;
    };
    let Some(parent) = v.pointer_mut(parent_ptr) else {
        return v;
    };
    match (parent, m) {
        (Value::Object(map), Mutation::Delete) => {
            map.shift_remove(&last.replace("~1", "/").replace("~0", "~"));
        }
        (Value::Array(a), Mutation::Delete) => {
            if let Ok(i) = last.parse::<usize>() {
                if i < a.len() {
                    a.remove(i);
                }
            }
        }
        (Value::Array(a), Mutation::Duplicate) => {
            if let Some(item) = last.parse::<usize>().ok().and_then(|i| a.get(i)).cloned() {
                a.push(item);
            }
        }
        (_, Mutation::Replace(new)) => {
            if let Some(node) = v.pointer_mut(at) {
                *node = new.clone();
            }
        }
        _ => {}
    }
    v
}

fn valid_bases() -> Vec<Value> {
    vec![
        kitchen_sink(),
        json!({
            "family": "nginx", "networkMode": "awsvpc", "requiresCompatibilities": ["FARGATE"],
            "cpu": "256", "memory": "512",
            "containerDefinitions": [{
                "name": "nginx", "image": "nginx", "essential": true,
                "portMappings": [{"containerPort": 80, "hostPort": 80, "protocol": "tcp"}],
                "healthCheck": {"command": ["CMD-SHELL", "true"], "interval": 10},
                "dependsOn": [{"containerName": "side", "condition": "START"}]
            }, {"name": "side", "image": "busybox", "essential": false}],
            "tags": [{"key": "a", "value": "b"}]
        }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 384, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_text_never_panics(s in any::<String>()) {
        check(&s)?;
    }

    #[test]
    fn arbitrary_json_never_panics(v in json_value()) {
        check(&v.to_string())?;
    }

    #[test]
    fn random_definitions_never_panic(v in random_definition()) {
        check(&v.to_string())?;
    }

    #[test]
    fn mutated_valid_definitions_never_panic(
        base in proptest::sample::select(valid_bases()),
        edits in prop::collection::vec((any::<Index>(), mutation()), 1..4),
    ) {
        let mut v = base;
        for (index, m) in &edits {
            let mut all = Vec::new();
            pointers(&v, String::new(), &mut all);
            if all.is_empty() {
                break;
            }
            let at = index.get(&all).clone();
            v = apply(v, &at, m);
        }
        check(&v.to_string())?;
    }
}

#[test]
fn the_mutation_bases_are_valid() {
    for base in valid_bases() {
        parse_register_input(&base.to_string()).expect("valid base");
    }
}
