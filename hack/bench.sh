#!/usr/bin/env bash
# Benchmarks: render of the every-field KedaController (criterion; target median under 1 ms).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo bench -p cma-operator --bench render -- "$@"
