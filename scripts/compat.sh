#!/usr/bin/env bash
# Compatibility tests: pinned third-party Cloudflare Queues clients (npm
# `cloudflare`, npm `wrangler`, PyPI `onestep-cf-queues`) driving the real
# wharf binary. Installs the clients (npm ci into tests/compat/node_modules,
# pip into .venv), builds the release binary unless WHARF_BIN is given, runs
# every suite and fails if any failed.
#
#   scripts/compat.sh            # all suites
#   scripts/compat.sh ts         # one of: ts, wrangler, onestep
#
# With COMPAT_JUNIT_DIR set, each suite also writes a JUnit report there
# (compat-ts.xml, compat-wrangler.xml, compat-onestep.xml).
set -euo pipefail

cd "$(dirname "$0")/.."
root=$(pwd)
only=${1:-all}

if [[ -z "${WHARF_BIN:-}" ]]; then
  cargo build --release -p wharf
  export WHARF_BIN="$root/target/release/wharf"
fi
[[ -x "$WHARF_BIN" ]] || { echo "compat: no wharf binary at $WHARF_BIN" >&2; exit 2; }

# Node clients: exact versions from tests/compat/package-lock.json. Install
# scripts are not needed (wrangler's `queues` commands never start workerd).
(cd tests/compat && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error)

# Python client, in the shared venv.
[[ -x .venv/bin/python ]] || python3 -m venv .venv
.venv/bin/pip install --quiet --disable-pip-version-check -r tests/compat/requirements.txt

failed=()
run() {
  local suite=$1
  shift
  if [[ $only != all && $only != "$suite" ]]; then return 0; fi
  echo "== compat: $suite"
  if ! "$@"; then failed+=("$suite"); fi
}

junit_dir=${COMPAT_JUNIT_DIR:-}
if [[ -n $junit_dir ]]; then
  mkdir -p "$junit_dir"
  junit_dir=$(cd "$junit_dir" && pwd)
  rm -f "$junit_dir"/compat-*.xml
fi

# node --test with the spec reporter on stdout, plus JUnit when asked.
node_suite() {
  local suite=$1 file=$2
  local reporters=(--test-reporter=spec --test-reporter-destination=stdout)
  if [[ -n $junit_dir ]]; then
    reporters+=(--test-reporter=junit "--test-reporter-destination=$junit_dir/compat-$suite.xml")
  fi
  (cd tests/compat && node --test "${reporters[@]}" "$file")
}

pytest_junit=()
if [[ -n $junit_dir ]]; then pytest_junit=("--junitxml=$junit_dir/compat-onestep.xml"); fi

run ts node_suite ts sdk-ts.test.mjs
run wrangler node_suite wrangler wrangler.test.mjs
run onestep .venv/bin/python -m pytest -q tests/compat/test_onestep.py "${pytest_junit[@]}"

if ((${#failed[@]})); then
  echo "compat: FAILED: ${failed[*]}" >&2
  exit 1
fi
echo "compat: all suites passed"
