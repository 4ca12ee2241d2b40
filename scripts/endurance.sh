#!/usr/bin/env bash
# Endurance runs of checkpoint/kill/restart (issue 13). Each mode counts what it ran and what
# failed, prints one summary line, keeps the output of failures in target/endurance/, and exits
# non-zero if anything failed.
#
#   scripts/endurance.sh [CYCLES] [--load]
#       The children test (tests/endurance.rs: a program that makes children every way in a
#       loop, system/popen/posix_spawn/fork+exec of the other architecture, while a second
#       thread keeps a child over pipes): CYCLES checkpoint/kill/restart cycles (default 200)
#       of each of its two tests (64-bit parent with 32-bit exec, and the reverse), 5 cycles
#       per run of the test binary, each run compared with an uninterrupted run. The default
#       suite (CI) runs the same tests with 2 cycles each.
#   scripts/endurance.sh --vim [N] [--load]
#       vim (defaults.vim: syntax, incsearch, hlsearch) in a tmux pane under dmtcp_launch, N
#       times (default 100): type a line, search, now and then a :! shell command and a :w,
#       then a blocking checkpoint that must succeed; every 10th time kill it and restart it in
#       a new pane, which must show the text typed so far. At the end :wq and the file must
#       hold every line in order.
#   scripts/endurance.sh --interval N [--duration S] [--load]
#       Interval checkpoints every N seconds (coordinator -i N) of a running program (grower:
#       16 MiB, a line every 100 ms) for S seconds (default 600). Every 10 s it samples the
#       coordinator's VmRSS and fd count and the program's fd count, and keeps a copy of the
#       image every 60 s; at the end each kept image is restarted under a coordinator of its
#       own and must run again and take a checkpoint. Fails if an image does not restart, if the program's or the
#       coordinator's fd count grew, or if the coordinator's VmRSS grew by more than 2 MiB
#       (from the first sample after a minute of checkpoints to the last).
#   --load   a busy loop on every core beside the run, as a machine busy with builds would be.
set -uo pipefail
cd "$(dirname "$0")/.."
mode=children
count=""
dmtcp="" port="" dir="" sock=""
load=""
duration=600
usage() {
  echo "usage: $0 [CYCLES] [--load]   |   $0 --vim [N] [--load]   |   $0 --interval N [--duration S] [--load]" >&2
  exit 1
}
want=""
for a in "$@"; do
  if [ -n "$want" ]; then
    case "$a" in *[!0-9]* | "" | 0) usage ;; esac
    eval "$want=\$a"
    want=""
    continue
  fi
  case "$a" in
    --load) load=1 ;;
    --vim) mode=vim ;;
    --interval) mode=interval want=count ;;
    --duration) want=duration ;;
    *[!0-9]* | "" | 0) usage ;;
    *) count=$a ;;
  esac
done
if [ -f "$HOME/.cargo/env" ]; then . "$HOME/.cargo/env"; fi
mkdir -p target/endurance
hogs=()
stop_hogs() { [ ${#hogs[@]} -eq 0 ] || kill "${hogs[@]}" 2>/dev/null; }
trap stop_hogs EXIT
start_hogs() {
  [ -n "$load" ] || return 0
  for _ in $(seq "$(nproc)"); do (while :; do :; done) & hogs+=($!); done
}

children() {
  # 5 cycles per run: the uninterrupted reference run of each must end within the tests' 60 s.
  local cycles=${count:-200} per=5 done=0 run=0 fail=0 n out
  cargo build --release --tests -q || exit 2
  start_hogs
  local t0=$SECONDS
  while [ "$done" -lt "$cycles" ]; do
    run=$((run + 1))
    n=$((cycles - done < per ? cycles - done : per))
    out=target/endurance/children-$run.txt
    if DMTCP_ENDURANCE_CYCLES=$n cargo test --release -q --test tests -- --test-threads=2 endurance:: >"$out" 2>&1; then
      rm -f "$out"
    else
      local k
      k=$(grep -c -e ' --- FAILED$' -e '^test .* FAILED$' "$out" || true)
      [ "${k:-0}" -gt 0 ] || k=1
      fail=$((fail + k))
      echo "run $run ($n cycles): $k test(s) failed (output in $out)"
    fi
    done=$((done + n))
  done
  echo "endurance: $done cycles of each of 2 tests in $run runs${load:+ under load} ($((SECONDS - t0)) s); $fail failed test runs"
  [ "$fail" = 0 ]
}

# ---- vim --------------------------------------------------------------------------------------

vim_case() {
  local n=${count:-100}
  dmtcp=$PWD/target/release/dmtcp
  command -v vim >/dev/null || { echo "vim is not installed (scripts/setup.sh installs it)" >&2; exit 2; }
  command -v tmux >/dev/null || { echo "tmux is not installed (scripts/setup.sh installs it)" >&2; exit 2; }
  cargo build --release -q || exit 2
  local fail=0 restarts=0 pane=w0 log
  dir=$(mktemp -d /tmp/dmtcp-endurance-vim.XXXXXX)
  log=target/endurance/vim-$(date +%Y%m%d-%H%M%S).txt
  sock=dmtcp-endurance-$$
  "$dmtcp" coordinator --coord-port 0 --port-file "$dir/port" --daemon --coord-logfile "$dir/coord.log" \
    -c "$dir" --stale-timeout 600 >/dev/null || exit 2
  port=$(cat "$dir/port")
  printf 'first line\n' >"$dir/text.txt"
  tm() { tmux -L "$sock" "$@"; }
  cleanup_vim() {
    "$dmtcp" command -p "$port" --kill >/dev/null 2>&1
    "$dmtcp" command -p "$port" --quit >/dev/null 2>&1
    tm kill-server 2>/dev/null
    stop_hogs
  }
  trap cleanup_vim EXIT
  screen() { tm capture-pane -p -t "$pane"; }
  # Waits up to $2 seconds for text $1 on the pane.
  wait_for() {
    local i
    for i in $(seq $(($2 * 10))); do
      screen | grep -qF -- "$1" && return 0
      sleep 0.1
    done
    return 1
  }
  note() {
    fail=$((fail + 1))
    {
      echo "=== $*"
      screen
      echo "--- coordinator log (last lines):"
      tail -n 15 "$dir/coord.log"
    } >>"$log"
    echo "vim: $* (details in $log)"
  }
  local env="DMTCP_CHECKPOINT_DIR=$dir"
  tm new-session -d -s e -n "$pane" -x 100 -y 30 \
    "cd $dir && $env $dmtcp launch --join-coordinator --coord-port $port vim -u DEFAULTS -i NONE -n --cmd 'set hlsearch' text.txt; echo '[vim exit' \$? ']'; sleep 3600"
  wait_for "first line" 20 || { note "vim did not start"; exit 1; }
  start_hogs
  local t0=$SECONDS i out
  for i in $(seq "$n"); do
    tm send-keys -t "$pane" G o "cycle $i" Escape
    wait_for "cycle $i" 20 || note "cycle $i: the typed line did not show"
    tm send-keys -t "$pane" "/cycle" Enter
    if [ $((i % 5)) = 0 ]; then
      tm send-keys -t "$pane" ":!true" Enter
      sleep 0.3
      tm send-keys -t "$pane" Enter
    fi
    [ $((i % 3)) = 0 ] && tm send-keys -t "$pane" ":w" Enter
    # Back to the last line, so that a restarted vim shows it.
    tm send-keys -t "$pane" G
    if ! out=$("$dmtcp" command -p "$port" --bcheckpoint 2>&1); then
      note "cycle $i: checkpoint failed: $out"
      continue
    fi
    if [ $((i % 10)) = 0 ]; then
      restarts=$((restarts + 1))
      "$dmtcp" command -p "$port" --kill >/dev/null 2>&1
      wait_for "[vim exit" 20 || note "cycle $i: vim did not end after --kill"
      # The new window first: the session (and tmux) ends with its last window.
      tm new-window -d -t e -n "w$i" \
        "cd $dir && $dmtcp restart --join-coordinator --coord-port $port $dir/ckpt_*.dmtcp; echo '[vim exit' \$? ']'; sleep 3600"
      tm kill-window -t "$pane"
      pane=w$i
      sleep 1
      # The restarted vim redraws on the new terminal (SIGWINCH); ^L as a user would, too.
      tm send-keys -t "$pane" C-l
      wait_for "cycle $i" 30 || note "cycle $i: the restarted vim does not show the text"
    fi
  done
  tm send-keys -t "$pane" ":wq" Enter
  wait_for "[vim exit 0" 30 || note "vim did not exit with status 0 after :wq"
  local want
  want=$( (echo "first line"; for i in $(seq "$n"); do echo "cycle $i"; done) )
  [ "$(cat "$dir/text.txt")" = "$want" ] || note "the file does not hold the $n typed lines in order"
  echo "endurance: vim: $n checkpoints, $restarts kill/restarts${load:+ under load} ($((SECONDS - t0)) s); $fail failures"
  [ "$fail" = 0 ] && rm -rf "$dir"
  [ "$fail" = 0 ]
}

# ---- interval ---------------------------------------------------------------------------------

interval_case() {
  local n=${count:-1}
  dmtcp=$PWD/target/release/dmtcp
  cargo build --release -q || exit 2
  dir=$(mktemp -d /tmp/dmtcp-endurance-interval.XXXXXX)
  local log=target/endurance/interval-$(date +%Y%m%d-%H%M%S).txt fail=0
  gcc -O2 -o "$dir/grower" tests/c/grower.c || exit 2
  mkdir -p "$dir/ckpt" "$dir/kept"
  "$dmtcp" coordinator --coord-port 0 --port-file "$dir/port" --daemon --coord-logfile "$dir/coord.log" \
    -c "$dir/ckpt" -i "$n" >/dev/null || exit 2
  port=$(cat "$dir/port")
  local cpid
  cpid=$(pgrep -f -- "--port-file $dir/port" | head -1)
  (cd "$dir" && DMTCP_CHECKPOINT_DIR=$dir/ckpt exec "$dmtcp" launch --join-coordinator --coord-port "$port" --no-gzip \
    "$dir/grower" 16 16 1000000 100000000 >"$dir/out.txt" 2>"$dir/err.txt") &
  local lpid=$!
  cleanup_interval() {
    "$dmtcp" command -p "$port" --kill >/dev/null 2>&1
    "$dmtcp" command -p "$port" --quit >/dev/null 2>&1
    stop_hogs
  }
  trap cleanup_interval EXIT
  start_hogs
  local ppid="" i
  for i in $(seq 100); do
    ppid=$(pgrep -x -P "$(pgrep -P "$lpid" | head -1)" grower 2>/dev/null | head -1)
    [ -z "$ppid" ] && ppid=$(pgrep -f "^$dir/grower" | head -1)
    [ -n "$ppid" ] && break
    sleep 0.1
  done
  [ -n "$ppid" ] || { echo "interval: the program did not start" >&2; exit 2; }
  fds() { ls "/proc/$1/fd" 2>/dev/null | wc -l; }
  rss() { awk '/^VmRSS/ {print $2}' "/proc/$1/status" 2>/dev/null; }
  local t0=$SECONDS kept=0 samples=0 base_rss="" base_cfd="" base_pfd="" last_rss=0 last_cfd=0 last_pfd=0
  echo "t_s coord_rss_kib coord_fds prog_fds images_written" >"$log"
  while [ $((SECONDS - t0)) -lt "$duration" ]; do
    sleep 10
    local t=$((SECONDS - t0)) written
    written=$(grep -c "checkpoint [0-9]* complete" "$dir/coord.log" || true)
    last_rss=$(rss "$cpid") last_cfd=$(fds "$cpid") last_pfd=$(fds "$ppid")
    samples=$((samples + 1))
    echo "$t $last_rss $last_cfd $last_pfd $written" >>"$log"
    if [ -z "$base_rss" ] && [ "$t" -ge 60 ]; then
      base_rss=$last_rss base_cfd=$last_cfd base_pfd=$last_pfd
    fi
    if [ $(((t - 10) % 60)) -lt 10 ]; then
      # A complete image (renamed into place) at this moment.
      local img
      img=$(ls "$dir"/ckpt/ckpt_*.dmtcp 2>/dev/null | head -1)
      if [ -n "$img" ]; then
        kept=$((kept + 1))
        mkdir -p "$dir/kept/$kept" && cp "$img" "$dir/kept/$kept/"
      fi
    fi
  done
  cleanup_interval
  wait "$lpid" 2>/dev/null
  [ -n "$base_rss" ] || base_rss=$last_rss base_cfd=$last_cfd base_pfd=$last_pfd
  if [ -z "$last_rss" ] || [ "$last_rss" -gt $((base_rss + 2048)) ]; then
    fail=$((fail + 1)); echo "interval: coordinator VmRSS grew: $base_rss -> $last_rss KiB"
  fi
  if [ "$last_cfd" -gt "$base_cfd" ]; then fail=$((fail + 1)); echo "interval: coordinator fds grew: $base_cfd -> $last_cfd"; fi
  if [ "$last_pfd" -gt "$base_pfd" ]; then fail=$((fail + 1)); echo "interval: program fds grew: $base_pfd -> $last_pfd"; fi
  [ "$kept" -gt 0 ] || { fail=$((fail + 1)); echo "interval: no image was written (see $dir)"; }
  local restarted=0 k
  for k in $(seq "$kept"); do
    local rp
    (cd "$dir/kept/$k" && exec "$dmtcp" restart --new-coordinator --coord-port 0 --port-file "$dir/kept/$k/port" \
      "$dir"/kept/$k/ckpt_*.dmtcp >"$dir/kept/$k/out.txt" 2>"$dir/kept/$k/err.txt") &
    rp=$!
    local ok=""
    for i in $(seq 150); do
      local st=""
      [ -s "$dir/kept/$k/port" ] && st=$("$dmtcp" command -p "$(cat "$dir/kept/$k/port")" --status 2>/dev/null)
      case "$st" in
        *NUM_PEERS=1*RUNNING=yes*)
          # Running again: it must also take a checkpoint of its own.
          "$dmtcp" command -p "$(cat "$dir/kept/$k/port")" --bcheckpoint >/dev/null 2>&1 && ok=1
          break
          ;;
      esac
      sleep 0.2
    done
    [ -s "$dir/kept/$k/port" ] && "$dmtcp" command -p "$(cat "$dir/kept/$k/port")" --kill >/dev/null 2>&1
    sleep 0.5
    kill "$rp" 2>/dev/null; wait "$rp" 2>/dev/null
    [ -s "$dir/kept/$k/port" ] && "$dmtcp" command -p "$(cat "$dir/kept/$k/port")" --quit >/dev/null 2>&1
    if [ -n "$ok" ]; then restarted=$((restarted + 1)); else fail=$((fail + 1)); echo "interval: kept image $k did not restart (see $dir/kept/$k)"; fi
  done
  local written
  written=$(grep -c "checkpoint [0-9]* complete" "$dir/coord.log" || true)
  echo "endurance: interval $n s for $duration s${load:+ under load}: $written checkpoints logged, $samples samples (in $log), coordinator VmRSS $base_rss -> $last_rss KiB, coordinator fds $base_cfd -> $last_cfd, program fds $base_pfd -> $last_pfd; $restarted of $kept kept images restarted; $fail failures"
  [ "$fail" = 0 ] && rm -rf "$dir"
  [ "$fail" = 0 ]
}

case "$mode" in
  children) children ;;
  interval) interval_case ;;
  vim) vim_case ;;
esac
