#!/usr/bin/env bash
# Starts containerd for orca's agent and its end-to-end tests when none is
# answering on the default socket. Idempotent: a containerd that already
# answers `ctr version` is left alone. The machines orca is tested on have no
# init system that starts services, so this script starts the daemon itself,
# in the background, and writes its PID to /run/orca-containerd.pid (stop it
# with `kill "$(cat /run/orca-containerd.pid)"`).
set -euo pipefail

socket=/run/containerd/containerd.sock
pid_file=/run/orca-containerd.pid
log_file=${ORCA_CONTAINERD_LOG:-/var/log/orca-containerd.log}
timeout_s=${ORCA_CONTAINERD_TIMEOUT:-30}

answers() {
  timeout 5 ctr --address "$socket" version >/dev/null 2>&1
}

if answers; then
  echo "containerd already answers on $socket"
  exit 0
fi

if ! command -v containerd >/dev/null 2>&1; then
  echo "error: containerd is not installed (run deploy/install-deps.sh)" >&2
  exit 1
fi

sudo_cmd=""
[ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"

# A log directory that is not writable (a developer without /var/log access)
# falls back to /tmp rather than failing the start.
if ! $sudo_cmd touch "$log_file" 2>/dev/null; then
  log_file=/tmp/orca-containerd.log
fi

echo "starting containerd (log: $log_file)"
# setsid: the daemon outlives this script and the shell that ran it.
$sudo_cmd setsid containerd >>"$log_file" 2>&1 </dev/null &
pid=$!
echo "$pid" | $sudo_cmd tee "$pid_file" >/dev/null

for _ in $(seq 1 $((timeout_s * 10))); do
  if answers; then
    echo "containerd is up (pid $pid)"
    exit 0
  fi
  if ! kill -0 "$pid" 2>/dev/null; then
    echo "error: containerd exited during startup; last lines of $log_file:" >&2
    tail -n 20 "$log_file" >&2 || true
    exit 1
  fi
  sleep 0.1
done

echo "error: containerd did not answer on $socket within ${timeout_s}s; last lines of $log_file:" >&2
tail -n 20 "$log_file" >&2 || true
exit 1
