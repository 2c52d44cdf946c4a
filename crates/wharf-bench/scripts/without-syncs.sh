#!/usr/bin/env bash
# MEASUREMENT ONLY: runs a command with fdatasync and fsync turned into
# no-ops (LD_PRELOAD) for it and every process it starts, to see how much of
# a benchmark figure the disk syncs cost. Nothing run this way is durable.
# Needs gcc. Example (engine only; PostgreSQL is a separate server and keeps
# its syncs):
#   crates/wharf-bench/scripts/without-syncs.sh \
#     crates/wharf-bench/scripts/compare.sh --workload w1 --target wharf
set -euo pipefail
[ $# -gt 0 ] || { echo "usage: $0 COMMAND [ARGS...]" >&2; exit 2; }
dir="$(mktemp -d)"
trap 'rm -rf "$dir"' EXIT
printf '%s\n' 'int fdatasync(int fd) { (void)fd; return 0; }' 'int fsync(int fd) { (void)fd; return 0; }' >"$dir/no_syncs.c"
gcc -shared -fPIC -O2 -o "$dir/no_syncs.so" "$dir/no_syncs.c"
echo "without-syncs: fdatasync and fsync are no-ops for: $*" >&2
LD_PRELOAD="$dir/no_syncs.so" "$@"
