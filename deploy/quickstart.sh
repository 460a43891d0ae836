#!/usr/bin/env bash
# orca's main job on one machine: installs what is needed, builds, starts a
# single-node controller, registers the sample task definition and describes
# it, then stops the controller it started.
set -euo pipefail
cd "$(dirname "$0")/.."

bash deploy/install-deps.sh
cargo build --release --bins

data_dir=$(mktemp -d /tmp/orca-quickstart.XXXXXX)
port=${ORCA_PORT:-7470}
endpoint="127.0.0.1:$port"
log="$data_dir/controller.log"
./target/release/orca-controller --data-dir "$data_dir" --listen "$endpoint" >"$log" 2>&1 &
controller_pid=$!
cleanup() {
  kill "$controller_pid" 2>/dev/null || true
  wait "$controller_pid" 2>/dev/null || true
}
trap cleanup EXIT

orca() { ./target/release/orca --endpoint "$endpoint" "$@"; }
for _ in $(seq 1 100); do
  orca list-clusters >/dev/null 2>&1 && break
  kill -0 "$controller_pid" 2>/dev/null || { cat "$log"; echo "controller exited" >&2; exit 1; }
  sleep 0.1
done

echo "== clusters"
orca describe-clusters --output table
echo "== register-task-definition"
orca register-task-definition --cli-input-json file://deploy/examples/sample-task-definition.json
echo "== describe-task-definition hello"
orca describe-task-definition --task-definition hello --include TAGS --output table
echo "quickstart done: controller data in $data_dir"
