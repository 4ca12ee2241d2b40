#!/usr/bin/env bash
# Clippy with warnings as errors on everything we ship: the host crate and the format crate,
# then each payload (preload library, restorer) for both architectures. CI runs this.
# Payload target folders are their own (target/lint-*) so that this never waits on build.rs.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -f "$HOME/.cargo/env" ]; then . "$HOME/.cargo/env"; fi
cargo fmt --all -- --check
cargo clippy --release --workspace --all-targets -- -D warnings
for payload in libdmtcp mtcp_restart; do
  for triple in x86_64-unknown-linux-gnu i686-unknown-linux-gnu; do
    echo "lint: $payload ($triple)"
    cargo clippy --release --quiet --manifest-path "payloads/$payload/Cargo.toml" --target "$triple" \
      --target-dir "target/lint-$payload" -- -D warnings
  done
done
echo "lint: clean"
