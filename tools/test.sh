#!/usr/bin/env bash
# The project's test command (README.md): formatting, lints, every Rust test, and the end-to-end
# test that drives the real binary with a third-party FHIR client (Python fhirpy), and the portal's
# journeys in real Chromium with an accessibility check on every page (tools/browser.sh).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

echo "== test data"
./tools/fetch-testdata.sh

echo "== rustfmt"
cargo fmt --all --check

echo "== clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings

echo "== cargo test"
cargo test --workspace --locked

# The end-to-end and browser tests drive the `concord` binary that `cargo test` has just built
# (the concord crate's CLI tests run it through CARGO_BIN_EXE_concord). Building it again with
# `cargo build -p concord` would resolve features for that one package, not the workspace's
# tests, and so compile a second copy of a dozen dependencies: 2.5 minutes of CI on a slow host.
export CONCORD_BIN="${CONCORD_BIN:-${CARGO_TARGET_DIR:-$root/target}/debug/concord}"

echo "== end-to-end (fhirpy against the real binary)"
./tools/e2e.sh

echo "== browser (the portal in Chromium, with axe-core)"
./tools/browser.sh
