#!/usr/bin/env bash
# Shows the main job on a sample program, a 64-bit and a 32-bit copy of it: launch under dmtcp,
# look at them with dmtcp_command, checkpoint, kill, restart from the images, and let them
# finish where they left off. Uses a private coordinator on a free port and a temporary folder,
# and cleans up after itself.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x target/release/dmtcp ] || cargo build --release
work=$(mktemp -d /tmp/dmtcp-demo.XXXXXX)
chmod 755 "$work"
target/release/dmtcp self-install --prefix "$work/install" -q
bin="$work/install/bin"
gcc -O1 -o "$work/sample" scripts/sample.c
gcc -m32 -O1 -o "$work/sample32" scripts/sample.c

coord_pid=""
cleanup() {
  [ -n "$coord_pid" ] && kill "$coord_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

"$bin/dmtcp_coordinator" --coord-port 0 --port-file "$work/port" --ckptdir "$work" -q </dev/null &
coord_pid=$!
for _ in $(seq 100); do [ -s "$work/port" ] && break; sleep 0.05; done
export DMTCP_COORD_PORT=$(cat "$work/port") DMTCP_CHECKPOINT_DIR="$work"
wait_peers() { for _ in $(seq 500); do "$bin/dmtcp_command" -s | grep -q "NUM_PEERS=$1" && return; sleep 0.02; done; }
echo "== coordinator on port $DMTCP_COORD_PORT"

echo "== dmtcp_launch ./sample 12 (64-bit) and ./sample32 12 (32-bit), one line a second"
"$bin/dmtcp_launch" -j "$work/sample" 12 > "$work/out64" &
l64=$!
"$bin/dmtcp_launch" -j "$work/sample32" 12 > "$work/out32" &
l32=$!
wait_peers 2
sleep 4
"$bin/dmtcp_command" --list

echo "== dmtcp_command --bcheckpoint"
"$bin/dmtcp_command" --bcheckpoint
ls -l "$work"/ckpt_*.dmtcp

echo "== dmtcp_command --kill, then dmtcp_restart_script.sh"
"$bin/dmtcp_command" --kill
wait_peers 0
wait "$l64" "$l32" || true
echo "last lines before the restart:"; tail -qn 1 "$work/out64" "$work/out32"
"$work/dmtcp_restart_script.sh" &
r=$!
wait_peers 2
"$bin/dmtcp_command" --status
wait "$r"
echo "== both programs finished after the restart; their output files:"
echo "-- 64-bit:"; cat "$work/out64"
echo "-- 32-bit:"; tail -n 3 "$work/out32"
