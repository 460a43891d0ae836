//! Secrets and parameters as `apply` keeps them: only ciphertext, the
//! stage rules of Secrets Manager, deletion with a recovery window, the
//! overwrite rule of Parameter Store, one key per cluster; and a task's
//! `valueFrom` resolved in every form ECS tutorials write.

use orca_core::task_definition::Timestamp;
use orca_core::Exception;

use super::secrets::{SecretsCommand, CURRENT, PREVIOUS};
use super::task_tests::{applied, refused};
use super::*;
use crate::secrets::key::{parameter_context, secret_context};
use crate::secrets::resolve::resolve;
use crate::secrets::SecretsKey;

const DAY: i64 = 24 * 3600 * 1000;

fn key() -> SecretsKey {
    SecretsKey::from_bytes(&[42; 32])
}

fn create(
    s: &mut ClusterState,
    key: &SecretsKey,
    name: &str,
    value: &str,
    at: i64,
) -> CommandResult {
    s.apply(
        1,
        Command::Secrets(SecretsCommand::CreateSecret {
            name: name.into(),
            arn: format!("arn:orca:secretsmanager:local:0:secret:{name}-AbCdEf"),
            description: None,
            tags: Vec::new(),
            version_id: "v1".into(),
            sealed: key.seal(value, &secret_context(name, "v1")),
            at: Timestamp(at),
        }),
    )
}

fn put_value(
    s: &mut ClusterState,
    key: &SecretsKey,
    name: &str,
    version: &str,
    value: &str,
) -> CommandResult {
    s.apply(
        1,
        Command::Secrets(SecretsCommand::PutSecretValue {
            name: name.into(),
            version_id: version.into(),
            sealed: key.seal(value, &secret_context(name, version)),
            at: Timestamp(10),
        }),
    )
}

fn put_parameter(
    s: &mut ClusterState,
    key: &SecretsKey,
    name: &str,
    value: &str,
    overwrite: bool,
) -> CommandResult {
    s.apply(
        1,
        Command::Secrets(SecretsCommand::PutParameter {
            name: name.into(),
            arn: format!(
                "arn:orca:ssm:local:0:parameter/{}",
                name.trim_start_matches('/')
            ),
            kind: secrets::ParameterType::SecureString,
            description: None,
            sealed: key.seal(value, &parameter_context(name)),
            overwrite,
            at: Timestamp(5),
        }),
    )
}

fn value(s: &ClusterState, value_from: &str, now: i64) -> Result<String, String> {
    resolve(s, Some(&key()), Timestamp(now), value_from).map(|v| v.expose().to_string())
}

#[test]
fn a_secret_keeps_its_current_and_previous_versions_and_only_ciphertext() {
    let k = key();
    let mut s = ClusterState::new(Default::default());
    applied(create(&mut s, &k, "db", "one", 0));
    assert_eq!(
        refused(create(&mut s, &k, "db", "again", 1)).exception,
        Exception::ResourceExistsException
    );
    applied(put_value(&mut s, &k, "db", "v2", "two"));
    applied(put_value(&mut s, &k, "db", "v3", "three"));
    let db = &s.secrets["db"];
    let stages: Vec<(&str, &[String])> = db
        .versions
        .iter()
        .map(|v| (v.version_id.as_str(), v.stages.as_slice()))
        .collect();
    assert_eq!(
        stages,
        [
            ("v2", &[PREVIOUS.to_string()][..]),
            ("v3", &[CURRENT.to_string()][..])
        ],
        "v1 lost its last stage and went"
    );
    assert_eq!(value(&s, "db", 0), Ok("three".into()));
    assert_eq!(
        value(
            &s,
            "arn:aws:secretsmanager:us-east-1:1:secret:db::AWSPREVIOUS:",
            0
        ),
        Ok("two".into())
    );
    // The state as replicated and snapshotted holds no value.
    let json = serde_json::to_string(&s).unwrap_or_default();
    for plain in ["one", "two", "three"] {
        assert!(
            !json.contains(&format!("\"{plain}\"")),
            "{plain} in the state"
        );
    }
    let snapshot: ClusterState = serde_json::from_str(&json).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(snapshot.secrets, s.secrets);
}

#[test]
fn a_deleted_secret_is_unreadable_until_restored_and_gone_after_its_window() {
    let k = key();
    let mut s = ClusterState::new(Default::default());
    applied(create(&mut s, &k, "db", "pw", 0));
    let delete = |days| {
        Command::Secrets(SecretsCommand::DeleteSecret {
            name: "db".into(),
            recovery_days: days,
            at: Timestamp(100),
        })
    };
    applied(s.apply(1, delete(Some(7))));
    assert!(value(&s, "db", 200).is_err_and(|e| e.contains("marked for deletion")));
    assert_eq!(
        refused(put_value(&mut s, &k, "db", "v2", "x")).exception,
        Exception::InvalidRequestException
    );
    applied(s.apply(
        1,
        Command::Secrets(SecretsCommand::RestoreSecret {
            name: "db".into(),
            at: Timestamp(300),
        }),
    ));
    assert_eq!(value(&s, "db", 300), Ok("pw".into()));
    applied(s.apply(1, delete(Some(7))));
    // Past its window the name is free again.
    assert!(s.secret_by_id("db", Timestamp(100 + 7 * DAY)).is_none());
    applied(create(&mut s, &k, "db", "new", 100 + 7 * DAY));
    applied(s.apply(1, delete(None)));
    assert!(s.secrets.is_empty(), "forced: gone at once");
}

#[test]
fn parameters_need_overwrite_and_count_versions() {
    let k = key();
    let mut s = ClusterState::new(Default::default());
    applied(put_parameter(&mut s, &k, "/prod/db", "a", false));
    assert_eq!(
        refused(put_parameter(&mut s, &k, "/prod/db", "b", false)).exception,
        Exception::ParameterAlreadyExists
    );
    applied(put_parameter(&mut s, &k, "/prod/db", "b", true));
    assert_eq!(s.parameters["/prod/db"].version, 2);
    assert_eq!(value(&s, "/prod/db", 0), Ok("b".into()));
    assert_eq!(
        value(
            &s,
            "arn:aws:ssm:us-east-1:123456789012:parameter/prod/db",
            0
        ),
        Ok("b".into())
    );
    let gone = s.apply(
        1,
        Command::Secrets(SecretsCommand::DeleteParameter {
            name: "/nope".into(),
        }),
    );
    assert_eq!(refused(gone).exception, Exception::ParameterNotFound);
}

#[test]
fn one_key_seals_every_value_of_a_cluster() {
    let mut s = ClusterState::new(Default::default());
    applied(create(&mut s, &key(), "db", "pw", 0));
    assert_eq!(s.secrets_key_id.as_deref(), Some(key().id()));
    let other = SecretsKey::from_bytes(&[1; 32]);
    let e = refused(put_parameter(&mut s, &other, "p", "x", false));
    assert!(e.message.contains("--secrets-key-file"), "{}", e.message);
    assert!(s.parameters.is_empty());
    // A controller holding another key (or none) refuses to serve.
    assert!(crate::secrets::guard::check(&s, Some(&key())).is_ok());
    let e = crate::secrets::guard::check(&s, Some(&other))
        .err()
        .map(|e| e.to_string());
    assert!(e.is_some_and(|e| e.contains("sealed with key")));
    assert!(crate::secrets::guard::check(&s, None).is_err());
}

#[test]
fn value_from_resolves_names_arns_and_json_keys_and_says_what_is_missing() {
    let k = key();
    let mut s = ClusterState::new(Default::default());
    applied(create(
        &mut s,
        &k,
        "app/db",
        r#"{"username":"u","password":"p","port":5432}"#,
        0,
    ));
    applied(put_parameter(&mut s, &k, "token", "t", false));
    let arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:app/db";
    assert_eq!(value(&s, &format!("{arn}:password::"), 0), Ok("p".into()));
    assert_eq!(value(&s, &format!("{arn}:port::"), 0), Ok("5432".into()));
    assert_eq!(
        value(&s, &format!("{arn}-AbCdEf:username::"), 0),
        Ok("u".into())
    );
    assert_eq!(value(&s, "token", 0), Ok("t".into()));
    assert_eq!(
        value(&s, "arn:aws:ssm:r:1:parameter/token", 0),
        Ok("t".into())
    );
    let missing = value(&s, &format!("{arn}:nokey::"), 0)
        .err()
        .unwrap_or_default();
    assert!(
        missing.contains("no key 'nokey'") && !missing.contains("\"p\""),
        "{missing}"
    );
    assert_eq!(
        value(&s, "nothing", 0),
        Err("no parameter or secret named 'nothing'".into())
    );
    assert!(value(&s, "arn:aws:secretsmanager:r:1:secret:gone", 0)
        .is_err_and(|e| e.contains("secret 'gone' not found")));
    let without_key = resolve(&s, None, Timestamp(0), "token")
        .err()
        .unwrap_or_default();
    assert!(without_key.contains("--secrets-key-file"), "{without_key}");
}
