#!/usr/bin/env bash
# The one test command of Wharf: formatting, lints, every Rust test, the
# release build, and the black-box SDK suite against the built binary.
#
#   bash scripts/test.sh              # everything, in order
#   bash scripts/test.sh sdk          # only the named steps (fmt clippy build rust sdk sdk-postgres compat dashboard crash)
#
# Each step is a block below, marked `# --- step: NAME ---`. To add one (npm
# compatibility tests under tests/compat, the SDK suite on postgres, …), copy a
# block, give it a new name, add the name to ALL_STEPS. A step that needs a
# tool calls `require`: a missing tool fails the run, it never skips.
#
# Logs of the long steps go to target/test-logs/. The last line is the total
# number of tests run, as "tests: N passed, N failed".
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD
LOG_DIR="$ROOT/target/test-logs"
VENV="$ROOT/.venv"
ALL_STEPS=(fmt clippy build rust sdk sdk-postgres compat dashboard crash)

if [[ $# -gt 0 ]]; then
  SELECTED=("$@")
  for name in "${SELECTED[@]}"; do
    [[ " ${ALL_STEPS[*]} " == *" $name "* ]] || { echo "unknown step: $name (steps: ${ALL_STEPS[*]})" >&2; exit 2; }
  done
else
  SELECTED=("${ALL_STEPS[@]}")
fi
mkdir -p "$LOG_DIR"

CURRENT=""
STEP_START=0
RUN_START=$(date +%s)
SUMMARY=()
TESTS_PASSED=0
TESTS_FAILED=0

wanted() { [[ " ${SELECTED[*]} " == *" $1 "* ]]; }

step() {
  CURRENT=$1
  STEP_START=$(date +%s)
  printf '\n==> [%s] %s\n' "$1" "$2"
}

step_done() {
  SUMMARY+=("$(printf '  ok    %-13s %4ss' "$CURRENT" "$(($(date +%s) - STEP_START))")")
  CURRENT=""
}

require() {
  command -v "$1" >/dev/null 2>&1 || { echo "missing required tool: $1 ($2)" >&2; exit 1; }
}

SDK_DATABASE=""

on_exit() {
  local status=$?
  if [[ -n $SDK_DATABASE ]]; then
    dropdb --if-exists -h "$PG_HOST" -p "$PG_PORT" -U "$PG_USER" "$SDK_DATABASE" || true
  fi
  echo
  echo "==> summary ($(($(date +%s) - RUN_START))s)"
  for line in "${SUMMARY[@]}"; do echo "$line"; done
  if [[ $status -ne 0 ]]; then
    echo "  FAIL  ${CURRENT:-?} (exit $status; logs in target/test-logs/)"
    echo "wharf tests FAILED at step ${CURRENT:-?}"
  fi
  echo "tests: $TESTS_PASSED passed, $TESTS_FAILED failed"
}
trap on_exit EXIT

# Sums "N passed; M failed" over every `test result:` line of a cargo test log.
count_cargo_tests() {
  local passed failed
  passed=$(grep -Eo 'test result: [A-Za-z]+\. [0-9]+ passed' "$1" | grep -Eo '[0-9]+ passed' | awk '{s+=$1} END {print s+0}')
  failed=$(grep -Eo '[0-9]+ failed;' "$1" | awk '{s+=$1} END {print s+0}')
  TESTS_PASSED=$((TESTS_PASSED + passed))
  TESTS_FAILED=$((TESTS_FAILED + failed))
  echo "cargo test: $passed passed, $failed failed"
}

# Adds the counts of a pytest JUnit report.
count_junit_tests() {
  local counts
  counts=$(python3 - "$1" <<'PY'
import sys
import xml.etree.ElementTree as ET
# Test cases are counted one by one: node's reporter puts top-level tests
# straight under <testsuites>, with no <testsuite> to carry totals.
# Control characters (a reporter's colour codes inside a failure message)
# are not allowed in XML: dropped before parsing.
import re
text = open(sys.argv[1], encoding="utf-8", errors="replace").read()
text = re.sub(r"[\x00-\x08\x0b\x0c\x0e-\x1f]", "", text)
cases = list(ET.fromstring(text).iter("testcase"))
def has(case, *tags):
    return any(case.find(tag) is not None for tag in tags)
bad = sum(1 for case in cases if has(case, "failure", "error"))
skipped = sum(1 for case in cases if has(case, "skipped") and not has(case, "failure", "error"))
print(len(cases) - bad - skipped, bad)
PY
)
  TESTS_PASSED=$((TESTS_PASSED + ${counts% *}))
  TESTS_FAILED=$((TESTS_FAILED + ${counts#* }))
}

# PostgreSQL the postgres steps use (trust auth, as on the CI machine).
PG_HOST=${WHARF_TEST_PG_HOST:-127.0.0.1}
PG_PORT=${WHARF_TEST_PG_PORT:-5432}
PG_USER=${WHARF_TEST_PG_USER:-postgres}

# The venv with the SDK suite's pinned requirements.
sdk_venv() {
  require python3 "CPython 3.9 or newer with the venv module"
  if [[ ! -x "$VENV/bin/python" ]]; then
    python3 -m venv "$VENV"
  fi
  # pip prints nothing when everything is already installed at the pinned versions.
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r tests/sdk/requirements.txt
}

# Runs the SDK suite; $1 names the JUnit report. pytest exits 5 when it
# collected no test: that fails the step like any other non-zero exit.
run_sdk_suite() {
  local status
  set +e
  "$VENV/bin/python" -m pytest tests/sdk -q --junitxml="$LOG_DIR/$1"
  status=$?
  set -e
  if [[ -f "$LOG_DIR/$1" ]]; then count_junit_tests "$LOG_DIR/$1"; fi
  [[ $status -eq 0 ]] || exit "$status"
}

require cargo "the Rust toolchain, https://rustup.rs"

# --- step: fmt ---------------------------------------------------------------
if wanted fmt; then
  step fmt "cargo fmt --all --check"
  cargo fmt --version >/dev/null 2>&1 || { echo "missing required tool: rustfmt (rustup component add rustfmt)" >&2; exit 1; }
  cargo fmt --all --check
  step_done
fi

# --- step: clippy ------------------------------------------------------------
if wanted clippy; then
  step clippy "cargo clippy --workspace --all-targets -- -D warnings"
  cargo clippy --version >/dev/null 2>&1 || { echo "missing required tool: clippy (rustup component add clippy)" >&2; exit 1; }
  cargo clippy --workspace --all-targets --quiet -- -D warnings
  step_done
fi

# --- step: build (the release binary the SDK, compat, crash and bench smoke tests drive) ---
if wanted build; then
  step build "cargo build --release -p wharf"
  cargo build --release -p wharf
  test -x target/release/wharf || { echo "target/release/wharf was not built" >&2; exit 1; }
  step_done
fi

# --- step: rust (unit, in-process API, property and postgres tests) ----------
# The postgres crate's tests use WHARF_TEST_DATABASE_URL, default
# postgres://postgres@127.0.0.1:5432/test (.ci/run makes sure it is up).
if wanted rust; then
  step rust "cargo test --workspace (log: target/test-logs/cargo-test.log)"
  set +e
  cargo test --workspace 2>&1 | tee "$LOG_DIR/cargo-test.log"
  status=${PIPESTATUS[0]}
  set -e
  count_cargo_tests "$LOG_DIR/cargo-test.log"
  [[ $status -eq 0 ]] || exit "$status"
  step_done
fi

# --- step: sdk (official Python SDK against target/release/wharf) ------------
if wanted sdk; then
  step sdk "pytest tests/sdk with cloudflare (PyPI) from tests/sdk/requirements.txt"
  test -x target/release/wharf || { echo "no target/release/wharf: run the build step first" >&2; exit 1; }
  sdk_venv
  run_sdk_suite sdk-junit.xml
  step_done
fi

# --- step: sdk-postgres (the same suite, wharf serve --backend postgres) ------
# A fresh database per run, dropped at exit, so runs never see each other's data.
if wanted sdk-postgres; then
  step sdk-postgres "pytest tests/sdk against --backend postgres (fresh database)"
  require createdb "postgresql-client"
  require dropdb "postgresql-client"
  test -x target/release/wharf || { echo "no target/release/wharf: run the build step first" >&2; exit 1; }
  sdk_venv
  SDK_DATABASE="wharf_sdk_$(date +%s)_$$"
  createdb -h "$PG_HOST" -p "$PG_PORT" -U "$PG_USER" "$SDK_DATABASE"
  WHARF_TEST_BACKEND=postgres \
    WHARF_TEST_DATABASE_URL="postgres://$PG_USER@$PG_HOST:$PG_PORT/$SDK_DATABASE" \
    run_sdk_suite sdk-postgres-junit.xml
  dropdb -h "$PG_HOST" -p "$PG_PORT" -U "$PG_USER" "$SDK_DATABASE"
  SDK_DATABASE=""
  step_done
fi

# --- step: compat (npm cloudflare, wrangler, PyPI onestep-cf-queues against target/release/wharf) ---
if wanted compat; then
  step compat "scripts/compat.sh: tests/compat with the clients pinned there (log: target/test-logs/compat.log)"
  require node "Node.js 20 or newer"
  require npm "npm (comes with Node.js)"
  require python3 "CPython 3.9 or newer with the venv module"
  test -x target/release/wharf || { echo "no target/release/wharf: run the build step first" >&2; exit 1; }
  set +e
  WHARF_BIN="$ROOT/target/release/wharf" COMPAT_JUNIT_DIR="$LOG_DIR" bash scripts/compat.sh 2>&1 | tee "$LOG_DIR/compat.log"
  status=${PIPESTATUS[0]}
  set -e
  for report in "$LOG_DIR"/compat-*.xml; do
    if [[ -f $report ]]; then count_junit_tests "$report"; fi
  done
  [[ $status -eq 0 ]] || exit "$status"
  step_done
fi

# --- step: dashboard (the web dashboard in headless Chromium against target/release/wharf) ---
if wanted dashboard; then
  step dashboard "tests/dashboard: playwright-core driving Debian's chromium (log: target/test-logs/dashboard.log)"
  require node "Node.js 20 or newer"
  require npm "npm (comes with Node.js)"
  require "${WHARF_CHROMIUM:-chromium}" "Chromium: apt-get install chromium (.ci/run installs it)"
  test -x target/release/wharf || { echo "no target/release/wharf: run the build step first" >&2; exit 1; }
  (cd tests/dashboard && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error)
  set +e
  (cd tests/dashboard && NO_COLOR=1 FORCE_COLOR=0 WHARF_BIN="$ROOT/target/release/wharf" \
    WHARF_CHROMIUM="$(command -v "${WHARF_CHROMIUM:-chromium}")" \
    node --test --test-concurrency=1 --test-reporter=spec --test-reporter-destination=stdout \
    --test-reporter=junit "--test-reporter-destination=$LOG_DIR/dashboard.xml" dashboard.test.mjs) \
    2>&1 | tee "$LOG_DIR/dashboard.log"
  status=${PIPESTATUS[0]}
  set -e
  if [[ -f "$LOG_DIR/dashboard.xml" ]]; then count_junit_tests "$LOG_DIR/dashboard.xml"; fi
  [[ $status -eq 0 ]] || exit "$status"
  step_done
fi

# --- step: crash (SIGKILL the real binary under load, short form) -------------
# The long form (50 kills) is `python3 tests/crash/crashtest.py --kills 50`.
if wanted crash; then
  step crash "tests/crash/crashtest.py --kills 5 against target/release/wharf"
  require python3 "CPython 3.9 or newer"
  test -x target/release/wharf || { echo "no target/release/wharf: run the build step first" >&2; exit 1; }
  set +e
  python3 tests/crash/crashtest.py --bin target/release/wharf --kills 5 2>&1 | tee "$LOG_DIR/crash.log"
  status=${PIPESTATUS[0]}
  set -e
  if [[ $status -eq 0 ]]; then TESTS_PASSED=$((TESTS_PASSED + 1)); else TESTS_FAILED=$((TESTS_FAILED + 1)); fi
  [[ $status -eq 0 ]] || exit "$status"
  step_done
fi
