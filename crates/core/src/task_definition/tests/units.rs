//! cpu/memory units, timestamps and the shared tag rules.

use serde_json::json;

use crate::error::Exception;
use crate::task_definition::{
    parse_cpu, parse_memory, parse_register_input, validate_tags, Tag, Timestamp,
};

#[test]
fn cpu_units_table() {
    let good = [
        ("1 vCPU", "1024"),
        ("0.25 vcpu", "256"),
        ("0.125 vCPU", "128"),
        ("2vCPU", "2048"),
        ("0.5 VCPU", "512"),
        ("4 vCPU", "4096"),
        (" 512 ", "512"),
        ("1024", "1024"),
        ("192 vCPU", "196608"),
    ];
    for (input, want) in good {
        assert_eq!(
            parse_cpu(input).map(|u| u.to_string()).as_deref(),
            Ok(want),
            "{input}"
        );
    }
    for bad in [
        "",
        "vcpu",
        "1.5",
        "0.1 vcpu",
        "-1",
        "1e3",
        "abc",
        "64",
        "193 vCPU",
        "1 cpu",
        "1..0 vCPU",
        "99999999999999999999",
    ] {
        assert!(parse_cpu(bad).is_err(), "{bad} accepted");
    }
}

#[test]
fn memory_units_table() {
    let good = [
        ("1GB", "1024"),
        ("2 GB", "2048"),
        ("0.5GB", "512"),
        ("0.5 gb", "512"),
        ("2048", "2048"),
        ("6", "6"),
    ];
    for (input, want) in good {
        assert_eq!(
            parse_memory(input).map(|m| m.to_string()).as_deref(),
            Ok(want),
            "{input}"
        );
    }
    for bad in [
        "",
        "GB",
        "1.5",
        "5",
        "1 GiB",
        "1TB",
        "-1GB",
        "0.001GB",
        "9999999999GB",
    ] {
        assert!(parse_memory(bad).is_err(), "{bad} accepted");
    }
}

#[test]
fn task_cpu_and_memory_accept_strings_and_numbers() {
    let cases = [
        (json!("1 vCPU"), json!("1GB"), "1024", "1024"),
        (json!(512), json!(2048), "512", "2048"),
        (json!("0.25 vcpu"), json!("0.5 GB"), "256", "512"),
    ];
    for (cpu, memory, want_cpu, want_memory) in cases {
        let input = json!({
            "family": "f", "cpu": cpu, "memory": memory,
            "containerDefinitions": [{"name": "a", "image": "i"}]
        });
        let parsed = parse_register_input(&input.to_string()).expect("valid");
        assert_eq!(parsed.spec.cpu.as_deref(), Some(want_cpu));
        assert_eq!(parsed.spec.memory.as_deref(), Some(want_memory));
    }
    for (field, bad) in [
        ("cpu", json!(0.5)),
        ("cpu", json!("lots")),
        ("memory", json!(-5)),
        ("memory", json!("1 TB")),
    ] {
        let mut input = json!({"family": "f", "containerDefinitions": [{"name": "a", "image": "i", "memory": 64}]});
        input[field] = bad.clone();
        let err = parse_register_input(&input.to_string()).expect_err("invalid");
        assert_eq!(
            (err.exception, err.field.as_deref()),
            (Exception::ClientException, Some(field)),
            "{bad}"
        );
    }
}

#[test]
fn timestamps_print_like_the_aws_cli_and_read_back() {
    let t = Timestamp(1_795_324_726_123);
    let text = serde_json::to_string(&t).expect("serialises");
    assert_eq!(text, r#""2026-11-22T05:18:46.123000+00:00""#);
    assert_eq!(serde_json::from_str::<Timestamp>(&text).expect("reads"), t);
    assert_eq!(
        serde_json::from_str::<Timestamp>(r#""2026-11-22T06:18:46.123+01:00""#).expect("offset"),
        t
    );
    assert_eq!(
        serde_json::from_str::<Timestamp>(r#""2026-11-22T05:18:46.123Z""#).expect("Z"),
        t
    );
    assert_eq!(
        serde_json::from_str::<Timestamp>("1795324726.123").expect("epoch seconds"),
        t
    );
    assert_eq!(
        serde_json::from_str::<Timestamp>("1795324726").expect("whole seconds"),
        Timestamp(1_795_324_726_000)
    );
    assert_eq!(Timestamp(0).to_string(), "1970-01-01T00:00:00.000000+00:00");
    assert!(serde_json::from_str::<Timestamp>(r#""yesterday""#).is_err());
    assert!(serde_json::from_str::<Timestamp>("1e300").is_err());
    assert!(
        serde_json::to_string(&Timestamp(i64::MAX)).is_err(),
        "out of chrono's range"
    );
}

#[test]
fn tag_rules_for_any_resource() {
    let tag = |k: &str, v: &str| Tag {
        key: k.into(),
        value: v.into(),
    };
    assert!(validate_tags(&[], "tags").is_ok());
    assert!(validate_tags(
        &[
            tag("env", ""),
            tag("Name", "web server @ prod/1:a=b+c-d_e.f")
        ],
        "tags"
    )
    .is_ok());
    assert!(
        validate_tags(&[tag("awsome", "x")], "tags").is_ok(),
        "only the aws: prefix is reserved"
    );
    let fifty: Vec<Tag> = (0..50).map(|i| tag(&format!("k{i}"), "v")).collect();
    assert!(validate_tags(&fifty, "tags").is_ok());
    let cases = [
        (vec![tag("aws:x", "v")], "tags[0].key"),
        (vec![tag("a", "v"), tag("Aws:y", "v")], "tags[1].key"),
        (vec![tag(&"k".repeat(129), "v")], "tags[0].key"),
        (vec![tag("k", &"v".repeat(257))], "tags[0].value"),
        (vec![tag("k", "semi;colon")], "tags[0].value"),
    ];
    for (tags, path) in cases {
        let err = validate_tags(&tags, "tags").expect_err("invalid");
        assert_eq!(
            (err.exception, err.field.as_deref()),
            (Exception::InvalidParameterException, Some(path))
        );
    }
    let fifty_one: Vec<Tag> = (0..51).map(|i| tag(&format!("k{i}"), "v")).collect();
    let err = validate_tags(&fifty_one, "cluster.tags").expect_err("too many");
    assert_eq!(err.field.as_deref(), Some("cluster.tags"));
}
