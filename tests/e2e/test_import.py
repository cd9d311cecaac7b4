"""`concord import` from the command line on a data directory no server is using, then a server
started on that directory serves what was imported (and nothing that was reported as bad)."""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

import pytest
import requests

from conftest import HTTP_TIMEOUT_S, SYNTHEA_DIR, mint_token, run_cli, running_server

GOOD_NDJSON_IDS = ["nd-good-1", "nd-good-2", "nd-good-3"]
# "FILE: line N: reason" (the reason may itself mention a line and column inside that line).
LINE_NO = re.compile(r": line (\d+):")


def two_synthea_bundles() -> list[Path]:
    files = sorted(SYNTHEA_DIR.glob("*.json"), key=lambda p: p.stat().st_size)
    if len(files) < 2:
        pytest.fail(f"need two Synthea bundles in {SYNTHEA_DIR} (run tools/fetch-testdata.sh)", pytrace=False)
    return files[:2]


def write_inputs(folder: Path) -> tuple[Counter, dict[str, Path]]:
    """Fills FOLDER with good and bad input; returns the expected resource counts per type."""
    folder.mkdir()
    expected: Counter = Counter()
    for src in two_synthea_bundles():
        bundle = json.loads(src.read_text())
        expected.update(e["resource"]["resourceType"] for e in bundle["entry"])
        (folder / src.name).write_bytes(src.read_bytes())

    def patient(pid: str, **extra) -> str:
        return json.dumps({"resourceType": "Patient", "id": pid, "name": [{"family": "Ndjson"}], **extra})

    ndjson = folder / "patients.ndjson"
    ndjson.write_text(
        "\n".join(
            [
                patient(GOOD_NDJSON_IDS[0]),  # line 1
                patient(GOOD_NDJSON_IDS[1], gender="male"),  # line 2
                '{"resourceType": "Patient", "id": "nd-malformed", "name": [',  # line 3: not JSON
                patient("nd-bad-date", birthDate="1970-13-45"),  # line 4: invalid birthDate
                patient(GOOD_NDJSON_IDS[2], birthDate="1980-05-06"),  # line 5
            ]
        )
        + "\n"
    )
    expected["Patient"] += 3

    # A batch Bundle: entries stand alone, so the good one is kept and the bad one reported.
    batch = folder / "batch.json"
    batch.write_text(
        json.dumps(
            {
                "resourceType": "Bundle",
                "type": "batch",
                "entry": [
                    {
                        "resource": {"resourceType": "Patient", "id": "batch-good", "name": [{"family": "Batchy"}]},
                        "request": {"method": "PUT", "url": "Patient/batch-good"},
                    },
                    {
                        "resource": {"resourceType": "Patient", "name": [{"family": "Batchy"}], "birthDate": "2001-02-30"},
                        "request": {"method": "POST", "url": "Patient"},
                    },
                ],
            }
        )
    )
    expected["Patient"] += 1

    garbage = folder / "notes.json"
    garbage.write_text("this is not JSON, just a note someone left in the export folder\n")
    return expected, {"ndjson": ndjson, "batch": batch, "garbage": garbage}


def failure_lines(stdout: str, path: Path) -> list[str]:
    return [line for line in stdout.splitlines() if str(path) in line or path.name in line]


def test_import_reports_failures_and_loads_the_good_resources(tmp_path):
    inputs = tmp_path / "in"
    data_dir = tmp_path / "data"
    expected, files = write_inputs(inputs)

    res = run_cli("import", "--quiet", "--data", str(data_dir), str(inputs))
    out = res.stdout
    report = f"exit {res.returncode}\n--- stdout ---\n{out}\n--- stderr ---\n{res.stderr}"
    assert res.returncode != 0, report

    # The malformed NDJSON line and the bad birthDate: file, line number and reason.
    nd = {int(m.group(1)): line for line in failure_lines(out, files["ndjson"]) if (m := LINE_NO.search(line))}
    assert sorted(nd) == [3, 4], report
    assert "json" in nd[3].lower(), report
    assert "1970-13-45" in nd[4] and "birthDate" in nd[4], report

    # The bad batch entry: file, entry index (0-based, as Bundle.entry[1]) and reason.
    batch = failure_lines(out, files["batch"])
    assert len(batch) == 1, report
    assert re.search(r": entry 1:", batch[0]) and "2001-02-30" in batch[0], report

    # The file that is not JSON at all.
    garbage = failure_lines(out, files["garbage"])
    assert len(garbage) == 1 and "json" in garbage[0].lower(), report

    # Nothing from the Synthea bundles failed, and the summary counts the good ones.
    for src in two_synthea_bundles():
        assert not failure_lines(out, inputs / src.name), report
    m = re.search(r"imported (\d+) resources", out)
    assert m, report
    assert int(m.group(1)) == sum(expected.values()), report
    m = re.search(r"(\d+) failures?", out)
    assert m and int(m.group(1)) == 4, report

    # A server on the imported directory serves exactly the good resources.
    with running_server(data_dir, tmp_path / "logs") as server:
        token = mint_token(data_dir)
        headers = {"Authorization": f"Bearer {token}", "Accept": "application/fhir+json"}

        def count(resource_type: str, **params) -> int:
            r = requests.get(
                f"{server.base_url}/{resource_type}",
                params={"_summary": "count", **params},
                headers=headers,
                timeout=HTTP_TIMEOUT_S,
            )
            assert r.status_code == 200, r.text
            bundle = r.json()
            assert bundle["resourceType"] == "Bundle" and bundle["type"] == "searchset"
            assert not bundle.get("entry"), "_summary=count returns no entries"
            return bundle["total"]

        got = {rtype: count(rtype) for rtype in expected}
        assert got == dict(expected)
        assert count("Patient", family="Ndjson") == 3

        for pid in [*GOOD_NDJSON_IDS, "batch-good"]:
            r = requests.get(f"{server.base_url}/Patient/{pid}", headers=headers, timeout=HTTP_TIMEOUT_S)
            assert r.status_code == 200, (pid, r.text)
            assert r.json()["id"] == pid
        for pid in ["nd-malformed", "nd-bad-date"]:
            r = requests.get(f"{server.base_url}/Patient/{pid}", headers=headers, timeout=HTTP_TIMEOUT_S)
            assert r.status_code == 404, (pid, r.status_code, r.text)
