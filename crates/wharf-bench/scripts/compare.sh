#!/usr/bin/env bash
# Starts a fresh `wharf serve` (embedded engine, data in a temp dir on the
# same disk as the repo unless WHARF_BENCH_DATA is set), runs wharf-bench
# against it and against the pgmq pattern on the local PostgreSQL in the same
# run, then stops the server. Extra arguments go to wharf-bench, e.g.
#   crates/wharf-bench/scripts/compare.sh --workload w1 --json-out w1.json
set -euo pipefail
root="$(cd "$(dirname "$0")/../../.." && pwd)"
wharf="${WHARF_BIN:-$root/target/release/wharf}"
bench="${WHARF_BENCH_BIN:-$root/target/release/wharf-bench}"
data="$(mktemp -d "${WHARF_BENCH_DATA:-$root/target}/wharf-bench-data.XXXXXX")"
out="$data.stdout"
"$wharf" serve --listen 127.0.0.1:0 --data-dir "$data/data" >"$out" 2>"$data.stderr" &
server=$!
cleanup() { kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; rm -rf "$data" "$out" "$data.stderr"; }
trap cleanup EXIT
for _ in $(seq 100); do grep -q '^wharf listening on ' "$out" && break; sleep 0.1; done
url="$(sed -n 's/^wharf listening on //p' "$out")"
[ -n "$url" ] || { echo "wharf serve did not start:" >&2; cat "$data.stderr" >&2; exit 1; }
export WHARF_ACCOUNT_ID="$(sed -n 's/^account id: //p' "$out")"
export WHARF_API_TOKEN="$(sed -n 's/^admin token: //p' "$out")"
echo "wharf pid $server at $url; load average: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
"$bench" --url "$url/client/v4" --server-pid "$server" "$@"
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
