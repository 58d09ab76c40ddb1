#!/usr/bin/env bash
# Benchmarks the release operator binary against the fake API server served over HTTP on localhost:
# time from KedaController creation to every object applied and to the first complete reconcile,
# requests by verb, requests in a steady-state window, peak RSS and binary size.
# Usage: hack/bench-controller.sh [steady-seconds] [extra operator flags...]
set -euo pipefail
cd "$(dirname "$0")/.."
steady=${1:-60}
shift || true
port=${PORT:-18080}
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT

bin=${CARGO_TARGET_DIR:-target}/release
cargo build --release --locked -q -p cma-operator -p cma-tests --bin cma-operator --bin fake-apiserver
cat > "$work/kubeconfig" <<CFG
apiVersion: v1
kind: Config
clusters: [{name: fake, cluster: {server: "http://127.0.0.1:$port"}}]
users: [{name: fake, user: {token: bench}}]
contexts: [{name: fake, context: {cluster: fake, user: fake}}]
current-context: fake
CFG

"$bin/fake-apiserver" --port "$port" --steady-seconds "$steady" --report "$work/report.json" &
fake_pid=$!
sleep 0.5
KUBECONFIG="$work/kubeconfig" /usr/bin/time -v "$bin/cma-operator" run --operator-namespace keda \
  --metrics-bind-address 127.0.0.1:0 --health-probe-bind-address 127.0.0.1:0 --log-level warn "$@" \
  2> "$work/operator.err" &
time_pid=$!
until [ -f "$work/report.json" ]; do
  kill -0 "$fake_pid" 2>/dev/null || { echo "the fake API server died" >&2; exit 1; }
  sleep 1
done
# SIGTERM the operator (a child of /usr/bin/time), then the fake API server.
pkill -TERM -P "$time_pid" || true
wait "$time_pid" || true
kill "$fake_pid" 2>/dev/null || true

cat "$work/report.json"
echo
echo "peak RSS (KiB): $(grep 'Maximum resident set size' "$work/operator.err" | awk '{print $NF}')"
echo "release binary: $(stat -c %s "$bin/cma-operator") bytes"
grep -E "ERROR|panicked" "$work/operator.err" || true
