#!/usr/bin/env bash
# orca's main job on one machine, from nothing: installs what is needed,
# starts containerd, builds, starts `orca dev` (a single-node controller and
# an agent in one process), loads a small busybox image, registers a task
# definition, runs a task to completion and prints its exit code and its
# output (orca logs); stores a
# secret and a SecureString parameter and runs a task that gets one as an
# environment variable and the other as a file on a tmpfs; then
# creates a 2-replica service of a web server with a health check, waits for
# its steady state, runs a command in one of its containers
# (execute-command), SIGKILLs one of its containers through containerd (behind
# orca's back) and shows orca replace it, and deletes the service. It stops
# the `orca dev` it started; containerd keeps running (it is the machine's
# container runtime; stop it with `kill "$(cat /run/orca-containerd.pid)"`).
set -euo pipefail
cd "$(dirname "$0")/.."

bash deploy/install-deps.sh
bash deploy/start-containerd.sh
cargo build --release --bins

data_dir=$(mktemp -d /tmp/orca-quickstart.XXXXXX)
port=${ORCA_PORT:-7470}
endpoint="127.0.0.1:$port"
log="$data_dir/orca-dev.log"
./target/release/orca dev --data-dir "$data_dir" --listen "$endpoint" >"$log" 2>&1 &
dev_pid=$!
cleanup() {
  kill "$dev_pid" 2>/dev/null || true
  wait "$dev_pid" 2>/dev/null || true
}
trap cleanup EXIT

orca() { ./target/release/orca --endpoint "$endpoint" "$@"; }
echo "== waiting for orca dev (log: $log)"
for _ in $(seq 1 300); do
  grep -q "agent registered" "$log" 2>/dev/null && break
  kill -0 "$dev_pid" 2>/dev/null || { cat "$log"; echo "orca dev exited" >&2; exit 1; }
  sleep 0.1
done
grep -q "agent registered" "$log" || { cat "$log"; echo "orca dev did not come up" >&2; exit 1; }

echo "== container instances"
orca list-container-instances --output table
echo "== image load"
archive=$(./target/release/orca-busybox-image "$data_dir")
orca image load "$archive"
echo "== register-task-definition"
orca register-task-definition --cli-input-json file://deploy/examples/sample-task-definition.json --output table
echo "== run-task --wait"
set +e
orca run-task --task-definition hello --wait --output table
code=$?
set -e
task_id=$(orca list-tasks --desired-status STOPPED --output json | sed -n 's|.*task/default/\([0-9a-f]*\)".*|\1|p' | head -n 1)
echo "== the task's output (orca logs, streamed from the agent)"
orca logs --task "$task_id" --timestamps

echo "== secrets: one in Secrets Manager (as an environment variable), one in Parameter Store (as a file)"
orca create-secret --name quickstart/db --secret-string '{"username":"app","password":"quickstart-only"}' --query ARN --output text
orca put-parameter --name /quickstart/api-token --value quickstart-token --type SecureString --overwrite --query Version --output text
orca register-task-definition --cli-input-json file://deploy/examples/secret-task-definition.json --query 'taskDefinition.taskDefinitionArn' --output text
orca run-task --task-definition secret-demo --wait --output table
secret_task=$(orca list-tasks --family secret-demo --desired-status STOPPED --query 'taskArns[0]' --output text)
orca logs --task "${secret_task##*/}"

echo "== a service: 2 replicas of a web server with a health check"
orca register-task-definition --cli-input-json file://deploy/examples/web-task-definition.json --output table
orca create-service --service-name web --task-definition web --desired-count 2 --enable-execute-command --wait
orca describe-services --services web --output table
tasks=$(orca list-tasks --service-name web --query 'taskArns' --output text)
orca describe-tasks --tasks $tasks \
  --query 'tasks[].[taskArn,lastStatus,healthStatus,containers[0].networkInterfaces[0].privateIpv4Address]' \
  --output text
victim=$(echo "$tasks" | awk '{print $1}')
echo "== execute-command: a command inside one of its containers (ECS Exec)"
orca execute-command --task "$victim" --command "sh -c 'wget -qO- http://127.0.0.1:8080/; exit 3'" || echo "(the command's exit code came back: $?)"
runtime_id=$(orca describe-tasks --tasks "$victim" --query 'tasks[0].containers[0].runtimeId' --output text)
echo "== SIGKILL of container $runtime_id through containerd, behind orca's back"
ctr --address /run/containerd/containerd.sock --namespace orca tasks kill --signal SIGKILL "$runtime_id"
orca wait tasks-stopped --tasks "$victim"
orca describe-tasks --tasks "$victim" --query 'tasks[0].[stopCode,stoppedReason]' --output text
echo "== orca replaces it"
orca wait services-stable --services web
orca describe-services --services web --query 'services[0].events[:3].message' --output text
orca list-tasks --service-name web --output table
echo "== delete-service"
orca delete-service --service web --force --query 'service.status' --output text
orca wait services-inactive --services web
echo "quickstart done: the task exited with code $code, the service kept 2 healthy replicas (data in $data_dir)"
exit "$code"
