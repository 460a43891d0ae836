"""boto3 against orca's ECS JSON endpoint, as ECS users' scripts drive ECS.

Run by tests/it/ecs_json_api.rs with ORCA_ECS_ENDPOINT (http://host:port)
and ORCA_FIXTURES (tests/fixtures/task-definitions). A controller with one
agent on the fake runtime answers. Every check raises on failure; the
script prints one line per passed check and exits 0 only if all passed.
"""

import json
import os
import sys
import time

import boto3
import botocore
from botocore.exceptions import ClientError, WaiterError

ENDPOINT = os.environ["ORCA_ECS_ENDPOINT"]
FIXTURES = os.environ["ORCA_FIXTURES"]
IMAGE = os.environ["ORCA_FAKE_IMAGE"]

ecs = boto3.client(
    "ecs",
    endpoint_url=ENDPOINT,
    region_name="us-east-1",
    aws_access_key_id="AKIDORCATEST",
    aws_secret_access_key="secret",
)
FAST = {"Delay": 1, "MaxAttempts": 30}


def ok(what):
    print(f"ok {what}", flush=True)


def expect_error(code, call, *args, **kwargs):
    try:
        call(*args, **kwargs)
    except ClientError as e:
        got = e.response["Error"]["Code"]
        assert got == code, f"expected {code}, got {got}: {e}"
        assert e.response["ResponseMetadata"]["HTTPStatusCode"] == (
            500 if code == "ServerException" else 400
        ), e.response
        assert e.response["ResponseMetadata"]["RequestId"], e.response
        return e.response["Error"]["Message"]
    raise AssertionError(f"expected {code}, the call succeeded")


# Every request boto3 signs and sends is recorded, byte for byte, for the
# replay at the end.
RECORDED = []


def record(request, **_):
    RECORDED.append((request.headers.get("X-Amz-Target").decode(), dict(request.headers), request.body))


ecs.meta.events.register("before-send.ecs", record)

# Task definitions: a file as `--cli-input-json` holds it, revisions, lists.
with open(os.path.join(FIXTURES, "multi-container.json")) as f:
    shop = json.load(f)
registered = ecs.register_task_definition(**shop)
td = registered["taskDefinition"]
assert td["family"] == "shop" and td["revision"] == 1, td
assert isinstance(td["registeredAt"], __import__("datetime").datetime), td["registeredAt"]
ok("register_task_definition from a file, registeredAt parsed as a timestamp")
app = {
    "family": "app",
    "containerDefinitions": [
        {"name": "app", "image": IMAGE, "memory": 64, "command": ["sh", "-c", "sleep 3600"]}
    ],
    "tags": [{"key": "team", "value": "platform"}],
}
for _ in range(3):
    ecs.register_task_definition(**app)
described = ecs.describe_task_definition(taskDefinition="app", include=["TAGS"])
assert described["taskDefinition"]["revision"] == 3, described
assert described["tags"] == [{"key": "team", "value": "platform"}], described
pages = list(
    ecs.get_paginator("list_task_definitions").paginate(
        familyPrefix="app", PaginationConfig={"PageSize": 1}
    )
)
arns = [a for p in pages for a in p["taskDefinitionArns"]]
assert len(pages) == 3 and [a.rsplit(":", 1)[1] for a in arns] == ["1", "2", "3"], pages
families = ecs.list_task_definition_families()["families"]
assert families == ["app", "shop"], families
ecs.deregister_task_definition(taskDefinition="app:1")
deleted = ecs.delete_task_definitions(taskDefinitions=["app:1", "app:99"])
assert deleted["taskDefinitions"][0]["status"] == "DELETE_IN_PROGRESS", deleted
assert deleted["failures"][0]["reason"], deleted
ok("describe, paginate, families, deregister and delete task definitions")

# Bad input: the field's path and the rule, as ECS's exceptions.
bad = json.loads(json.dumps(app))
bad["containerDefinitions"][0]["healthCheck"] = {"command": ["CMD", "true"], "interval": 1}
message = expect_error("InvalidParameterException", ecs.register_task_definition, **bad)
assert "containerDefinitions[0].healthCheck.interval" in message, message
ok("a bad definition names the field's path")

# Clusters.
created = ecs.create_cluster(
    clusterName="prod",
    tags=[{"key": "env", "value": "prod"}],
    settings=[{"name": "containerInsights", "value": "enabled"}],
    capacityProviders=["FARGATE", "FARGATE_SPOT"],
    defaultCapacityProviderStrategy=[{"capacityProvider": "FARGATE", "weight": 1}],
)
assert created["cluster"]["clusterName"] == "prod", created
assert created["cluster"]["capacityProviders"] == ["FARGATE", "FARGATE_SPOT"], created
clusters = ecs.describe_clusters(clusters=["prod", "nope"], include=["TAGS", "SETTINGS"])
assert clusters["clusters"][0]["tags"] == [{"key": "env", "value": "prod"}], clusters
assert clusters["failures"][0]["reason"] == "MISSING", clusters
assert len(ecs.list_clusters()["clusterArns"]) == 2
ecs.update_cluster_settings(cluster="prod", settings=[{"name": "containerInsights", "value": "disabled"}])
ecs.delete_cluster(cluster="prod")
expect_error("ClusterNotFoundException", ecs.list_tasks, cluster="nope")
ok("clusters: create, describe with a MISSING failure, list, update, delete; unknown cluster refused")

# Tasks, on the agent of the default cluster.
instances = ecs.list_container_instances()["containerInstanceArns"]
assert len(instances) == 1, instances
ci = ecs.describe_container_instances(containerInstances=instances)["containerInstances"][0]
assert ci["agentConnected"] and ci["status"] == "ACTIVE", ci
ecs.put_attributes(attributes=[{"name": "stack", "value": "prod", "targetId": instances[0]}])
attrs = ecs.list_attributes(targetType="container-instance", attributeName="stack")["attributes"]
assert attrs and attrs[0]["value"] == "prod", attrs
# The cluster query language in ListContainerInstances' filter.
assert ecs.list_container_instances(filter="attribute:stack == prod")["containerInstanceArns"] == instances
assert ecs.list_container_instances(filter="attribute:stack in [dev, test]")["containerInstanceArns"] == []
assert ecs.list_container_instances(filter="agentConnected == true and attribute:stack exists")[
    "containerInstanceArns"] == instances
bad = expect_error("InvalidParameterException", ecs.list_container_instances, filter="attribute:stack ==")
assert "filter" in bad, bad
ok("list_container_instances with the query language's filter; a malformed one refused naming it")
ran = ecs.run_task(
    taskDefinition="app",
    count=2,
    clientToken="tok-1",
    overrides={"containerOverrides": [{"name": "app", "command": ["sh", "-c", "sleep 1; exit 3"]}]},
    placementConstraints=[{"type": "memberOf", "expression": "attribute:stack == prod"}],
)
task_arns = [t["taskArn"] for t in ran["tasks"]]
assert len(task_arns) == 2 and not ran["failures"], ran
again = ecs.run_task(
    taskDefinition="app",
    count=2,
    clientToken="tok-1",
    overrides={"containerOverrides": [{"name": "app", "command": ["sh", "-c", "sleep 1; exit 3"]}]},
    placementConstraints=[{"type": "memberOf", "expression": "attribute:stack == prod"}],
)
assert [t["taskArn"] for t in again["tasks"]] == task_arns, again
expect_error("ConflictException", ecs.run_task, taskDefinition="app", count=1, clientToken="tok-1")
ok("run_task with overrides and a constraint; a retried clientToken; reused with other parameters: ConflictException")
ecs.get_waiter("tasks_running").wait(tasks=task_arns, WaiterConfig=FAST)
ecs.get_waiter("tasks_stopped").wait(tasks=task_arns, WaiterConfig=FAST)
stopped = ecs.describe_tasks(tasks=task_arns)["tasks"]
assert all(t["containers"][0]["exitCode"] == 3 for t in stopped), stopped
assert all(t["stopCode"] == "EssentialContainerExited" for t in stopped), stopped
assert all(isinstance(t["stoppedAt"], __import__("datetime").datetime) for t in stopped)
listed = ecs.list_tasks(desiredStatus="STOPPED", family="app")["taskArns"]
assert set(task_arns) <= set(listed), listed
task_pages = list(ecs.get_paginator("list_tasks").paginate(
    desiredStatus="STOPPED", family="app", PaginationConfig={"PageSize": 1}))
assert [len(p["taskArns"]) for p in task_pages] == [1] * len(listed), task_pages
assert sorted(a for p in task_pages for a in p["taskArns"]) == sorted(listed), task_pages
long_task = ecs.run_task(taskDefinition="app")["tasks"][0]["taskArn"]
ecs.get_waiter("tasks_running").wait(tasks=[long_task], WaiterConfig=FAST)
ecs.stop_task(task=long_task, reason="done here")
ecs.get_waiter("tasks_stopped").wait(tasks=[long_task], WaiterConfig=FAST)
assert ecs.describe_tasks(tasks=[long_task])["tasks"][0]["stoppedReason"] == "done here"
ok("tasks_running and tasks_stopped waiters, describe_tasks, list_tasks, stop_task")

# Services and their waiters.
svc = ecs.create_service(
    serviceName="web",
    taskDefinition="app",
    desiredCount=2,
    launchType="FARGATE",
    networkConfiguration={
        "awsvpcConfiguration": {"subnets": ["subnet-0a1b2c"], "assignPublicIp": "DISABLED"}
    },
    deploymentConfiguration={"minimumHealthyPercent": 50, "maximumPercent": 200},
)["service"]
assert svc["serviceName"] == "web" and svc["desiredCount"] == 2, svc
assert isinstance(svc["createdAt"], __import__("datetime").datetime), svc
ecs.get_waiter("services_stable").wait(services=["web"], WaiterConfig=FAST)
ecs.update_service(service="web", taskDefinition="app:2")
ecs.get_waiter("services_stable").wait(services=["web"], WaiterConfig=FAST)
web = ecs.describe_services(services=["web"])["services"][0]
assert web["taskDefinition"].endswith("app:2") and web["runningCount"] == 2, web
assert web["deployments"][0]["rolloutState"] == "COMPLETED", web
service_tasks = ecs.list_tasks(serviceName="web")["taskArns"]
assert len(service_tasks) == 2, service_tasks
for n in range(11):
    ecs.create_service(serviceName=f"s{n:02}", taskDefinition="app", desiredCount=0)
service_pages = list(ecs.get_paginator("list_services").paginate())
assert [len(p["serviceArns"]) for p in service_pages] == [10, 2], service_pages
ok("create_service, services_stable, update_service, list_services pages of ECS's default 10")
try:
    ecs.get_waiter("services_stable").wait(services=["missing"], WaiterConfig=FAST)
    raise AssertionError("the waiter should fail on a MISSING service")
except WaiterError as e:
    assert "MISSING" in str(e), e
ok("services_stable fails on a MISSING service")
ecs.update_service(service="web", desiredCount=0)
ecs.delete_service(service="web")
ecs.get_waiter("services_inactive").wait(services=["web"], WaiterConfig=FAST)
expect_error("ServiceNotActiveException", ecs.update_service, service="web", desiredCount=1)
ok("delete_service, services_inactive, a deleted service refuses updates")

# Container instances.
ecs.update_container_instances_state(containerInstances=instances, status="DRAINING")
ci = ecs.describe_container_instances(containerInstances=instances)["containerInstances"][0]
assert ci["status"] == "DRAINING", ci
ecs.update_container_instances_state(containerInstances=instances, status="ACTIVE")
ecs.delete_attributes(attributes=[{"name": "stack", "targetId": instances[0]}])
ok("update_container_instances_state and delete_attributes")

# StartTask: on a named instance.
started = ecs.start_task(taskDefinition="app", containerInstances=instances, startedBy="cron")
assert len(started["tasks"]) == 1 and started["tasks"][0]["containerInstanceArn"] == instances[0], started
assert started["tasks"][0]["startedBy"] == "cron", started
missing = ecs.start_task(taskDefinition="app", containerInstances=["0123456789abcdef0123456789abcdef"])
assert missing["failures"][0]["reason"] == "MISSING" and not missing["tasks"], missing
ecs.stop_task(task=started["tasks"][0]["taskArn"])
ok("start_task on a named instance; an unknown one is MISSING")

# Tags on every kind of resource.
cluster_arn = ecs.describe_clusters()["clusters"][0]["clusterArn"]
td_arn = ecs.describe_task_definition(taskDefinition="app:2")["taskDefinition"]["taskDefinitionArn"]
svc_arn = ecs.describe_services(services=["s00"])["services"][0]["serviceArn"]
for arn in [cluster_arn, td_arn, svc_arn, started["tasks"][0]["taskArn"], instances[0]]:
    ecs.tag_resource(resourceArn=arn, tags=[{"key": "team", "value": "a"}, {"key": "env", "value": "x"}])
    ecs.tag_resource(resourceArn=arn, tags=[{"key": "team", "value": "b"}])
    ecs.untag_resource(resourceArn=arn, tagKeys=["env"])
    tags = ecs.list_tags_for_resource(resourceArn=arn)["tags"]
    assert {"key": "team", "value": "b"} in tags and all(t["key"] != "env" for t in tags), (arn, tags)
expect_error("InvalidParameterException", ecs.list_tags_for_resource, resourceArn="arn:aws:s3:::bucket")
expect_error("ClusterNotFoundException", ecs.tag_resource, resourceArn=cluster_arn.replace("default", "ghost"), tags=[{"key": "k", "value": "v"}])
ok("tag_resource, untag_resource, list_tags_for_resource on clusters, definitions, services, tasks, instances")

# Account settings and capacity providers, stored as ECS stores them.
put = ecs.put_account_setting_default(name="containerInsights", value="enhanced")["setting"]
assert put["value"] == "enhanced" and put["principalArn"].endswith(":root"), put
ecs.put_account_setting(name="awsvpcTrunking", value="enabled", principalArn="arn:aws:iam::000000000000:user/ops")
eff = ecs.list_account_settings(effectiveSettings=True, name="containerInsights")["settings"]
assert eff == [{"name": "containerInsights", "value": "enhanced", "principalArn": put["principalArn"], "type": "user"}], eff
ops = ecs.list_account_settings(principalArn="arn:aws:iam::000000000000:user/ops")["settings"]
assert [x["name"] for x in ops] == ["awsvpcTrunking"], ops
aws_default = ecs.list_account_settings(effectiveSettings=True, name="taskLongArnFormat")["settings"][0]
assert aws_default["value"] == "enabled" and aws_default["type"] == "aws_managed", aws_default
expect_error("InvalidParameterException", ecs.put_account_setting, name="taskLongArnFormat", value="maybe")
cap = ecs.put_cluster_capacity_providers(
    cluster="default", capacityProviders=["FARGATE"],
    defaultCapacityProviderStrategy=[{"capacityProvider": "FARGATE", "weight": 1}],
)["cluster"]
assert cap["capacityProviders"] == ["FARGATE"], cap
assert ecs.list_services_by_namespace(namespace="ns")["serviceArns"] == []
ok("account settings (default, per principal, effective, AWS's), put_cluster_capacity_providers, list_services_by_namespace")

# Deregistering the (now idle) instance, as an operator retiring a host.
gone = ecs.deregister_container_instance(containerInstance=instances[0], force=True)["containerInstance"]
assert gone["status"] == "INACTIVE", gone
assert ecs.list_container_instances()["containerInstanceArns"] == []
# As in ECS, INACTIVE is no status to list by (the model's enum has none).
expect_error("InvalidParameterException", ecs.list_container_instances, status="INACTIVE")
ok("deregister_container_instance; the instance no longer listed")

# An operation orca does not serve: a clear error naming it.
try:
    ecs._make_api_call("DiscoverPollEndpoint", {})
    raise AssertionError("DiscoverPollEndpoint should be refused")
except ClientError as e:
    assert e.response["Error"]["Code"] == "UnknownOperationException", e.response
    assert "DiscoverPollEndpoint" in e.response["Error"]["Message"], e.response
ok("an unknown operation is named in UnknownOperationException")
# Byte level: the recorded requests sent again as raw HTTP, each raw answer
# parsed by botocore's own JSON parser (replay.py).
from replay import replay

replayed = replay([(headers, body) for _, headers, body in RECORDED], ENDPOINT)
assert replayed >= 20, replayed
ok(f"{replayed} recorded read requests replayed as raw HTTP and parsed by botocore's JSON parser")
print("all boto3 checks passed")
