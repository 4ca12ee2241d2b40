#!/usr/bin/env bash
# Installs what building dmtcp needs on a fresh Debian/Ubuntu x86_64 machine and builds the
# release binary (target/release/dmtcp):
#   - gcc-multilib (gcc -m32 and the 32-bit C library, for the i686 payloads and 32-bit tests)
#   - what the terminal tests (tests/tty.rs) drive: tmux (their terminals), screen, bash,
#     python3, util-linux's setsid, vim, less, and ncurses (64- and 32-bit) for our curses
#     test program
#   - Open MPI and MPICH for the MPI tests (tests/mpi.rs)
#   - a Rust toolchain (rustup's, or Debian's rustc-web when there is none)
#   - the i686-unknown-linux-gnu Rust standard library: `rustup target add`, or, where rustup
#     cannot download, Debian's i386 libstd-rust-web packages unpacked into .toolchain/ (see
#     docs in ../shared/docs/toolchain.md); build.rs then finds them through .cargo/config.toml.
# Safe to run again: it only installs what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
if [ "$(id -u)" != 0 ]; then
  if command -v sudo >/dev/null; then SUDO="sudo"; else
    echo "setup: not root and no sudo; install gcc-multilib yourself if this fails" >&2
  fi
fi
export DEBIAN_FRONTEND=noninteractive
apt_updated=""
apt_update() {
  # An error about one index (e.g. a mirror sync of bookworm-security i386) must not stop us.
  if [ -z "$apt_updated" ]; then $SUDO apt-get update -qq || true; apt_updated=1; fi
}
need_pkg() {
  local missing=()
  for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  if [ ${#missing[@]} -gt 0 ]; then
    apt_update
    $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
}

need_pkg gcc gcc-multilib make ca-certificates zstd python3
# OpenMP tests (tests/memory.rs): libgomp for 64 and 32 bits.
need_pkg libgomp1 lib32gomp1
# man -l renders the man pages in tests/options.rs.
need_pkg man-db groff-base
need_pkg tmux screen bash util-linux
# The MPI tests (tests/mpi.rs): Open MPI and MPICH, side by side (mpicc.openmpi, mpicc.mpich).
need_pkg openmpi-bin libopenmpi-dev mpich libmpich-dev
# The full-screen programs the terminal tests drive, and ncurses for our own curses test
# program in 64 and 32 bits (tests/c/tty_curses.c).
need_pkg vim less libncurses-dev lib32ncurses-dev

if [ -f "$HOME/.cargo/env" ]; then . "$HOME/.cargo/env"; fi
if ! command -v cargo >/dev/null; then
  echo "setup: no cargo found; installing Debian's rustc-web/cargo-web" >&2
  need_pkg rustc-web cargo-web
fi

i686_ok() {
  local root
  root=$(rustc --print sysroot 2>/dev/null) || return 1
  [ -d "$root/lib/rustlib/i686-unknown-linux-gnu/lib" ]
}

if ! i686_ok; then
  if command -v rustup >/dev/null && rustup target add i686-unknown-linux-gnu; then
    :
  else
    echo "setup: rustup cannot provide i686; using Debian's i386 libstd-rust-web" >&2
    need_pkg rustc-web cargo-web
    $SUDO dpkg --add-architecture i386
    apt_updated=""; apt_update
    ver=$(dpkg-query -W -f='${Version}' rustc-web)
    series=$(/usr/bin/rustc --version | sed -E 's/^rustc ([0-9]+\.[0-9]+).*/\1/')
    dir="$PWD/.toolchain/i686"
    rm -rf "$dir" && mkdir -p "$dir/debs"
    (cd "$dir/debs" && apt-get download "libstd-rust-web-dev:i386=$ver" "libstd-rust-web-$series:i386=$ver")
    for d in "$dir"/debs/*.deb; do dpkg -x "$d" "$dir"; done
    mkdir -p .cargo
    cat > .cargo/config.toml <<CFG
# Written by scripts/setup.sh: the i686 standard library comes from Debian, not rustup.
[env]
DMTCP_I686_RUSTC = "/usr/bin/rustc"
DMTCP_I686_SYSROOT = "$dir/usr"
CFG
  fi
fi

# clippy and rustfmt for scripts/lint.sh (CI runs it); rustup's profile may lack them.
if command -v rustup >/dev/null; then
  for c in clippy rustfmt; do
    rustup component list --installed 2>/dev/null | grep -q "^$c" || rustup component add "$c" || true
  done
fi

cargo build --release
echo "setup: built $(pwd)/target/release/dmtcp ($(target/release/dmtcp --version))"
