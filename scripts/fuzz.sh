#!/usr/bin/env bash
# Runs every fuzz target for a bounded time (default 60 s each).
#   bash scripts/fuzz.sh [SECONDS]
# Needs cargo-fuzz (`cargo install cargo-fuzz`). The stable toolchain is used
# with RUSTC_BOOTSTRAP=1 for the sanitizer flags cargo-fuzz passes.
# A crash leaves its input under fuzz/artifacts/TARGET/: copy a
# record_decode crash into crates/wharf-engine/tests/fuzz-regressions/ (replayed
# by `cargo test -p wharf-engine --test fuzz_regressions`) before fixing it.
set -euo pipefail
seconds="${1:-60}"
cd "$(dirname "$0")/../fuzz"
command -v cargo-fuzz >/dev/null || { echo "cargo-fuzz is missing: cargo install cargo-fuzz" >&2; exit 1; }
for target in record_decode request_body; do
  echo "== fuzzing $target for ${seconds}s"
  # New inputs go to corpus/TARGET (ignored by git); the committed seeds in
  # seeds/TARGET are read as a second corpus directory.
  mkdir -p "corpus/$target"
  RUSTC_BOOTSTRAP=1 cargo fuzz run -O "$target" "corpus/$target" "seeds/$target" -- -max_total_time="$seconds" 2>&1 \
    | grep -E "^Done|ERROR|panicked|SUMMARY" || true
  if [ -n "$(ls -A "artifacts/$target" 2>/dev/null)" ]; then
    echo "fuzz: $target found crashes in fuzz/artifacts/$target" >&2
    exit 1
  fi
done
echo "fuzz: no crash found"
