#!/usr/bin/env bash
# Runs every fuzz target for a bounded time (default 60 s each) and prints a
# summary: executions, seconds, corpus size and crashes per target.
#   bash scripts/fuzz.sh [SECONDS]
# Needs cargo-fuzz (`cargo install cargo-fuzz`). The stable toolchain is used
# with RUSTC_BOOTSTRAP=1 for the sanitizer flags cargo-fuzz passes; set
# FUZZ_TOOLCHAIN=nightly to build with `cargo +nightly fuzz` instead.
# Builds and runs are nice'd: the fuzzer must not starve other work.
# A crash leaves its input under fuzz/artifacts/TARGET/ and fails the script.
# Minimise it (`cargo fuzz tmin TARGET fuzz/artifacts/TARGET/crash-...`), then
# copy it into crates/wharf-engine/tests/fuzz-regressions/ (record_decode) or
# crates/wharf-http/tests/fuzz-regressions/ (request_body), replayed by
# `cargo test -p wharf-engine --test fuzz_regressions` and
# `cargo test -p wharf-http --test fuzz_regressions`, before fixing it.
set -euo pipefail
seconds="${1:-60}"
cd "$(dirname "$0")/../fuzz"
command -v cargo-fuzz >/dev/null || { echo "cargo-fuzz is missing: cargo install cargo-fuzz" >&2; exit 1; }

if [ -n "${FUZZ_TOOLCHAIN:-}" ]; then
  fuzz_cmd=(cargo "+$FUZZ_TOOLCHAIN" fuzz)
else
  export RUSTC_BOOTSTRAP=1
  fuzz_cmd=(cargo fuzz)
fi

# Full libFuzzer output stays in an ignored directory for a later look.
log_dir="target/fuzz-logs"
mkdir -p "$log_dir"
summary=()
failed=0

# Counts files only: an absent directory is an empty one.
count_files() { find "$1" -maxdepth 1 -type f 2>/dev/null | wc -l; }

for target in record_decode request_body; do
  echo "== fuzzing $target for ${seconds}s"
  # New inputs go to corpus/TARGET (ignored by git); the committed seeds in
  # seeds/TARGET are read as a second corpus directory.
  mkdir -p "corpus/$target" "artifacts/$target"
  log="$log_dir/$target.log"
  # Artifacts left by an earlier run are not this run's crashes.
  artifacts_before=$(count_files "artifacts/$target")
  status=0
  nice -n 10 "${fuzz_cmd[@]}" run -O "$target" "corpus/$target" "seeds/$target" -- \
    -max_total_time="$seconds" -print_final_stats=1 >"$log" 2>&1 || status=$?
  grep -E "^Done|ERROR|panicked|SUMMARY" "$log" || true
  artifacts_after=$(count_files "artifacts/$target")
  new_crashes=$((artifacts_after - artifacts_before))
  runs=$(sed -nE 's/^Done ([0-9]+) runs in ([0-9]+) second.*/\1/p' "$log" | tail -n 1)
  ran_for=$(sed -nE 's/^Done ([0-9]+) runs in ([0-9]+) second.*/\2/p' "$log" | tail -n 1)
  corpus=$(count_files "corpus/$target")
  summary+=("$target: ${runs:-?} runs in ${ran_for:-?} s, corpus ${corpus} files, new crash inputs ${new_crashes}, exit ${status}")
  if [ "$new_crashes" -gt 0 ]; then
    echo "fuzz: $target found crashes in fuzz/artifacts/$target (log: fuzz/$log)" >&2
    failed=1
  elif [ "$status" -ne 0 ]; then
    # A build failure or a fuzzer error must not read as "no crash found".
    echo "fuzz: $target exited with status $status (log: fuzz/$log)" >&2
    tail -n 20 "$log" >&2
    failed=1
  fi
done

echo "== summary (${seconds}s per target)"
printf '%s\n' "${summary[@]}"
if [ "$failed" -ne 0 ]; then
  echo "fuzz: FAILED" >&2
  exit 1
fi
echo "fuzz: no crash found"
