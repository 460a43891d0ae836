#!/usr/bin/env bash
# A three-controller orca cluster on this machine, for trying failover.
#
#   deploy/local-cluster.sh [DIR]      start: node 1 bootstraps on 127.0.0.1:7471,
#                                      nodes 2 and 3 join it on :7472 and :7473;
#                                      data, logs and pids in DIR (default: a
#                                      new mktemp directory)
#   deploy/local-cluster.sh stop DIR   stop the controllers listed in DIR/pids
#
# Start waits until `orca controller members` shows three voters, then prints
# the line to paste (or eval) on stdout; everything else goes to stderr:
#   eval "$(deploy/local-cluster.sh)"
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
controller_bin=$root/target/release/orca-controller
orca_bin=$root/target/release/orca
ports=(7471 7472 7473)
endpoints=127.0.0.1:7471,127.0.0.1:7472,127.0.0.1:7473
# Tenths of a second to wait for each phase of start-up.
wait_tenths=${ORCA_LOCAL_CLUSTER_WAIT:-600}

say() { echo "local-cluster: $*" >&2; }
die() {
  say "error: $*"
  exit 1
}

# The cluster's view from any controller, as JSON; fails while none answers.
members() {
  timeout 5 "$orca_bin" --endpoint "$endpoints" --output json controller members 2>/dev/null
}

# Whether $1 is a controller this directory started (guards against a pid
# that was reused by another process since).
is_ours() {
  local pid=$1 dir=$2
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  [ -r "/proc/$pid/cmdline" ] || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF -- "--data-dir $dir/node"
}

# Stops exactly the controllers listed in DIR/pids, then removes the list.
stop() {
  local dir=$1 pid running=()
  [ -f "$dir/pids" ] || die "no $dir/pids: nothing was started there"
  while read -r pid; do
    if is_ours "$pid" "$dir"; then
      kill "$pid" 2>/dev/null && running+=("$pid")
    elif [ -n "$pid" ]; then
      say "pid $pid is no longer a controller of $dir; skipped"
    fi
  done <"$dir/pids"
  for pid in "${running[@]}"; do
    for _ in $(seq 1 100); do
      is_ours "$pid" "$dir" || break
      sleep 0.1
    done
    if is_ours "$pid" "$dir"; then
      say "pid $pid did not exit after SIGTERM; sending SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
    fi
  done
  rm -f "$dir/pids"
  say "stopped ${#running[@]} controller(s); data kept in $dir"
}

start() {
  local dir=${1:-}
  if [ -z "$dir" ]; then
    dir=$(mktemp -d "${TMPDIR:-/tmp}/orca-local-cluster.XXXXXX")
  fi
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd)
  if [ -s "$dir/pids" ]; then
    local pid
    while read -r pid; do
      is_ours "$pid" "$dir" && die "a cluster from $dir is running (pid $pid): deploy/local-cluster.sh stop $dir"
    done <"$dir/pids"
  fi
  local port
  for port in "${ports[@]}"; do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      die "127.0.0.1:$port is already in use"
    fi
  done
  if [ ! -x "$controller_bin" ] || [ ! -x "$orca_bin" ]; then
    say "building release binaries"
    (cd "$root" && cargo build --release --bins) >&2
  fi

  # The controller reads these from the environment too; flags below say it all.
  unset ORCA_NODE_ID ORCA_DATA_DIR ORCA_ADVERTISE ORCA_JOIN
  : >"$dir/pids"
  local started=()
  # Until start-up succeeds, leave nothing behind.
  starting_dir=$dir
  trap 'stop "$starting_dir" >/dev/null 2>&1 || true' EXIT

  # One secrets key for the three (a local cluster keeps it beside their
  # data; a real one never does).
  if [ ! -f "$dir/secrets.key" ]; then
    (umask 077 && head -c 32 /dev/urandom >"$dir/secrets.key")
  fi

  launch() {
    local id=$1 addr=127.0.0.1:${ports[$1 - 1]}
    shift
    mkdir -p "$dir/node$id"
    nohup "$controller_bin" --node-id "$id" --data-dir "$dir/node$id" \
      --listen "$addr" --advertise "$addr" --secrets-key-file "$dir/secrets.key" \
      "$@" >"$dir/node$id.log" 2>&1 &
    echo "$!" >>"$dir/pids"
    started+=("$id:$!")
    say "controller $id on $addr (pid $!, log $dir/node$id.log)"
  }

  # Fails (showing the log) when a started controller has exited.
  check_alive() {
    local entry
    for entry in "${started[@]}"; do
      if ! kill -0 "${entry#*:}" 2>/dev/null; then
        tail -n 20 "$dir/node${entry%%:*}.log" >&2 || true
        die "controller ${entry%%:*} exited"
      fi
    done
  }

  # Waits until `members` output satisfies: a known leader and $1 voters.
  wait_for_voters() {
    local want=$1 json voters
    for _ in $(seq 1 "$wait_tenths"); do
      check_alive
      if json=$(members); then
        voters=$(grep -c '"voter": true' <<<"$json" || true)
        if ! grep -q '"leaderId": 0,' <<<"$json" && [ "$voters" -ge "$want" ]; then
          return 0
        fi
      fi
      sleep 0.1
    done
    members >&2 || true
    die "no leader with $want voter(s) after $((wait_tenths / 10))s; logs in $dir"
  }

  launch 1
  wait_for_voters 1
  launch 2 --join 127.0.0.1:7471
  launch 3 --join 127.0.0.1:7471
  wait_for_voters 3
  trap - EXIT

  timeout 5 "$orca_bin" --endpoint "$endpoints" --output table controller members >&2 || true
  say "stop with: deploy/local-cluster.sh stop $dir"
  echo "export ORCA_ENDPOINT=$endpoints"
}

case "${1:-}" in
  stop)
    [ $# -eq 2 ] || die "usage: deploy/local-cluster.sh stop DIR"
    [ -d "$2" ] || die "no such directory: $2"
    stop "$(cd "$2" && pwd)"
    ;;
  -h | --help)
    sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'
    ;;
  *)
    [ $# -le 1 ] || die "usage: deploy/local-cluster.sh [DIR] | stop DIR"
    start "${1:-}"
    ;;
esac
