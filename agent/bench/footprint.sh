#!/usr/bin/env bash
# Agent footprint: runs the release agent at 5 s against a local receiver that
# answers 200 (bench/receiver.py) and reads its CPU time and memory from /proc.
#
#   agent/bench/footprint.sh [BINARY] [SECONDS]
#
# BINARY defaults to the static musl build, SECONDS (measured, after a 15 s
# warm-up) to 180. Linux only (reads /proc). Method:
#   CPU  = delta of utime+stime (fields 14+15 of /proc/PID/stat, all threads,
#          in clock ticks) / CLK_TCK / wall seconds, as % of one core;
#   RSS  = VmRSS (now) and VmHWM (peak) from /proc/PID/status.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
bin=${1:-$root/target-agent/x86_64-unknown-linux-musl/release/statusmonitor-agent}
secs=${2:-180}
port=${PORT:-18940}
warmup=15
tmp=$(mktemp -d)
apid=""
rpid=""
cleanup() {
    [ -n "$apid" ] && kill "$apid" 2>/dev/null || true
    [ -n "$rpid" ] && kill "$rpid" 2>/dev/null || true
    wait 2>/dev/null || true
    rm -rf "$tmp"
}
trap cleanup EXIT

python3 "$here/receiver.py" "$port" >"$tmp/receiver.out" 2>&1 &
rpid=$!
sleep 0.5
# AGENT_ARGS: more options, e.g. `--docker-socket /run/podman/podman.sock`.
# shellcheck disable=SC2086
"$bin" run --server "http://127.0.0.1:$port" --token bench-token --interval 5s \
    --spool-dir "$tmp/spool" --config "$tmp/none.toml" ${AGENT_ARGS:-} 2>"$tmp/agent.log" &
apid=$!

ticks() { awk '{print $14 + $15}' "/proc/$apid/stat"; }
status() { awk -v k="$1:" '$1 == k {print $2}' "/proc/$apid/status"; }

sleep "$warmup"
t0=$(date +%s.%N)
c0=$(ticks)
sleep "$secs"
t1=$(date +%s.%N)
c1=$(ticks)
hz=$(getconf CLK_TCK)
rss=$(status VmRSS)
hwm=$(status VmHWM)
total=$(ticks)
kill "$rpid"
wait "$rpid" 2>/dev/null || true
rpid=""

echo "binary:   $bin ($(stat -c %s "$bin") bytes)"
echo "method:   run --interval 5s ${AGENT_ARGS:-} against bench/receiver.py (200), ${warmup}s warm-up, then ${secs}s measured"
awk -v c0="$c0" -v c1="$c1" -v hz="$hz" -v t0="$t0" -v t1="$t1" -v tot="$total" 'BEGIN {
    wall = t1 - t0; cpu = (c1 - c0) / hz;
    printf "cpu:      %.2f s over %.1f s wall = %.3f %% of one core (utime+stime, %d ticks at %d Hz)\n", cpu, wall, 100 * cpu / wall, c1 - c0, hz;
    printf "cpu total since start (incl. start-up): %.2f s\n", tot / hz }'
echo "rss:      VmRSS $((rss / 1024)).$(( (rss % 1024) * 10 / 1024 )) MiB, VmHWM (peak) $((hwm / 1024)).$(( (hwm % 1024) * 10 / 1024 )) MiB"
echo "receiver: $(cat "$tmp/receiver.out")"
if grep -qiE "error|warn" "$tmp/agent.log"; then echo "agent log:"; cat "$tmp/agent.log"; fi
