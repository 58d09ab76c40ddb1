#!/usr/bin/env bash
# Benchmarks the release operator binary against a real kube-apiserver (the test control plane of
# crates/testkit, binaries from CMA_K8S_BIN or ../shared/k8s), as its ServiceAccount with exactly the
# committed permissions. Figures come from the API server's audit log, peak RSS from /usr/bin/time -v.
# Usage: hack/bench-controller.sh [steady-seconds]
#   BENCH_STATIC=1    benchmark a statically linked build (glibc, crt-static): no shared libraries are mapped,
#                     as in the image's static musl build, which cannot be built here
#   BENCH_TIMELINE=1  print every request up to the first complete reconcile
set -euo pipefail
cd "$(dirname "$0")/.."
steady=${1:-60}
target=${CARGO_TARGET_DIR:-target}
if [[ -n "${BENCH_STATIC:-}" ]]; then
  host=$(rustc -vV | sed -n 's/^host: //p')
  # A target directory of its own: other RUSTFLAGS would rebuild the usual one from scratch next time.
  RUSTFLAGS="-C target-feature=+crt-static" cargo build --release --locked -q -p cma-operator --bin cma-operator \
    --target "$host" --target-dir "$target/static"
  binary="$target/static/$host/release/cma-operator"
else
  cargo build --release --locked -q -p cma-operator --bin cma-operator
  binary="$target/release/cma-operator"
fi
cargo build --locked -q -p cma-tests --bin bench-controller
# One control plane is enough for the benchmark.
CMA_TEST_CONTROL_PLANES=1 "$target/debug/bench-controller" "$binary" "$steady"
