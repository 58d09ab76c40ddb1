#!/usr/bin/env bash
# Regenerates every generated file from the Rust sources: the CRDs under config/crd/bases, the render golden
# files, the plain Grafana copy of the dashboard, the operator's RBAC and the OLM bundle. Review `git diff`
# afterwards. (The console dashboard itself comes from hack/dashboard.py.)
set -euo pipefail
cd "$(dirname "$0")/.."
# Every check of a committed generated file rewrites it under UPDATE_GOLDEN=1 (cma_testkit::golden).
export UPDATE_GOLDEN=1
cargo test -q -p cma-api --test suite crd_drift::
cargo test -q -p cma-operator --test suite -- golden:: monitoring::
# The operator's permissions (config/rbac) and the bundle are derived from what the controller does.
# Only the test that rewrites them: the other rbac tests read config/rbac and would race the rewrite.
cargo test -q -p cma-tests --test suite rbac::permissions_are_exactly_what_the_operator_does
cargo test -q -p cma-bundle --test suite bundle::committed_bundle_matches_generate
git status --short config crates/operator/tests/golden bundle bundle.Dockerfile
