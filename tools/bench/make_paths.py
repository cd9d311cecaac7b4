"""Builds the request path lists for the read and search workloads of tools/bench.sh from what
the server holds, so every request hits real data. Stdlib only."""
import json
import os
import random
import sys
import urllib.parse
import urllib.request

base, token, out = sys.argv[1], sys.argv[2], sys.argv[3]
random.seed(7)


def get(path):
    request = urllib.request.Request(base + path, headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.load(response)


def all_of(path):
    bundle = get(path)
    resources = [e["resource"] for e in bundle.get("entry", []) if e.get("search", {}).get("mode") == "match"]
    while True:
        nxt = [l["url"] for l in bundle.get("link", []) if l["relation"] == "next"]
        if not nxt:
            return resources
        bundle = get(nxt[0][len(base):])
        resources += [e["resource"] for e in bundle.get("entry", []) if e.get("search", {}).get("mode") == "match"]


prefix = urllib.parse.urlparse(base).path
patients = all_of("/Patient?_count=1000")
observations = all_of("/Observation?_count=1000&_elements=subject,code,effective")[:4000]
q = urllib.parse.quote
paths = {"read": [], "identifier": [], "patient_name": [], "obs_code_date": [], "encounter_sorted": [], "chained": []}
for p in patients:
    paths["read"].append(f"{prefix}/Patient/{p['id']}")
    for ident in p.get("identifier", [])[:1]:
        if "system" in ident and "value" in ident:
            paths["identifier"].append(f"{prefix}/Patient?identifier={q(ident['system'] + '|' + ident['value'], safe='')}")
    name = (p.get("name") or [{}])[0]
    if name.get("family") and p.get("birthDate"):
        paths["patient_name"].append(f"{prefix}/Patient?family={q(name['family'])}&birthdate={p['birthDate']}")
        paths["chained"].append(f"{prefix}/Encounter?subject:Patient.family={q(name['family'])}&_count=20")
    paths["encounter_sorted"].append(f"{prefix}/Encounter?patient=Patient/{p['id']}&_sort=-date&_count=20")
for o in observations:
    paths["read"].append(f"{prefix}/Observation/{o['id']}")
    coding = (o.get("code", {}).get("coding") or [{}])[0]
    subject = o.get("subject", {}).get("reference")
    when = o.get("effectiveDateTime", "")[:4]
    if coding.get("code") and subject and when:
        year = int(when)
        paths["obs_code_date"].append(
            f"{prefix}/Observation?patient={q(subject)}&code={q(coding.get('system', '') + '|' + coding['code'], safe='')}"
            f"&date=ge{year - 1}&date=le{year + 1}")
os.makedirs(out, exist_ok=True)
for name, items in paths.items():
    random.shuffle(items)
    with open(os.path.join(out, name + ".txt"), "w") as f:
        f.write("\n".join(items[:5000]) + "\n")
    print(f"{name}: {len(items)} paths")
