#!/usr/bin/env bash
# Agent footprint with N running containers (default 30): starts Podman's
# Docker-compatible API on a socket of its own, runs N busybox containers
# (the image `make setup-engine` imports; no registry), then measures the
# agent reading them with footprint.sh, and removes the containers.
#
#   agent/bench/containers.sh [BINARY] [SECONDS] [N]
#
# Inside another container (no CAP_SYS_RESOURCE, cgroups v1/v2 hybrid) crun
# refuses Podman's defaults: runc with the current limits is used then, as
# the agent's engine test does.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
bin=${1:-$root/target/release/statusmonitor-agent}
secs=${2:-120}
n=${3:-30}
image=localhost/statusmonitor-busybox:latest
tmp=$(mktemp -d)
spid=""
cleanup() {
    for i in $(seq "$n"); do podman rm -f -t 0 "sm-bench-$i" >/dev/null 2>&1 || true; done
    [ -n "$spid" ] && kill "$spid" 2>/dev/null || true
    wait 2>/dev/null || true
    rm -rf "$tmp"
}
trap cleanup EXIT

podman system service --time=0 "unix://$tmp/podman.sock" >/dev/null 2>&1 &
spid=$!
for _ in $(seq 100); do [ -S "$tmp/podman.sock" ] && break; sleep 0.1; done
run() {
    podman run -d --name "$1" "$image" /bin/sleep 100000 >/dev/null 2>&1 || {
        podman rm -f "$1" >/dev/null 2>&1
        podman --runtime runc run -d --ulimit nofile=1024:1024 --ulimit nproc=4096:4096 \
            --name "$1" "$image" /bin/sleep 100000 >/dev/null
    }
}
for i in $(seq "$n"); do run "sm-bench-$i"; done
echo "containers: $(podman ps -q | wc -l) running (podman $(podman --version | awk '{print $3}'))"
AGENT_ARGS="--docker-socket $tmp/podman.sock --no-services" "$here/footprint.sh" "$bin" "$secs"
