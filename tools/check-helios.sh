#!/usr/bin/env bash
# Shows that any FHIR R4 server works as a federated source, with one that is not Concord: Helios
# FHIR Server (https://github.com/HeliosSoftware/hfs). It loads one person's GP record (as a demo
# organisation answered it) into Helios, lets a `concord serve` hub federate Helios with
# `fetch = "search"` (plain `[type]?patient=` searches, nothing Concord-specific), and reads the
# person's `$everything` and `$summary` through the hub.
#
# Not run in CI: Helios takes about an hour to build on 2 cores. Build it once:
#   cargo install helios-hfs --version 0.2.7 --locked --no-default-features --features R4,sqlite
#
#   HFS_BIN=path/to/hfs CONCORD_BIN=path/to/concord RECORD=gp.json OTHER=other.json tools/check-helios.sh
# RECORD is a searchset Bundle of one person's record, OTHER another person's (tools/bench/
# federation.sh leaves one per organisation in $WORK/recorded/). With OTHER loaded too, the check
# also shows that the hub never shows the other person's records, even from a server that
# ignores the patient search parameter.
set -euo pipefail
hfs=${HFS_BIN:-hfs}
concord=${CONCORD_BIN:-target/release/concord}
record=${RECORD:?set RECORD to a searchset Bundle of one person}
other=${OTHER:-}
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"' EXIT
"$hfs" --port 18700 --database-url :memory: >"$work/hfs.log" 2>&1 &
for _ in $(seq 100); do curl -fs http://127.0.0.1:18700/metadata >/dev/null 2>&1 && break; sleep 0.2; done
helios=http://127.0.0.1:18700
echo "Helios: $(curl -fs $helios/metadata | python3 -c 'import json,sys; m=json.load(sys.stdin); print(m.get("software",{}).get("name"), m.get("software",{}).get("version"), "FHIR", m.get("fhirVersion"))')"

# Load the record into Helios, resource by resource, keeping its ids so its references hold.
patient=$(python3 - "$record" "$helios" $other <<'PY'
import json, sys, urllib.request
base = sys.argv[2]
entries = json.load(open(sys.argv[1])).get("entry", [])
first = len(entries)
for extra in sys.argv[3:]:
    entries += json.load(open(extra)).get("entry", [])
patient = None; loaded = failed = 0
for n, e in enumerate(entries):
    r = e.get("resource", {})
    t, i = r.get("resourceType"), r.get("id")
    if not t or not i or t == "OperationOutcome" or t == "Person":
        continue
    r.pop("meta", None)
    req = urllib.request.Request(f"{base}/{t}/{i}", data=json.dumps(r).encode(), method="PUT",
                                 headers={"Content-Type": "application/fhir+json"})
    try:
        urllib.request.urlopen(req, timeout=30).read(); loaded += 1
    except Exception as ex:  # noqa: BLE001
        failed += 1
    if t == "Patient" and n < first:
        patient = i
print(f"{patient} {loaded} {failed}")
PY
)
set -- $patient
echo "loaded $2 resources into Helios ($3 refused); the person is Patient/$1 there"
cat >"$work/hub.toml" <<TOML
[federation]
origin = "helios-check"
[[sources]]
id = "helios-gp"
name = "A GP system on Helios FHIR Server"
ods_code = "Y99999"
kind = "gp"
base_url = "$helios"
fetch = "search"
TOML
"$concord" serve --listen 127.0.0.1:18701 --data "$work/hub" --config "$work/hub.toml" 2>"$work/hub.log" &
for _ in $(seq 100); do curl -fs http://127.0.0.1:18701/readyz >/dev/null 2>&1 && break; sleep 0.1; done
# The check reads as a system caller: it is about what a non-Concord source answers, not access.
token=$("$concord" token issue --data "$work/hub" --sub check --system --scope 'system/*.*')
hub=http://127.0.0.1:18701/fhir
curl -fs -o /dev/null -X PUT -H "Authorization: Bearer $token" -H 'Content-Type: application/fhir+json' \
  "$hub/Patient?identifier=https://concord.health/fhir/sid/source/helios-gp|$1" \
  -d "{\"resourceType\":\"Patient\",\"identifier\":[{\"system\":\"https://concord.health/fhir/sid/source/helios-gp\",\"value\":\"$1\"}],\"name\":[{\"family\":\"Check\"}],\"birthDate\":\"1960-01-01\"}"
id=$(curl -fs -H "Authorization: Bearer $token" "$hub/Patient?identifier=https://concord.health/fhir/sid/source/helios-gp|$1" |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["entry"][0]["resource"]["id"])')
for op in '$everything?_count=1000' '$summary'; do
  curl -fs -H "Authorization: Bearer $token" "$hub/Patient/$id/$op" | python3 -c '
import collections, json, sys
b = json.load(sys.stdin)
types = collections.Counter(e["resource"]["resourceType"] for e in b["entry"])
print(sys.argv[1], "->", b["type"], dict(types))
for e in b["entry"]:
    r = e["resource"]
    if r["resourceType"] == "OperationOutcome":
        for i in r["issue"]:
            print("   source:", (i.get("details", {}).get("coding") or [{}])[0].get("code", i.get("code")), "-", i.get("diagnostics"))
' "$op"
done
