#!/usr/bin/env bash
# must-gather benchmark against the real API server (cma_testkit's control plane: etcd, kube-apiserver and
# kube-controller-manager v1.36 on loopback): 1000 ScaledObjects (each with its keda-hpa-* HPA) in 100
# namespaces, one cma-operator installation whose 3 KEDA pods have LOG_MB MB of logs each (served by the test
# kubelet, proxied by the API server), then the release cma-must-gather binary, archive on, under
# /usr/bin/time -v. Prints the gather's wall time, its maximum resident set, the archive size and the summary.
# Targets: gather under 5 s; the resident set not growing with the log size (run with LOG_MB="10 40" to compare:
# logs are streamed to disk line by line).
#
# Needs the control-plane binaries (CMA_K8S_BIN, or ../shared/k8s as the tests use them).
# Usage: hack/bench-must-gather.sh [extra flags of the example: --scaledobjects N --namespaces N]
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --release --locked -p cma-must-gather --bin cma-must-gather --example bench-must-gather
bench=target/release/examples/bench-must-gather
bin=target/release/cma-must-gather
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT

for mb in ${LOG_MB:-10}; do
  echo "== ${mb} MB of logs per pod"
  "$bench" --bin "$bin" --log-mb "$mb" --out "$out/run-$mb" "$@"
done
