"""boto3's secretsmanager and ssm clients against orca's JSON endpoint.

Run by tests/it/ecs_json_api.rs with ORCA_ECS_ENDPOINT; the controller has
a secrets key. Every check raises on failure; the script prints one line
per passed check and exits 0 only if all passed.
"""

import os

import boto3
from botocore.exceptions import ClientError

ENDPOINT = os.environ["ORCA_ECS_ENDPOINT"]
ARGS = dict(
    endpoint_url=ENDPOINT,
    region_name="us-east-1",
    aws_access_key_id="AKIDORCATEST",
    aws_secret_access_key="secret",
)
sm = boto3.client("secretsmanager", **ARGS)
ssm = boto3.client("ssm", **ARGS)


def ok(what):
    print(f"ok {what}", flush=True)


def expect_error(code, call, **kwargs):
    try:
        call(**kwargs)
    except ClientError as e:
        got = e.response["Error"]["Code"]
        assert got == code, f"expected {code}, got {got}: {e}"
        return e
    raise AssertionError(f"expected {code}, the call succeeded")


created = sm.create_secret(Name="prod/db", SecretString='{"password":"one"}')
assert created["ARN"].startswith("arn:orca:secretsmanager:"), created
assert len(created["VersionId"]) >= 32, created  # boto3's idempotency token
ok("create_secret")
assert sm.get_secret_value(SecretId="prod/db")["SecretString"] == '{"password":"one"}'
assert sm.get_secret_value(SecretId=created["ARN"])["Name"] == "prod/db"
ok("get_secret_value by name and ARN")
sm.put_secret_value(SecretId="prod/db", SecretString="two")
assert sm.get_secret_value(SecretId="prod/db")["SecretString"] == "two"
previous = sm.get_secret_value(SecretId="prod/db", VersionStage="AWSPREVIOUS")
assert previous["SecretString"] == '{"password":"one"}', previous
ok("put_secret_value moves AWSCURRENT and AWSPREVIOUS")
described = sm.describe_secret(SecretId="prod/db")
assert "SecretString" not in described
stages = sorted(s for v in described["VersionIdsToStages"].values() for s in v)
assert stages == ["AWSCURRENT", "AWSPREVIOUS"], described
assert described["CreatedDate"].year >= 2026, described
ok("describe_secret")
listed = sm.list_secrets()["SecretList"]
assert [s["Name"] for s in listed] == ["prod/db"], listed
ok("list_secrets")
expect_error("ResourceExistsException", sm.create_secret, Name="prod/db", SecretString="x")
expect_error("ResourceNotFoundException", sm.get_secret_value, SecretId="nope")
ok("errors")
deleted = sm.delete_secret(SecretId="prod/db", RecoveryWindowInDays=7)
assert "DeletionDate" in deleted
expect_error("InvalidRequestException", sm.get_secret_value, SecretId="prod/db")
sm.restore_secret(SecretId="prod/db")
assert sm.get_secret_value(SecretId="prod/db")["SecretString"] == "two"
sm.delete_secret(SecretId="prod/db", ForceDeleteWithoutRecovery=True)
expect_error("ResourceNotFoundException", sm.describe_secret, SecretId="prod/db")
ok("delete_secret, restore_secret")

assert ssm.put_parameter(Name="/app/key", Value="k1", Type="SecureString")["Version"] == 1
expect_error("ParameterAlreadyExists", ssm.put_parameter, Name="/app/key", Value="k2", Type="SecureString")
assert ssm.put_parameter(Name="/app/key", Value="k2", Type="SecureString", Overwrite=True)["Version"] == 2
ok("put_parameter")
got = ssm.get_parameters(Names=["/app/key", "/missing"], WithDecryption=True)
assert got["Parameters"][0]["Value"] == "k2", got
assert got["InvalidParameters"] == ["/missing"], got
hidden = ssm.get_parameter(Name="/app/key")["Parameter"]
assert hidden["Value"] != "k2" and hidden["Type"] == "SecureString", hidden
ok("get_parameters, get_parameter")
ssm.delete_parameter(Name="/app/key")
expect_error("ParameterNotFound", ssm.get_parameter, Name="/app/key")
ok("delete_parameter")
print("all secrets checks passed")
