#!/usr/bin/env bash
# Starts a fresh `wharf serve`, runs wharf-bench against it and against the
# pgmq pattern on the local PostgreSQL in the same run, then stops the server.
# Extra arguments go to wharf-bench, e.g.
#   crates/wharf-bench/scripts/compare.sh --workload w1 --json-out w1.json
#
# The backend of the server under test:
#   WHARF_BENCH_BACKEND=engine (default): the embedded engine, data in a temp
#     dir on the same disk as the repo unless WHARF_BENCH_DATA is set.
#   WHARF_BENCH_BACKEND=postgres: `wharf serve --backend postgres` on a fresh
#     database created on the PostgreSQL at WHARF_BENCH_PG_HOST:WHARF_BENCH_PG_PORT
#     (default 127.0.0.1:5432, role WHARF_BENCH_PG_USER, default postgres, trust
#     auth) and dropped at exit. WHARF_POOL_SIZE sets the node's pool size.
#     The wharf rows then count PostgreSQL's CPU too, in their own column
#     ("db cpu"), and "µs/msg" is the wharf process and PostgreSQL together,
#     as the pgmq rows' is PostgreSQL alone (--wharf-database-cpu).
set -euo pipefail
root="$(cd "$(dirname "$0")/../../.." && pwd)"
wharf="${WHARF_BIN:-$root/target/release/wharf}"
bench="${WHARF_BENCH_BIN:-$root/target/release/wharf-bench}"
backend="${WHARF_BENCH_BACKEND:-engine}"
pg_host="${WHARF_BENCH_PG_HOST:-127.0.0.1}"
pg_port="${WHARF_BENCH_PG_PORT:-5432}"
pg_user="${WHARF_BENCH_PG_USER:-postgres}"
data="$(mktemp -d "${WHARF_BENCH_DATA:-$root/target}/wharf-bench-data.XXXXXX")"
out="$data.stdout"
database=""
server=""
extra=()
cleanup() {
  if [ -n "$server" ]; then kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; fi
  if [ -n "$database" ]; then dropdb --if-exists -h "$pg_host" -p "$pg_port" -U "$pg_user" "$database" || true; fi
  rm -rf "$data" "$out" "$data.stderr"
}
trap cleanup EXIT
case "$backend" in
  engine)
    "$wharf" serve --listen 127.0.0.1:0 --data-dir "$data/data" >"$out" 2>"$data.stderr" &
    server=$!
    ;;
  postgres)
    command -v createdb >/dev/null && command -v dropdb >/dev/null \
      || { echo "WHARF_BENCH_BACKEND=postgres needs createdb and dropdb (postgresql-client)" >&2; exit 1; }
    database="wharf_bench_$(date +%s)_$$"
    createdb -h "$pg_host" -p "$pg_port" -U "$pg_user" "$database"
    "$wharf" serve --backend postgres --listen 127.0.0.1:0 \
      --database-url "postgres://$pg_user@$pg_host:$pg_port/$database" >"$out" 2>"$data.stderr" &
    server=$!
    extra=(--wharf-database-cpu --database-url "postgres://$pg_user@$pg_host:$pg_port/test")
    ;;
  *) echo "WHARF_BENCH_BACKEND must be engine or postgres, not $backend" >&2; exit 2 ;;
esac
for _ in $(seq 100); do grep -q '^wharf listening on ' "$out" && break; sleep 0.1; done
url="$(sed -n 's/^wharf listening on //p' "$out")"
[ -n "$url" ] || { echo "wharf serve did not start:" >&2; cat "$data.stderr" >&2; exit 1; }
export WHARF_ACCOUNT_ID="$(sed -n 's/^account id: //p' "$out")"
export WHARF_API_TOKEN="$(sed -n 's/^admin token: //p' "$out")"
echo "wharf ($backend${database:+, database $database}) pid $server at $url; load average: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
# --server-pid: the wharf process itself (with the postgres backend, finding
# it by port would be right too, but an explicit pid leaves no doubt).
"$bench" --url "$url/client/v4" --server-pid "$server" "${extra[@]}" "$@"
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
