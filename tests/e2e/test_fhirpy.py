"""Drives the real Concord binary with fhirpy's sync client, as a FHIR client application would.

One server (session fixture) serves every test here; each test makes its own data with unique
identifiers so the tests do not depend on each other or on their order.
"""

from __future__ import annotations

import json
import uuid
from collections import Counter

import pytest
import requests
from fhirpy import SyncFHIRClient
from fhirpy.base.exceptions import AuthorizationError, ResourceNotFound

from conftest import HTTP_TIMEOUT_S, SYNTHEA_DIR

NHS_NUMBER_SYSTEM = "https://fhir.nhs.uk/Id/nhs-number"


@pytest.fixture
def client(concord) -> SyncFHIRClient:
    base, token = concord
    return SyncFHIRClient(
        base,
        authorization=f"Bearer {token}",
        requests_config={"timeout": HTTP_TIMEOUT_S},
    )


def unique(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:12]}"


def new_patient(client: SyncFHIRClient, family: str | None = None, **extra):
    patient = client.resource(
        "Patient",
        name=[{"family": family or unique("Fam"), "given": ["Ada"]}],
        gender="female",
        birthDate="1970-01-02",
        **extra,
    )
    patient.save()
    return patient


def new_observation(client: SyncFHIRClient, patient, value: float, code: str = "8867-4"):
    obs = client.resource(
        "Observation",
        status="final",
        code={"coding": [{"system": "http://loinc.org", "code": code, "display": "Heart rate"}]},
        subject={"reference": f"Patient/{patient.id}"},
        valueQuantity={"value": value, "unit": "/min", "system": "http://unitsofmeasure.org", "code": "/min"},
    )
    obs.save()
    return obs


def outcome_of(response: requests.Response) -> dict:
    assert response.headers.get("content-type", "").startswith(
        ("application/fhir+json", "application/json")
    ), response.headers
    body = response.json()
    assert body["resourceType"] == "OperationOutcome", body
    assert body["issue"], body
    return body


# --- create, read, update -------------------------------------------------------------------


def test_create_read_update_patient(client, concord_server, http):
    family = unique("Lovelace")
    patient = new_patient(client, family)
    assert patient.id
    assert patient["meta"]["versionId"] == "1"

    fetched = client.resources("Patient").search(_id=patient.id).get()
    assert fetched.id == patient.id
    assert fetched["name"][0]["family"] == family
    again = client.reference("Patient", patient.id).to_resource()
    assert again["birthDate"] == "1970-01-02"

    patient["name"][0]["given"] = ["Augusta", "Ada"]
    patient.save()
    assert patient.id == fetched.id
    assert patient["meta"]["versionId"] == "2"

    r = http.get(f"{concord_server.base_url}/Patient/{patient.id}")
    assert r.status_code == 200
    assert r.headers["ETag"] == 'W/"2"'
    body = r.json()
    assert body["meta"]["versionId"] == "2"
    assert body["name"][0]["given"] == ["Augusta", "Ada"]

    # The first version is still there (vread).
    v1 = http.get(f"{concord_server.base_url}/Patient/{patient.id}/_history/1")
    assert v1.status_code == 200
    assert v1.json()["name"][0]["given"] == ["Ada"]
    assert v1.json()["meta"]["versionId"] == "1"


def test_conditional_create_returns_existing(client, concord_server, http):
    value = unique("mrn-")
    system = "http://example.org/e2e/mrn"
    first = new_patient(client, identifier=[{"system": system, "value": value}])

    body = {
        "resourceType": "Patient",
        "identifier": [{"system": system, "value": value}],
        "name": [{"family": "Duplicate"}],
    }
    r = http.post(
        f"{concord_server.base_url}/Patient",
        data=json.dumps(body),
        headers={"Content-Type": "application/fhir+json", "If-None-Exist": f"identifier={system}|{value}"},
    )
    assert r.status_code == 200, r.text
    if r.content:
        assert r.json()["id"] == first.id
    if "Location" in r.headers:
        assert f"/Patient/{first.id}" in r.headers["Location"]

    matches = client.resources("Patient").search(identifier=f"{system}|{value}").fetch_all()
    assert [p.id for p in matches] == [first.id]
    assert matches[0]["name"][0]["family"] != "Duplicate"


# --- transaction with a real Synthea bundle ---------------------------------------------------


def smallest_synthea_bundle():
    files = sorted(SYNTHEA_DIR.glob("*.json"), key=lambda p: p.stat().st_size)
    if not files:
        pytest.fail(f"no Synthea bundles in {SYNTHEA_DIR} (run tools/fetch-testdata.sh)", pytrace=False)
    return files[0]


def test_transaction_synthea_bundle(client, concord_server, http):
    path = smallest_synthea_bundle()
    bundle = json.loads(path.read_text())
    assert bundle["type"] == "transaction"
    patient_in = next(e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Patient")
    family = patient_in["name"][0]["family"]
    synthea_id = next(
        i["value"] for i in patient_in["identifier"] if i["system"] == "https://github.com/synthetichealth/synthea"
    )

    r = http.post(
        concord_server.base_url,
        data=path.read_bytes(),
        headers={"Content-Type": "application/fhir+json"},
        timeout=120,
    )
    assert r.status_code == 200, r.text[:2000]
    resp = r.json()
    assert resp["resourceType"] == "Bundle"
    assert resp["type"] == "transaction-response"
    assert len(resp["entry"]) == len(bundle["entry"])
    statuses = Counter(e["response"]["status"].split()[0] for e in resp["entry"])
    assert statuses == {"201": len(bundle["entry"])}, statuses
    for e in resp["entry"]:
        assert e["response"].get("location"), e

    # urn:uuid references were rewritten to the new ids: the Patient is searchable and its
    # Observations point at it.
    found = client.resources("Patient").search(family=family).fetch_all()
    found = [p for p in found if any(i.get("value") == synthea_id for i in p.get("identifier", []))]
    assert len(found) == 1, found
    patient_id = found[0].id
    n_obs = sum(1 for e in bundle["entry"] if e["resource"]["resourceType"] == "Observation")
    obs = client.resources("Observation").search(subject=f"Patient/{patient_id}").limit(100).fetch_all()
    assert len(obs) == n_obs
    for o in obs:
        assert o["subject"]["reference"] == f"Patient/{patient_id}"


# --- search and paging -------------------------------------------------------------------------


def test_paging_returns_each_result_once(client):
    patient = new_patient(client)
    created = {new_observation(client, patient, 60 + i).id for i in range(25)}
    assert len(created) == 25

    search = client.resources("Observation").search(subject=f"Patient/{patient.id}").limit(10)
    first_page = search.fetch_raw()
    assert len(first_page["entry"]) == 10
    assert first_page.get("total", 25) == 25
    assert any(link["relation"] == "next" for link in first_page["link"])

    ids = [o.id for o in search.fetch_all()]
    assert len(ids) == 25
    assert Counter(ids).most_common(1)[0][1] == 1, "a resource came back twice"
    assert set(ids) == created

    assert search.count() == 25


def test_paging_next_link_is_stable_while_others_write(client):
    patient = new_patient(client)
    created = {new_observation(client, patient, 100 + i).id for i in range(25)}

    search = client.resources("Observation").search(subject=f"Patient/{patient.id}").limit(10)
    first_page = search.fetch_raw()
    next_url = next(link["url"] for link in first_page["link"] if link["relation"] == "next")
    assert "_snapshot=" in next_url and "_offset=" in next_url, next_url

    # fhirpy's iterator fetches a page only when the previous one is used up: write in between.
    it = iter(search)
    seen = [next(it).id for _ in range(10)]
    late = new_observation(client, patient, 999)
    seen += [o.id for o in it]

    assert late.id not in seen, "a resource created after the first page leaked into the paged result"
    assert len(seen) == 25
    assert len(set(seen)) == 25, Counter(seen).most_common(3)
    assert set(seen) == created

    # An update between pages (a new version, so a new lastUpdated) neither duplicates nor
    # drops the resource. This fresh search sees the late one too.
    created.add(late.id)
    it = iter(search)
    seen = [next(it).id for _ in range(10)]
    later = next(i for i in sorted(created) if i not in seen)
    moved = client.reference("Observation", later).to_resource()
    moved["valueQuantity"]["value"] = 555
    moved.save()
    assert moved["meta"]["versionId"] == "2"
    seen += [o.id for o in it]
    assert Counter(seen).most_common(1)[0][1] == 1, Counter(seen).most_common(3)
    assert set(seen) == created

    # The same next link, followed again, still gives the same page.
    page2a = requests_get_json(client, next_url)
    page2b = requests_get_json(client, next_url)
    assert [e["resource"]["id"] for e in page2a["entry"]] == [e["resource"]["id"] for e in page2b["entry"]]

    # A fresh search sees the new one.
    assert search.count() == 26


def requests_get_json(client: SyncFHIRClient, url: str) -> dict:
    r = requests.get(url, headers={"Authorization": client.authorization}, timeout=HTTP_TIMEOUT_S)
    assert r.status_code == 200, r.text
    return r.json()


def test_include_subject(client):
    patient = new_patient(client)
    for i in range(3):
        new_observation(client, patient, 70 + i)

    bundle = (
        client.resources("Observation")
        .search(subject=f"Patient/{patient.id}")
        .include("Observation", "subject")
        .fetch_raw()
    )
    modes = Counter((e["resource"]["resourceType"], e["search"]["mode"]) for e in bundle["entry"])
    assert modes == {("Observation", "match"): 3, ("Patient", "include"): 1}, modes
    included = [e for e in bundle["entry"] if e["search"]["mode"] == "include"]
    assert included[0]["resource"]["id"] == patient.id

    # fhirpy's fetch() keeps only the searched type.
    assert {o.resourceType for o in client.resources("Observation").search(
        subject=f"Patient/{patient.id}").include("Observation", "subject").fetch()} == {"Observation"}


def test_revinclude_observations(client):
    patient = new_patient(client)
    obs_ids = {new_observation(client, patient, 80 + i).id for i in range(4)}
    other = new_patient(client)
    new_observation(client, other, 1)

    bundle = (
        client.resources("Patient")
        .search(_id=patient.id)
        .revinclude("Observation", "subject")
        .fetch_raw()
    )
    matches = [e for e in bundle["entry"] if e["search"]["mode"] == "match"]
    includes = [e for e in bundle["entry"] if e["search"]["mode"] == "include"]
    assert [e["resource"]["id"] for e in matches] == [patient.id]
    assert {e["resource"]["id"] for e in includes} == obs_ids
    assert all(e["resource"]["resourceType"] == "Observation" for e in includes)


def test_patient_everything(client):
    patient = new_patient(client)
    obs_ids = {new_observation(client, patient, 90 + i).id for i in range(3)}
    other = new_patient(client)
    other_obs = new_observation(client, other, 2)

    bundle = client.reference("Patient", patient.id).execute("$everything", method="get")
    assert bundle["resourceType"] == "Bundle"
    got = Counter((e["resource"]["resourceType"], e["resource"]["id"]) for e in bundle["entry"])
    assert got[("Patient", patient.id)] == 1
    assert {rid for (rtype, rid) in got if rtype == "Observation"} == obs_ids
    assert ("Observation", other_obs.id) not in got
    assert ("Patient", other.id) not in got


def test_search_by_nhs_number(client):
    nhs = new_patient(client, identifier=[{"system": NHS_NUMBER_SYSTEM, "value": "9000000009"}])
    # Same value in another system must not match the system|value search.
    new_patient(client, identifier=[{"system": "http://example.org/other", "value": "9000000009"}])

    found = client.resources("Patient").search(identifier=f"{NHS_NUMBER_SYSTEM}|9000000009").fetch_all()
    assert [p.id for p in found] == [nhs.id]
    assert found[0]["identifier"][0]["value"] == "9000000009"

    # Value only matches both systems.
    assert len(client.resources("Patient").search(identifier="9000000009").fetch_all()) == 2
    assert client.resources("Patient").search(identifier=f"{NHS_NUMBER_SYSTEM}|9000000010").fetch_all() == []


# --- delete, auth, capability -----------------------------------------------------------------


def test_delete_then_read_is_gone(client, concord_server, http):
    patient = new_patient(client)
    patient.delete()

    r = http.get(f"{concord_server.base_url}/Patient/{patient.id}")
    assert r.status_code == 410, r.text
    outcome_of(r)
    with pytest.raises(ResourceNotFound):
        client.reference("Patient", patient.id).to_resource()
    assert client.resources("Patient").search(_id=patient.id).fetch_all() == []

    missing = http.get(f"{concord_server.base_url}/Patient/{uuid.uuid4()}")
    assert missing.status_code == 404
    outcome_of(missing)


def test_request_without_token_is_401(concord_server):
    r = requests.get(f"{concord_server.base_url}/Patient", timeout=HTTP_TIMEOUT_S)
    assert r.status_code == 401
    outcome_of(r)
    assert r.headers.get("WWW-Authenticate", "").lower().startswith("bearer")

    bad = requests.get(
        f"{concord_server.base_url}/Patient",
        headers={"Authorization": "Bearer not-a-real-token"},
        timeout=HTTP_TIMEOUT_S,
    )
    assert bad.status_code == 401
    outcome_of(bad)

    anonymous = SyncFHIRClient(concord_server.base_url, requests_config={"timeout": HTTP_TIMEOUT_S})
    with pytest.raises(AuthorizationError):
        anonymous.resources("Patient").fetch()


def test_capability_statement(concord_server):
    r = requests.get(f"{concord_server.base_url}/metadata", timeout=HTTP_TIMEOUT_S)  # public
    assert r.status_code == 200
    cs = r.json()
    assert cs["resourceType"] == "CapabilityStatement"
    assert cs["fhirVersion"] == "4.0.1"
    assert "json" in " ".join(cs["format"])
    server_rest = next(rest for rest in cs["rest"] if rest["mode"] == "server")
    patient = next(res for res in server_rest["resource"] if res["type"] == "Patient")
    params = {p["name"]: p["type"] for p in patient["searchParam"]}
    assert params.get("family") == "string"
    assert params.get("identifier") == "token"
    interactions = {i["code"] for i in patient["interaction"]}
    assert {"read", "vread", "update", "delete", "create", "search-type"} <= interactions


def test_health_endpoints_are_public(concord_server):
    for path in ("/healthz", "/readyz", "/metrics"):
        r = requests.get(f"{concord_server.root_url}{path}", timeout=HTTP_TIMEOUT_S)
        assert r.status_code == 200, (path, r.status_code, r.text[:200])


# --- JSON Patch, If-Match, history, conditional update, _sort ----------------------------------


def test_json_patch_if_match_and_history(client, concord_server, http):
    patient = new_patient(client)
    url = f"{concord_server.base_url}/Patient/{patient.id}"

    r = http.patch(
        url,
        data=json.dumps([{"op": "replace", "path": "/gender", "value": "male"}]),
        headers={"Content-Type": "application/json-patch+json", "If-Match": 'W/"1"'},
    )
    assert r.status_code == 200, r.text
    assert r.json()["gender"] == "male"
    assert r.json()["meta"]["versionId"] == "2"

    # A stale If-Match is refused with 412 and nothing changes.
    stale = http.put(
        url,
        data=json.dumps({**dict(patient), "gender": "other"}),
        headers={"Content-Type": "application/fhir+json", "If-Match": 'W/"1"'},
    )
    assert stale.status_code == 412, stale.text
    outcome_of(stale)
    assert client.reference("Patient", patient.id).to_resource()["gender"] == "male"

    history = http.get(f"{url}/_history").json()
    assert history["type"] == "history"
    assert [e["resource"]["meta"]["versionId"] for e in history["entry"]] == ["2", "1"]


def test_conditional_update(client, concord_server, http):
    system = "http://example.org/e2e/conditional"
    value = unique("cu-")
    body = {"resourceType": "Patient", "identifier": [{"system": system, "value": value}], "gender": "female"}
    headers = {"Content-Type": "application/fhir+json"}

    created = http.put(f"{concord_server.base_url}/Patient?identifier={system}|{value}", data=json.dumps(body), headers=headers)
    assert created.status_code == 201, created.text
    pid = created.json()["id"]

    updated = http.put(
        f"{concord_server.base_url}/Patient?identifier={system}|{value}",
        data=json.dumps({**body, "gender": "unknown"}),
        headers=headers,
    )
    assert updated.status_code == 200, updated.text
    assert updated.json()["id"] == pid
    assert updated.json()["meta"]["versionId"] == "2"
    assert [p.id for p in client.resources("Patient").search(identifier=f"{system}|{value}").fetch_all()] == [pid]


def test_sort_by_date(client):
    patient = new_patient(client)
    for day in (3, 1, 2):
        obs = client.resource(
            "Observation",
            status="final",
            code={"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
            subject={"reference": f"Patient/{patient.id}"},
            effectiveDateTime=f"2024-01-0{day}T10:00:00Z",
        )
        obs.save()
    search = client.resources("Observation").search(subject=f"Patient/{patient.id}")
    asc = [o["effectiveDateTime"][:10] for o in search.sort("date").fetch()]
    desc = [o["effectiveDateTime"][:10] for o in search.sort("-date").fetch()]
    assert asc == ["2024-01-01", "2024-01-02", "2024-01-03"]
    assert desc == list(reversed(asc))
