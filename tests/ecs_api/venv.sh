#!/usr/bin/env bash
# The real AWS clients the ECS JSON endpoint is tested with: boto3 and the
# aws CLI (v1, from the Python package index), in a virtual environment of
# the test suite's own. Prints the environment's directory.
set -euo pipefail
venv=${ORCA_ECS_VENV:-/var/tmp/orca-ecs-venv}
if ! "$venv/bin/python" -c 'import boto3, awscli' >/dev/null 2>&1; then
  if ! python3 -m venv --help >/dev/null 2>&1; then
    apt-get update -qq && apt-get install -y -qq python3-venv >/dev/null
  fi
  rm -rf "$venv"
  python3 -m venv "$venv" >&2
  "$venv/bin/pip" install --quiet --disable-pip-version-check 'boto3>=1.34,<2' 'awscli>=1.32,<2' >&2
fi
echo "$venv"
