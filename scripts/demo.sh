#!/usr/bin/env bash
# Shows the main job on a sample program: launch under dmtcp, look at it with dmtcp_command,
# checkpoint it, and (once checkpointing lands) restart it. Uses a private coordinator on a free
# port and a temporary folder, and cleans up after itself.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x target/release/dmtcp ] || cargo build --release
work=$(mktemp -d /tmp/dmtcp-demo.XXXXXX)
prefix="$work/install"
target/release/dmtcp self-install --prefix "$prefix" -q
bin="$prefix/bin"
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
echo "== coordinator on port $DMTCP_COORD_PORT"

echo "== dmtcp_launch ./sample 20 (64-bit) and ./sample32 20 (32-bit)"
"$bin/dmtcp_launch" -j "$work/sample" 20 > "$work/out64" &
"$bin/dmtcp_launch" -j "$work/sample32" 20 > "$work/out32" &
for _ in $(seq 100); do
  "$bin/dmtcp_command" -s | grep -q 'NUM_PEERS=2' && break; sleep 0.05
done
sleep 2
"$bin/dmtcp_command" --status
"$bin/dmtcp_command" --list

echo "== dmtcp_command --bcheckpoint"
if "$bin/dmtcp_command" --bcheckpoint; then
  ls -l "$work"/ckpt_*.dmtcp
else
  echo "(checkpoint failed; see the message above)"
fi

echo "== dmtcp_command --kill"
"$bin/dmtcp_command" --kill
wait %2 %3 2>/dev/null || true
echo "last lines of the two programs:"
tail -n 1 "$work/out64" "$work/out32"
