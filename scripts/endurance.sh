#!/usr/bin/env bash
# Endurance: runs the checkpoint/kill/restart endurance tests (tests/endurance.rs: a program
# that makes children every way in a loop, 64-bit with a 32-bit exec and the reverse, two
# cycles per run) again and again, and counts the failures.
#   scripts/endurance.sh [RUNS] [--load]
# RUNS defaults to 100 (200 cycles of each test); --load runs a busy loop on every core
# beside it, as a machine busy with builds would. Prints the cycles run and the failures, and
# keeps the failing runs' output in target/endurance/.
set -uo pipefail
cd "$(dirname "$0")/.."
runs=100
load=""
for a in "$@"; do
  case "$a" in
    --load) load=1 ;;
    *[!0-9]*|"") echo "usage: $0 [RUNS] [--load]" >&2; exit 1 ;;
    *) runs=$a ;;
  esac
done
cargo build --release --tests -q || exit 2
mkdir -p target/endurance
hogs=()
if [ -n "$load" ]; then
  for _ in $(seq "$(nproc)"); do (while :; do :; done) & hogs+=($!); done
  trap 'kill "${hogs[@]}" 2>/dev/null' EXIT
fi
fail=0
for i in $(seq "$runs"); do
  out=target/endurance/run-$i.txt
  if cargo test --release -q --test tests -- --ignored --test-threads=2 endurance:: >"$out" 2>&1; then
    rm -f "$out"
  else
    n=$(grep -c -e ' --- FAILED$' -e '^test .* FAILED$' "$out" || true)
    [ "${n:-0}" -gt 0 ] || n=1
    fail=$((fail + n))
    echo "run $i: failed (output in $out)"
  fi
done
echo "endurance: $((runs * 2)) cycles of each of 2 tests${load:+ under load}; $fail failed test runs"
[ "$fail" = 0 ]
