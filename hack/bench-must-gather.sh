#!/usr/bin/env bash
# must-gather benchmark against the in-process fake API server: 1000 ScaledObjects (each with its keda-hpa-*
# HPA) in 100 namespaces plus 3 KEDA pods with LOG_MB MB of logs each, a whole gather with the archive.
# Prints wall time of the gather, resident memory before/at the peak of the gather, the archive size, and the
# process's maximum resident set from /usr/bin/time -v. Targets: gather under 5 s; memory during the gather
# not growing with the log size (run with LOG_MB="10 40" to compare: the fake server itself holds the logs in
# memory, so compare rss_growth_during_gather_mib, not the process maximum).
#
# Usage: hack/bench-must-gather.sh [extra flags of the example: --scaledobjects N --namespaces N]
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --release --locked -p cma-must-gather --example bench-must-gather
bin=target/release/examples/bench-must-gather
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT

for mb in ${LOG_MB:-10}; do
  echo "== ${mb} MB of logs per pod"
  /usr/bin/time -v "$bin" --log-mb "$mb" --out "$out/run-$mb" "$@" 2> "$out/time-$mb.txt"
  sed '/Command being timed/,$d' "$out/time-$mb.txt"
  grep -E "Elapsed \(wall clock\)|Maximum resident set size" "$out/time-$mb.txt" | sed 's/^\t*/time: /'
done
