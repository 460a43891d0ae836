#!/usr/bin/env bash
# Installs what orca needs on a fresh Debian machine: protoc for the build;
# containerd, runc, a local OCI registry and skopeo for the agent and its
# end-to-end tests; busybox-static to build the tiny test image; iptables and
# nftables for the network tests; etcd-server and etcd-client for the
# side-by-side Raft benchmark (bench-raft); iputils-ping for the overlay
# tests' do-not-fragment pings. Idempotent: installs only what is missing.
set -euo pipefail

packages=(protobuf-compiler containerd runc docker-registry skopeo busybox-static iptables nftables etcd-server etcd-client iputils-ping)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "installing: ${missing[*]}"
  sudo_cmd=""
  [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
  $sudo_cmd apt-get update -q
  # Debian's policy may forbid starting services from packages; orca's
  # scripts start the daemons they need themselves.
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -q "${missing[@]}"
fi

if ! command -v cargo >/dev/null 2>&1; then
  echo "error: cargo is not installed: orca needs Rust 1.88 or newer (https://rustup.rs)" >&2
  exit 1
fi
