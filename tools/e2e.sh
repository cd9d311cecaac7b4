#!/usr/bin/env bash
# End-to-end test: builds the real `concord` binary and drives it with Python's fhirpy (and the
# `concord import` / `concord token` CLI) through pytest. The tests start their own servers on free
# 127.0.0.1 ports with temporary data directories (tests/e2e/conftest.py).
#
#   tools/e2e.sh [PYTEST ARGS...]      e.g. tools/e2e.sh -k paging
#
# Environment: CONCORD_BIN (default: target/debug/concord, built here) names the binary to test.
# The Python dependencies are pinned in tests/e2e/requirements.txt and installed into
# target/e2e-venv, created if missing and refreshed when the requirements change.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

venv="$root/target/e2e-venv"
reqs="$root/tests/e2e/requirements.txt"
stamp="$venv/.requirements.sha256"
python=${PYTHON:-python3}

make_venv() {
  rm -rf "$venv"
  if ! "$python" -m venv "$venv"; then
    # Debian's python3 needs python3-venv for ensurepip.
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
      echo "e2e: installing python3-venv"
      apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
      rm -rf "$venv"
      "$python" -m venv "$venv"
    else
      echo "e2e: '$python -m venv' failed; install python3-venv" >&2
      exit 1
    fi
  fi
}

want=$(sha256sum "$reqs" | cut -d' ' -f1)
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import sys' 2>/dev/null; then
  echo "e2e: creating $venv"
  make_venv
fi
if [ "$(cat "$stamp" 2>/dev/null || true)" != "$want" ]; then
  echo "e2e: installing $(grep -v '^#' "$reqs" | tr '\n' ' ')"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-input -r "$reqs"
  echo "$want" >"$stamp"
fi

if [ -z "${CONCORD_BIN:-}" ]; then
  echo "e2e: cargo build -p concord"
  cargo build -p concord --locked
  CONCORD_BIN="${CARGO_TARGET_DIR:-$root/target}/debug/concord"
fi
case "$CONCORD_BIN" in /*) ;; *) CONCORD_BIN="$root/$CONCORD_BIN" ;; esac
if [ ! -x "$CONCORD_BIN" ]; then
  echo "e2e: no executable at CONCORD_BIN=$CONCORD_BIN" >&2
  exit 1
fi
export CONCORD_BIN

if ! compgen -G "$root/../shared/testdata/synthea/*.json" >/dev/null; then
  echo "e2e: warning: no Synthea bundles in ../shared/testdata/synthea; the tests that need them will fail" >&2
fi

echo "e2e: pytest against $CONCORD_BIN"
# No cache or bytecode left in the work tree. Every wait in the tests is bounded (conftest.py).
export PYTHONDONTWRITEBYTECODE=1
exec "$venv/bin/python" -m pytest -q -p no:cacheprovider tests/e2e "$@"
