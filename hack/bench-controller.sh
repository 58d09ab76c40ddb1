#!/usr/bin/env bash
# Benchmarks the release operator binary against a real kube-apiserver (the test control plane of
# crates/testkit, binaries from CMA_K8S_BIN or ../shared/k8s), as its ServiceAccount with exactly the
# committed permissions. Figures come from the API server's audit log, peak RSS from /usr/bin/time -v.
# Usage: hack/bench-controller.sh [steady-seconds]
set -euo pipefail
cd "$(dirname "$0")/.."
steady=${1:-60}
target=${CARGO_TARGET_DIR:-target}
cargo build --release --locked -q -p cma-operator --bin cma-operator
cargo build --locked -q -p cma-tests --bin bench-controller
# One control plane is enough for the benchmark.
CMA_TEST_CONTROL_PLANES=1 "$target/debug/bench-controller" "$target/release/cma-operator" "$steady"
