#!/usr/bin/env bash
# Regenerates every generated file from the Rust sources: the CRDs under config/crd/bases and the render
# golden files. Review `git diff` afterwards.
set -euo pipefail
cd "$(dirname "$0")/.."
UPDATE_CRDS=1 cargo test -q -p cma-api --test crd_drift
UPDATE_GOLDEN=1 cargo test -q -p cma-operator --test golden
git status --short config/crd crates/operator/tests/golden
