"""Posts transaction Bundles to a Concord server over HTTP with N concurrent clients and prints
resources/s. Part of tools/bench.sh; stdlib only so it runs anywhere."""
import concurrent.futures
import json
import sys
import time
import urllib.request

base, token, workers = sys.argv[1], sys.argv[2], int(sys.argv[3])
files = sys.argv[4:]
bodies = [open(f, "rb").read() for f in files]
entries = sum(len(json.loads(b).get("entry", [])) for b in bodies)


def post(body):
    request = urllib.request.Request(
        base, data=body, method="POST",
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/fhir+json"})
    with urllib.request.urlopen(request, timeout=300) as response:
        if response.status != 200:
            raise SystemExit(f"transaction failed: {response.status}")
        return response.read()


started = time.monotonic()
with concurrent.futures.ThreadPoolExecutor(workers) as pool:
    list(pool.map(post, bodies))
elapsed = time.monotonic() - started
print(f"http-import: {entries} resources in {len(bodies)} transactions, {elapsed:.1f} s, "
      f"{entries / elapsed:.0f} resources/s ({workers} concurrent clients)")
