#!/usr/bin/env bash
# Browser tests: the portal's journeys in real Chromium (Debian's `chromium`, driven by
# Playwright from tests/browser) against a running `concord demo`, with an axe-core check on
# every page visited. Screenshots of every journey step go to target/browser-screenshots/ (the
# folder CI keeps as artifacts); Playwright's failure output to target/browser-results/.
#
#   tools/browser.sh [PLAYWRIGHT ARGS...]      e.g. tools/browser.sh journeys/03-break-glass.spec.js
#
# Environment: CONCORD_BIN (default: target/debug/concord, built here) names the binary;
# CHROMIUM (default: /usr/bin/chromium, installed with apt-get when missing and running as root);
# BROWSER_PEOPLE (default 16) how many demo people to generate. The demo runs with the community
# trust's server down, so a view of anyone it holds shows the partial-result bar.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

chromium=${CHROMIUM:-/usr/bin/chromium}
if [ ! -x "$chromium" ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "browser: installing Debian's chromium"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    echo "browser: no Chromium at $chromium; install Debian's chromium (apt-get install chromium)" >&2
    exit 1
  fi
fi
for tool in node npm curl; do
  if ! command -v "$tool" >/dev/null; then
    echo "browser: $tool is needed" >&2
    exit 1
  fi
done

# Playwright is used only as a driver: it never downloads a browser of its own.
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1
tests="$root/tests/browser"
stamp="$tests/node_modules/.package-lock.sha256"
want=$(sha256sum "$tests/package-lock.json" | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null || true)" != "$want" ]; then
  echo "browser: npm ci"
  (cd "$tests" && npm ci --no-audit --no-fund --loglevel=error)
  echo "$want" >"$stamp"
fi

if [ -z "${CONCORD_BIN:-}" ]; then
  echo "browser: cargo build -p concord"
  cargo build -p concord --locked
  CONCORD_BIN="${CARGO_TARGET_DIR:-$root/target}/debug/concord"
fi
case "$CONCORD_BIN" in /*) ;; *) CONCORD_BIN="$root/$CONCORD_BIN" ;; esac
if [ ! -x "$CONCORD_BIN" ]; then
  echo "browser: no executable at CONCORD_BIN=$CONCORD_BIN" >&2
  exit 1
fi
synthea="$root/../shared/testdata/synthea"
if ! compgen -G "$synthea/*.json" >/dev/null; then
  echo "browser: no Synthea bundles in $synthea (the demo's clinical content)" >&2
  exit 1
fi

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')
data=$(mktemp -d -t concord-browser-XXXXXX)
log="$root/target/browser-demo.log"
mkdir -p "$root/target"
demo_pid=
cleanup() {
  if [ -n "$demo_pid" ] && kill -0 "$demo_pid" 2>/dev/null; then
    kill "$demo_pid" 2>/dev/null || true
    wait "$demo_pid" 2>/dev/null || true
  fi
  rm -rf "$data"
}
trap cleanup EXIT

echo "browser: concord demo on 127.0.0.1:$port (log: $log)"
"$CONCORD_BIN" demo --listen "127.0.0.1:$port" --data "$data" --synthea "$synthea" \
  --people "${BROWSER_PEOPLE:-16}" --down community >"$log" 2>&1 &
demo_pid=$!

# The first run generates and loads the people; wait (bounded) until the portal answers.
url="http://127.0.0.1:$port"
for _ in $(seq 1 600); do
  if ! kill -0 "$demo_pid" 2>/dev/null; then
    echo "browser: the demo stopped before the portal answered:" >&2
    tail -n 40 "$log" >&2
    exit 1
  fi
  if [ -s "$data/people.txt" ] && curl -sf -o /dev/null "$url/portal/"; then
    break
  fi
  sleep 1
done
if ! curl -sf -o /dev/null "$url/portal/"; then
  echo "browser: the portal did not answer at $url/portal/ within 10 minutes" >&2
  tail -n 40 "$log" >&2
  exit 1
fi

shots="$root/target/browser-screenshots"
rm -rf "$shots"
mkdir -p "$shots"
echo "browser: journeys in $chromium against $url/portal/"
status=0
(cd "$tests" && PORTAL_URL="$url" DEMO_DATA="$data" SCREENSHOTS="$shots" CHROMIUM="$chromium" \
  PLAYWRIGHT_OUTPUT="$root/target/browser-results" npx --no-install playwright test "$@") || status=$?
echo "browser: screenshots in $shots"
exit "$status"
