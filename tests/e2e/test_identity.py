"""The master patient index through real clients: fhirpy for FHIR writes and operations, requests
for the IHE PIXm query, against the real Concord binary.

Each test makes people with its own unique names and identifiers so tests do not interfere.
"""

from __future__ import annotations

import uuid

import pytest
from fhirpy import SyncFHIRClient
from fhirpy.base.exceptions import OperationOutcome

from conftest import HTTP_TIMEOUT_S

NHS = "https://fhir.nhs.uk/Id/nhs-number"
MRN = "https://example.org/mrn"


def nhs_number(seed: int) -> str:
    """A valid NHS number in the 999 test range, different for every seed."""
    while True:
        digits = [9, 9, 9] + [int(c) for c in f"{seed % 1_000_000:06d}"]
        total = sum(d * w for d, w in zip(digits, range(10, 1, -1)))
        check = 11 - total % 11
        if check == 11:
            check = 0
        if check != 10:
            return "".join(map(str, digits)) + str(check)
        seed += 1


@pytest.fixture
def client(concord) -> SyncFHIRClient:
    base, token = concord
    return SyncFHIRClient(base, authorization=f"Bearer {token}", requests_config={"timeout": HTTP_TIMEOUT_S})


def person(client, family, given, birth, postcode, nhs=None, mrn=None):
    identifier = [{"system": MRN, "value": mrn or uuid.uuid4().hex}]
    if nhs:
        identifier.append({"system": NHS, "value": nhs})
    p = client.resource(
        "Patient",
        identifier=identifier,
        name=[{"use": "official", "family": family, "given": [given]}],
        gender="male",
        birthDate=birth,
        address=[{"use": "home", "line": ["3 Mill Street"], "city": "Bradford", "postalCode": postcode}],
    )
    p.save()
    return p


def family_name() -> str:
    # Distinct, pronounceable surnames, so each test's people block only with each other.
    return "Q" + uuid.uuid4().hex[:8].replace("0", "o").replace("1", "l")


def test_match_finds_the_person_with_a_score_and_grade(client):
    family = family_name()
    nhs = nhs_number(uuid.uuid4().int)
    stored = person(client, family, "William", "1951-11-23", "BD1 4QT", nhs=nhs)
    probe = {"resourceType": "Patient", "name": [{"family": family, "given": ["Bill"]}], "birthDate": "1951-11-23",
             "address": [{"postalCode": "BD1 4QT"}], "identifier": [{"system": NHS, "value": nhs}]}
    result = client.resources("Patient").execute(
        "$match", method="post",
        data={"resourceType": "Parameters", "parameter": [{"name": "resource", "resource": probe},
                                                          {"name": "count", "valueInteger": 3}]})
    assert result["resourceType"] == "Bundle" and result["type"] == "searchset"
    top = result["entry"][0]
    assert top["resource"]["id"] == stored.id
    assert 0.9 < top["search"]["score"] <= 1.0
    assert top["search"]["extension"][0] == {"url": "http://hl7.org/fhir/StructureDefinition/match-grade",
                                             "valueCode": "certain"}


def test_match_rejects_a_parameters_without_a_patient(client):
    with pytest.raises(OperationOutcome) as error:
        client.resources("Patient").execute("$match", method="post",
                                            data={"resourceType": "Parameters", "parameter": []})
    assert "Patient" in str(error.value)


def test_an_invalid_nhs_number_is_refused_naming_the_identifier(client):
    with pytest.raises(OperationOutcome) as error:
        person(client, family_name(), "Ann", "1970-01-01", "LS1 1AA", nhs="9434765918")
    assert "Patient.identifier[1].value" in str(error.value)


def test_pix_cross_references_two_sources(client, http, concord):
    family = family_name()
    nhs = nhs_number(uuid.uuid4().int)
    gp = person(client, family, "Tomasz", "1992-01-30", "M14 5RX", nhs=nhs, mrn="GP-" + family)
    acute = person(client, family, "Tomasz", "1992-01-30", "M14 5RX", nhs=nhs, mrn="RX-" + family)
    answer = http.get(f"{concord[0]}/Patient/$ihe-pix", params={"sourceIdentifier": f"{MRN}|GP-{family}",
                                                               "targetSystem": MRN})
    assert answer.status_code == 200, answer.text
    params = answer.json()["parameter"]
    assert {"name": "targetIdentifier", "valueIdentifier": {"system": MRN, "value": "RX-" + family}} in params
    ids = {p["valueReference"]["reference"] for p in params if p["name"] == "targetId"}
    assert ids == {f"Patient/{gp.id}", f"Patient/{acute.id}"}
    unknown = http.get(f"{concord[0]}/Patient/$ihe-pix", params={"sourceIdentifier": f"{MRN}|nobody-{family}"})
    assert unknown.status_code == 404
    assert unknown.json()["resourceType"] == "OperationOutcome"


def test_a_steward_keeps_a_possible_match_apart(client, http, concord):
    nhs = nhs_number(uuid.uuid4().int)
    person(client, family_name(), "Jane", "1980-03-07", "LS6 2AB", nhs=nhs)
    second = person(client, family_name(), "Margaret", "1947-12-01", "BD1 4QT", nhs=nhs)
    tasks = client.resources("Task").search(status="requested", focus=f"Patient/{second.id}").fetch_all()
    assert len(tasks) == 1, "the same NHS number with another name and birth date waits for a steward"
    task = tasks[0]
    assert task["priority"] == "urgent"
    done = task.execute("$resolve-match", method="post", data={"resourceType": "Parameters", "parameter": [
        {"name": "decision", "valueCode": "keep-apart"}, {"name": "reason", "valueString": "different people"}]})
    assert done["status"] == "completed"
    assert done["businessStatus"]["coding"][0]["code"] == "kept-apart"
    again = http.post(f"{concord[0]}/Task/{task.id}/$resolve-match",
                      json={"resourceType": "Parameters", "parameter": [{"name": "decision", "valueCode": "link"}]})
    assert again.status_code == 409
