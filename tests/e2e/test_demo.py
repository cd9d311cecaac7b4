"""`concord demo` end to end: the real binary starts a hub, six organisations and a neighbouring
region's hub in one process; fhirpy, as an integrator's client would, finds a person by NHS number
at the hub and reads their federated record. One organisation is down and one answers after its
deadline, and both are named in every view rather than silently left out.
"""

from __future__ import annotations

import re
import signal
import subprocess
import time
from pathlib import Path

import pytest
import requests
from fhirpy import SyncFHIRClient

from conftest import SYNTHEA_DIR, _die_with_parent, _server_env, concord_bin, free_port

START_TIMEOUT_S = 300.0
SOURCE_STATUS = "https://concord.health/fhir/CodeSystem/source-status"
SOURCE_ID = "https://concord.health/fhir/StructureDefinition/source-id"
SOURCE_ORGANIZATION = "https://concord.health/fhir/StructureDefinition/source-organization"


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    if not SYNTHEA_DIR.is_dir():
        pytest.fail(f"the demo needs the Synthea bundles at {SYNTHEA_DIR}", pytrace=False)
    work = tmp_path_factory.mktemp("demo")
    port = free_port()
    out_path, err_path = work / "stdout.log", work / "stderr.log"
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        proc = subprocess.Popen(
            [
                str(concord_bin()), "demo",
                "--listen", f"127.0.0.1:{port}",
                "--data", str(work / "data"),
                "--synthea", str(SYNTHEA_DIR),
                "--people", "12",
                "--deadline-ms", "1000",
                "--down", "ambulance",
                "--slow", "community=5000",
            ],
            stdin=subprocess.DEVNULL, stdout=out, stderr=err, env=_server_env(),
            preexec_fn=_die_with_parent,
        )
    deadline = time.monotonic() + START_TIMEOUT_S
    while "Concord demo is running" not in out_path.read_text(errors="replace"):
        if proc.poll() is not None:
            pytest.fail(f"concord demo exited with {proc.returncode}:\n{err_path.read_text()}", pytrace=False)
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"concord demo did not start in {START_TIMEOUT_S}s:\n{err_path.read_text()}", pytrace=False)
        time.sleep(0.25)
    banner = out_path.read_text()
    token = re.search(r"export TOKEN=(\S+)", banner).group(1)
    people = (work / "data" / "people.txt").read_text().splitlines()
    yield {"base": f"http://127.0.0.1:{port}/fhir", "token": token, "people": people, "proc": proc, "stderr": err_path}
    proc.send_signal(signal.SIGTERM)
    try:
        code = proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise AssertionError(f"concord demo did not stop on SIGTERM:\n{err_path.read_text()}")
    assert code == 0, f"concord demo exited {code} after SIGTERM:\n{err_path.read_text()}"


def person_at_most_organisations(people: list[str]) -> tuple[str, list[str]]:
    """(NHS number, organisation ids) of the person held by the most organisations."""
    best = max(people, key=lambda line: len(line.split(" at ", 1)[1].split("  (")[0].split(", ")))
    orgs = best.split(" at ", 1)[1].split("  (")[0].split(", ")
    return best.split()[0], orgs


def statuses(bundle: dict) -> dict[str, str]:
    """Source id -> status code, from the OperationOutcome entries of a view."""
    found = {}
    for entry in bundle.get("entry", []):
        resource = entry["resource"]
        if resource["resourceType"] != "OperationOutcome":
            continue
        for issue in resource["issue"]:
            ids = [e["valueString"] for e in issue.get("extension", []) if e["url"] == SOURCE_ID]
            codes = [c["code"] for c in issue.get("details", {}).get("coding", []) if c["system"] == SOURCE_STATUS]
            if ids and codes:
                found[ids[0]] = codes[0]
    return found


def test_a_person_is_found_by_nhs_number_and_their_summary_spans_organisations(demo):
    client = SyncFHIRClient(demo["base"], authorization=f"Bearer {demo['token']}")
    nhs, orgs = person_at_most_organisations(demo["people"])
    assert len(orgs) >= 3, demo["people"]
    records = client.resources("Patient").search(identifier=f"https://fhir.nhs.uk/Id/nhs-number|{nhs}").fetch_all()
    assert records, f"the hub has no record with NHS number {nhs}"
    patient_id = records[0]["id"]

    started = time.monotonic()
    document = client.execute(f"Patient/{patient_id}/$summary", method="get")
    elapsed = time.monotonic() - started
    assert document["resourceType"] == "Bundle" and document["type"] == "document"
    composition = document["entry"][0]["resource"]
    assert composition["resourceType"] == "Composition"
    titles = {s["title"] for s in composition["section"]}
    assert {"Problems", "Allergies and intolerances", "Medications"} <= titles, titles
    # The view waited for the slow organisation only up to its deadline (1 s), not its 5 s.
    assert elapsed < 4.5, f"the summary took {elapsed:.1f}s"

    found = statuses(document)
    assert found.get("gp") == "ok", found
    if "ambulance" in orgs:
        assert found.get("ambulance") == "failed", found
    if "community" in orgs:
        assert found.get("community") == "timeout", found
    # Every clinical entry says which organisation it came from.
    for entry in document["entry"][1:]:
        resource = entry["resource"]
        if resource["resourceType"] in ("OperationOutcome", "Patient"):
            continue
        urls = [e["url"] for e in resource.get("meta", {}).get("extension", [])]
        assert SOURCE_ORGANIZATION in urls, resource


def test_everything_pages_across_sources_and_names_the_missing_ones(demo):
    client = SyncFHIRClient(demo["base"], authorization=f"Bearer {demo['token']}")
    nhs, orgs = person_at_most_organisations(demo["people"])
    patient_id = client.resources("Patient").search(identifier=f"https://fhir.nhs.uk/Id/nhs-number|{nhs}").fetch_all()[0]["id"]
    headers = {"Authorization": f"Bearer {demo['token']}", "Accept": "application/fhir+json"}
    url = f"{demo['base']}/Patient/{patient_id}/$everything?_count=50"
    seen, total, pages = [], None, 0
    while url:
        page = requests.get(url, headers=headers, timeout=30).json()
        total = page["total"]
        pages += 1
        outcome_entries = [e for e in page["entry"] if e["resource"]["resourceType"] == "OperationOutcome"]
        assert len(outcome_entries) == 1, "every page names the sources"
        seen += [e["fullUrl"] for e in page["entry"] if e["resource"]["resourceType"] != "OperationOutcome"]
        url = next((link["url"] for link in page.get("link", []) if link["relation"] == "next"), None)
    assert pages > 1 and len(seen) == total == len(set(seen)), (pages, len(seen), total)
    # Each organisation that holds the person and answered contributed its own Patient record.
    patients = [u for u in seen if "/Patient/" in u]
    answered = [o for o in orgs if o not in ("ambulance", "community")]
    assert len(patients) >= len(answered), (patients, orgs)


def test_a_request_without_a_token_is_refused(demo):
    r = requests.get(f"{demo['base']}/Patient", timeout=10)
    assert r.status_code == 401
    assert r.json()["resourceType"] == "OperationOutcome"
