#!/usr/bin/env bash
# Runs the same workloads against several Wharf binaries in turn (A, B, A,
# B, ...), each time on a fresh `wharf serve` started by compare.sh, then
# prints the median of every phase per binary. Single runs of one binary
# spread by 10-20 % on a shared two-core VM; alternating runs in the same
# minutes and comparing medians is how a change is told from the host's
# noise.
#
#   crates/wharf-bench/scripts/alternate.sh [--rounds N] LABEL=BINARY[,BENCH]... -- [wharf-bench args]
#
# BENCH, when given, is the load generator for that label's runs (default:
# WHARF_BENCH_BIN or target/release/wharf-bench), to compare builds of both
# sides, e.g. two release profiles.
#
# Example: the binary of main against a working tree's, 6 rounds of W2:
#   cp target/release/wharf /tmp/wharf-before   # (built from main)
#   cargo build --release -p wharf
#   crates/wharf-bench/scripts/alternate.sh --rounds 6 \
#     before=/tmp/wharf-before after=target/release/wharf -- --workload w2
#
# Each run's full JSON report is kept in WHARF_ALTERNATE_OUT (default: a new
# directory under target/), named LABEL-rN.json. The summary (stdout) gives,
# per label, workload and phase: the median msgs/s with the lowest and
# highest run, the medians of the server's and the load generator's CPU per
# message (µs), the highest steal seen and the median push-to-pull delivery
# p50 (see docs/performance.md).
# compare.sh adds --target wharf --quiet --json-out; pass anything else after --.
set -euo pipefail
root="$(cd "$(dirname "$0")/../../.." && pwd)"
rounds=3
if [ "${1:-}" = "--rounds" ]; then
  rounds="$2"
  shift 2
fi
labels=()
binaries=()
benches=()
while [ $# -gt 0 ] && [ "$1" != "--" ]; do
  case "$1" in
    *=*,*) labels+=("${1%%=*}"); pair="${1#*=}"; binaries+=("${pair%%,*}"); benches+=("${pair#*,}") ;;
    *=*) labels+=("${1%%=*}"); binaries+=("${1#*=}"); benches+=("${WHARF_BENCH_BIN:-$root/target/release/wharf-bench}") ;;
    *) echo "expected LABEL=BINARY, got: $1" >&2; exit 2 ;;
  esac
  shift
done
[ "${1:-}" = "--" ] && shift
[ ${#labels[@]} -gt 0 ] || { echo "usage: $0 [--rounds N] LABEL=BINARY[,BENCH]... -- [wharf-bench args]" >&2; exit 2; }
command -v python3 >/dev/null || { echo "alternate.sh needs python3 for the summary" >&2; exit 1; }
for binary in "${binaries[@]}" "${benches[@]}"; do
  [ -x "$binary" ] || { echo "not an executable: $binary" >&2; exit 2; }
done
out="${WHARF_ALTERNATE_OUT:-$(mktemp -d "$root/target/alternate.XXXXXX")}"
mkdir -p "$out"
for round in $(seq "$rounds"); do
  for index in "${!labels[@]}"; do
    label="${labels[$index]}"
    report="$out/$label-r$round.json"
    echo "round $round/$rounds: $label" >&2
    WHARF_BIN="${binaries[$index]}" WHARF_BENCH_BIN="${benches[$index]}" "$root/crates/wharf-bench/scripts/compare.sh" \
      --target wharf --quiet --json-out "$report" "$@" >"${report%.json}.log" 2>&1 \
      || { echo "run failed: see ${report%.json}.log" >&2; exit 1; }
  done
done
echo "reports in $out" >&2
python3 - "$out" "${labels[@]}" <<'SUMMARY'
import json, pathlib, statistics, sys

out, labels = pathlib.Path(sys.argv[1]), sys.argv[2:]
rows = {}  # (label, workload, phase) -> list of result rows
for label in labels:
    for report in sorted(out.glob(f"{label}-r*.json")):
        for row in json.loads(report.read_text())["results"]:
            if row.get("error") or not row.get("messages"):
                continue
            rows.setdefault((label, row["workload"], row["phase"]), []).append(row)

def median(values):
    values = [value for value in values if value is not None]
    return statistics.median(values) if values else float("nan")

print(f"{'label':<12} {'wl':<3} {'phase':<8} {'runs':>4} {'median msgs/s':>14} {'[lowest - highest]':>22} {'srv us/msg':>10} {'bench us/msg':>12} {'max steal':>9} {'deliver p50':>11}")
order = {"produce": 0, "consume": 1, "both": 2}
for (label, workload, phase), runs in sorted(rows.items(), key=lambda item: (item[0][1], order.get(item[0][2], 3), item[0][2], labels.index(item[0][0]))):
    rates = [run["msgs_per_s"] for run in runs]
    bench = [1e6 * run["bench_cpu_s"] / run["messages"] for run in runs if run.get("bench_cpu_s") is not None]
    steal = max((run.get("machine_steal_percent") or 0.0) for run in runs)
    delivery = [run["delivery_latency"]["p50_us"] for run in runs if run.get("delivery_latency")]
    delivery = f"{median(delivery):,.0f} us" if delivery else "-"
    print(f"{label:<12} {workload:<3} {phase:<8} {len(runs):>4} {median(rates):>14,.0f} {f'[{min(rates):,.0f} - {max(rates):,.0f}]':>22}"
          f" {median(run.get('cpu_us_per_message') for run in runs):>10.1f} {median(bench):>12.1f} {steal:>8.0f}% {delivery:>11}")
SUMMARY
