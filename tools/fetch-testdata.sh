#!/usr/bin/env bash
# Fetches the public test material the tests read, from the package registries, into
# target/testdata (ignored by git). Idempotent: a second run does nothing.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
dest="$root/target/testdata"
mkdir -p "$dest"

# Official FHIR R4 examples and definitions (CC0): example instances, SearchParameters,
# StructureDefinitions, CompartmentDefinitions.
if [ ! -f "$dest/fhir-r4-examples/package/package.json" ]; then
  tmp=$(mktemp -d)
  (cd "$tmp" && npm pack --silent hl7.fhir.r4.examples@4.0.1 >/dev/null)
  mkdir -p "$dest/fhir-r4-examples"
  tar xzf "$tmp"/hl7.fhir.r4.examples-4.0.1.tgz -C "$dest/fhir-r4-examples"
  rm -rf "$tmp"
fi
echo "test data in $dest"
