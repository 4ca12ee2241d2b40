#!/usr/bin/env bash
# Benchmark: checkpoint and restart of a process holding MiB of memory (default 1024), once with
# random and once with compressible content, compressed (default) and uncompressed images.
# Reports how long the program was paused, checkpoint wall time, image size and restart time,
# next to this machine's own limits measured in the same run (sequential write with fdatasync,
# zstd -1 with 2 threads on the same bytes). Usage: scripts/bench.sh [MiB]  (BENCH_DIR=folder
# on the disk to measure, default /tmp). Then: bytes in flight on one TCP connection (INFLIGHT_MIB,
# default "0 4 12"): checkpoint and restart time, image size (inflight_section, at the end).
set -euo pipefail
cd "$(dirname "$0")/.."
MIB=${1:-1024}
[ -x target/release/dmtcp ] || cargo build --release
D=$PWD/target/release/dmtcp
work=$(mktemp -d "${BENCH_DIR:-/tmp}/dmtcp-bench.XXXXXX")
coord=""
cleanup() { [ -n "$coord" ] && kill "$coord" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
gcc -O2 -o "$work/hold" scripts/bench/hold.c
now() { date +%s.%N; }
secs() { python3 -c "print(f'{$2 - $1:.2f}')"; }
rate() { python3 -c "print(f'{$1 / ($3 - $2):.0f}')"; }   # MB/s for $1 MB between $2 and $3

"$D" coordinator --coord-port 0 --port-file "$work/port" --ckptdir "$work" -q --ckpt-timeout 0 </dev/null &
coord=$!
for _ in $(seq 100); do [ -s "$work/port" ] && break; sleep 0.05; done
export DMTCP_COORD_PORT=$(cat "$work/port")
MB=$(python3 -c "print($MIB * 1048576 / 1e6)")

wait_status() { # wait until NUM_PEERS=$1 and RUNNING=$2
  for _ in $(seq 3000); do
    s=$("$D" command -s 2>/dev/null || true)
    if grep -q "NUM_PEERS=$1" <<<"$s" && grep -q "RUNNING=$2" <<<"$s"; then return 0; fi
    sleep 0.01
  done
  echo "timeout waiting for NUM_PEERS=$1 RUNNING=$2" >&2; return 1
}

echo "# dmtcp-rs benchmark, $MIB MiB, $(date -u +%Y-%m-%d), $(nproc) cores, $(uname -r)"
echo
# Machine limits.
t0=$(now); dd if=/dev/zero of="$work/dd" bs=1M count="$MIB" conv=fdatasync status=none; t1=$(now); rm -f "$work/dd"
write_mbs=$(rate "$MB" "$t0" "$t1")
echo "machine: sequential write + fdatasync: $write_mbs MB/s"
# The stop a copy-on-write snapshot would add (issue 11, low pause): fork() of a process holding
# the same MiB, median of 5.
gcc -O2 -o "$work/forktime" scripts/bench/forktime.c
echo "machine: fork() of a $MIB MiB process: $("$work/forktime" "$MIB" | awk '{print $2}') ms"
printf "\n| content | images | paused (ms) | checkpoint (s) | MB/s | image (MiB) | restart (s) | restart MB/s |\n|---|---|---|---|---|---|---|---|\n" > "$work/table"
for content in random text; do
  "$work/hold" "$MIB" "$content" dump "$work/bytes"
  if command -v zstd >/dev/null; then
    t0=$(now); zstd -q -1 -T2 -c "$work/bytes" > /dev/null; t1=$(now)
    echo "machine: zstd -1 -T2 on the $content bytes: $(rate "$MB" "$t0" "$t1") MB/s"
  fi
  rm -f "$work/bytes"
  for gz in 1 0; do
    ck="$work/ck-$content-$gz"; mkdir -p "$ck"
    DMTCP_GZIP=$gz DMTCP_CHECKPOINT_DIR="$ck" "$D" launch -j "$work/hold" "$MIB" "$content" > "$work/out" 2>"$work/err" &
    job=$!
    for _ in $(seq 600); do grep -q ready "$work/out" 2>/dev/null && break; sleep 0.05; done
    wait_status 1 yes; sleep 1.2
    t0=$(now); "$D" command --bcheckpoint > /dev/null; t1=$(now)
    sleep 1.3
    paused=$(grep maxgap_ms "$work/out" | tail -1 | awk '{print $2}')
    size=$(stat -c %s "$ck"/ckpt_*.dmtcp)
    "$D" command -k > /dev/null; wait_status 0 no; wait "$job" || true
    t2=$(now)
    "$D" restart -j "$ck"/ckpt_*.dmtcp > /dev/null 2>"$work/rerr" &
    job=$!
    wait_status 1 yes; t3=$(now)
    "$D" command -k > /dev/null; wait_status 0 no; wait "$job" || true
    images=$([ $gz = 1 ] && echo zstd || echo raw)
    printf "| %s | %s | %s | %s | %s | %s | %s | %s |\n" "$content" "$images" "$paused" "$(secs "$t0" "$t1")" "$(rate "$MB" "$t0" "$t1")" \
      "$(python3 -c "print(f'{$size/1048576:.0f}')")" "$(secs "$t2" "$t3")" "$(rate "$MB" "$t2" "$t3")" >> "$work/table"
    rm -rf "$ck"
  done
done
cat "$work/table"

# Bytes in flight on one TCP connection (both ends in one process, the reader not reading: the
# receive queue full and MiB in the sender's send queue): checkpoint (drain included) and
# restart wall time, image size, and a check that every byte is read back after the restart.
inflight_section() {
  gcc -O2 -o "$work/inflight" scripts/bench/inflight.c
  printf "\n| in flight (MiB) | send queue (MiB) | checkpoint (s) | image (MiB) | restart (s) | read back |\n|---|---|---|---|---|---|\n" > "$work/inflight-table"
  for n in ${INFLIGHT_MIB:-0 4 12}; do
    ck="$work/ck-inflight-$n"; mkdir -p "$ck"
    DMTCP_CHECKPOINT_DIR="$ck" "$D" launch -j "$work/inflight" "$n" > "$work/iout" 2>"$work/ierr" &
    job=$!
    for _ in $(seq 600); do grep -q ready "$work/iout" 2>/dev/null && break; sleep 0.05; done
    wait_status 1 yes
    t0=$(now); "$D" command --bcheckpoint > /dev/null; t1=$(now)
    size=$(stat -c %s "$ck"/ckpt_*.dmtcp)
    "$D" command -k > /dev/null; wait_status 0 no; wait "$job" || true
    t2=$(now)
    "$D" restart -j "$ck"/ckpt_*.dmtcp > /dev/null 2>"$work/rerr" &
    job=$!
    wait_status 1 yes; t3=$(now)
    pid=$(pgrep -f "^$work/inflight $n\$" | head -1)
    kill -USR1 "$pid"; wait "$job" || true
    read -r inflight sendq < <(sed -n 's/^ready inflight=\([0-9]*\) sendq=\([0-9]*\).*/\1 \2/p' "$work/iout")
    back=$(sed -n 's/^read=\([0-9]*\) bad=\([0-9]*\)$/\1 bad \2/p' "$work/iout")
    [ "$back" = "$inflight bad 0" ] && ok=all || ok="NO: $back of $inflight"
    printf "| %s | %s | %s | %s | %s | %s |\n" "$(python3 -c "print(f'{$inflight/1048576:.1f}')")" \
      "$(python3 -c "print(f'{$sendq/1048576:.1f}')")" "$(secs "$t0" "$t1")" \
      "$(python3 -c "print(f'{$size/1048576:.1f}')")" "$(secs "$t2" "$t3")" "$ok" >> "$work/inflight-table"
    rm -rf "$ck"
  done
  cat "$work/inflight-table"
}
inflight_section
