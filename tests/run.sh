#!/usr/bin/env bash
# Runs orca's whole test suite: installs what is needed, builds every binary
# the tests start, and runs unit, integration and end-to-end tests.
set -euo pipefail
cd "$(dirname "$0")/.."

bash deploy/install-deps.sh
# The runtime and end-to-end tests need a containerd to talk to.
bash deploy/start-containerd.sh
# boto3 and the aws CLI, for the ECS JSON endpoint tests.
ORCA_ECS_VENV=$(bash tests/ecs_api/venv.sh)
export ORCA_ECS_VENV
cargo build --workspace --bins
cargo test --workspace --no-fail-fast
