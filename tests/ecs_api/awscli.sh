#!/usr/bin/env bash
# The aws CLI (`aws ecs --endpoint-url`) against orca's ECS JSON endpoint, as
# ECS tutorials and CI pipelines write it. Run by tests/it/ecs_json_api.rs
# with ORCA_ECS_ENDPOINT, ORCA_FIXTURES, ORCA_FAKE_IMAGE and AWS pointing at
# the venv's `aws`. Prints one line per passed check; exits non-zero at the
# first failure.
set -euo pipefail
export AWS_ACCESS_KEY_ID=AKIDORCATEST AWS_SECRET_ACCESS_KEY=secret AWS_DEFAULT_REGION=us-east-1
export AWS_SHARED_CREDENTIALS_FILE=/nonexistent AWS_PAGER=
# A config file that only loads the recorder plugin (orca_record.py): every
# request the CLI sends is kept, byte for byte, for the replay at the end.
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
printf '[plugins]\norca_record = orca_record\n' >"$work/config"
export AWS_CONFIG_FILE=$work/config ORCA_RECORD_FILE=$work/requests.jsonl
export PYTHONPATH=$here${PYTHONPATH:+:$PYTHONPATH}
ecs() { "$AWS" ecs --endpoint-url "$ORCA_ECS_ENDPOINT" "$@"; }
fail() { echo "FAIL: $*" >&2; exit 1; }
ok() { echo "ok $*"; }

arn=$(ecs register-task-definition --cli-input-json "file://$ORCA_FIXTURES/multi-container.json" \
  --query 'taskDefinition.taskDefinitionArn' --output text)
[[ $arn == *":task-definition/shop:1" ]] || fail "registered $arn"
ok "register-task-definition --cli-input-json file://"

ecs register-task-definition --family cli --container-definitions \
  "[{\"name\":\"app\",\"image\":\"$ORCA_FAKE_IMAGE\",\"memory\":64,\"command\":[\"sh\",\"-c\",\"sleep 3600\"]}]" >/dev/null
ecs create-cluster --cluster-name tutorial --capacity-providers FARGATE FARGATE_SPOT >/dev/null
table=$(ecs describe-clusters --clusters tutorial --output table)
grep -q "tutorial" <<<"$table" || fail "no table: $table"
grep -q "DescribeClusters" <<<"$table" || fail "no table title: $table"
ok "create-cluster and describe-clusters --output table"

task=$(ecs run-task --task-definition cli --count 1 \
  --overrides '{"containerOverrides":[{"name":"app","command":["sh","-c","sleep 1; exit 3"]}]}' \
  --query 'tasks[0].taskArn' --output text)
ecs wait tasks-stopped --tasks "$task"
code=$(ecs describe-tasks --tasks "$task" --query 'tasks[0].containers[0].exitCode' --output text)
[[ $code == 3 ]] || fail "exit code $code"
ok "run-task --overrides, wait tasks-stopped, describe-tasks --query"

ecs create-service --service-name web-api --task-definition cli:1 --desired-count 2 --launch-type FARGATE \
  --network-configuration "awsvpcConfiguration={subnets=[subnet-0a1b2c,subnet-0d4e5f],securityGroups=[sg-api-tasks],assignPublicIp=DISABLED}" \
  --health-check-grace-period-seconds 30 >/dev/null
ecs wait services-stable --services web-api
ecs register-task-definition --family cli --container-definitions \
  "[{\"name\":\"app\",\"image\":\"$ORCA_FAKE_IMAGE\",\"memory\":32,\"command\":[\"sh\",\"-c\",\"sleep 3600\"]}]" >/dev/null
ecs update-service --service web-api --task-definition cli:2 \
  --deployment-configuration "minimumHealthyPercent=50,maximumPercent=200" >/dev/null
ecs wait services-stable --services web-api
state=$(ecs describe-services --services web-api --query 'services[0].deployments[0].rolloutState' --output text)
[[ $state == COMPLETED ]] || fail "rolloutState $state"
running=$(ecs describe-services --services web-api --query 'services[0].runningCount' --output text)
[[ $running == 2 ]] || fail "runningCount $running"
ok "create-service and update-service as the ECS tutorial writes them, wait services-stable"

listed=$(ecs list-services --output text | wc -l)
[[ $listed -ge 1 ]] || fail "list-services"
ecs list-tasks --service-name web-api --output table | grep -q ListTasks || fail "list-tasks table"
ecs list-container-instances --query 'containerInstanceArns' --output text | grep -q container-instance || fail "instances"
ok "list-services, list-tasks --service-name --output table, list-container-instances"

set +e
err=$(ecs describe-services --cluster nope --services web-api 2>&1 >/dev/null)
rc=$?
set -e
[[ $rc == 255 ]] || fail "exit code $rc for an unknown cluster"
[[ $err == *"An error occurred (ClusterNotFoundException) when calling the DescribeServices operation"* ]] || fail "$err"
ok "an unknown cluster: exit 255 and the error as the aws CLI prints it for AWS"
recorded=$(wc -l <"$ORCA_RECORD_FILE")
[[ $recorded -ge 15 ]] || fail "only $recorded requests recorded"
python "$here/replay.py" "$ORCA_RECORD_FILE" 10 || fail "replaying the recorded requests"
ok "byte level: the CLI's $recorded requests recorded; its reads replayed as raw HTTP and parsed by botocore"
echo "all aws CLI checks passed"
