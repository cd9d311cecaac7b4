"""HL7 v2 feeds end to end: the real binary with an MLLP listener, a real MLLP client (`mllp_send`
from Python's `hl7` package) sending the shared sample messages, the stored FHIR read back, the
dead letters listed by the CLI, and a kill -9 in the middle of a stream losing no acknowledged
message.
"""

from __future__ import annotations

import re
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest
import requests

from conftest import HTTP_TIMEOUT_S, ROOT, mint_token, run_cli, running_server

MESSAGES = (ROOT / ".." / "shared" / "testdata" / "hl7v2" / "messages").resolve()
MAPPED = ("ADT", "ORU", "SIU", "MDM")
SB, EB = b"\x0b", b"\x1c\r"


def unique_messages() -> list[tuple[str, bytes]]:
    """The shared samples reuse control ids (MSG00001 in most); give each its own MSH-10, as a
    real sender would. (A reused id with other content is kept as a dead letter: tested below.)"""
    out = []
    for path in sorted(MESSAGES.glob("*.hl7")):
        msh, sep, rest = path.read_bytes().partition(b"\r")
        fields = msh.split(b"|")
        fields[9] = path.stem.encode()
        out.append((path.stem, b"|".join(fields) + sep + rest))
    return out


def mllp_send(path: Path, port: int) -> subprocess.CompletedProcess:
    """The `hl7` package's MLLP client, from the test's own virtualenv, bounded in time."""
    client = Path(sys.executable).parent / "mllp_send"
    return subprocess.run(
        ["timeout", "120", str(client), "--loose", "-f", str(path), "-p", str(port), "127.0.0.1"],
        capture_output=True, text=True, timeout=150)


def msa_codes(output: str) -> list[str]:
    return re.findall(r"MSA\|([A-Z]{2})\|", output)


@pytest.fixture
def feed_server(tmp_path):
    with running_server(tmp_path / "data", tmp_path / "logs", mllp=True) as server:
        server.token = mint_token(server.data_dir)
        yield server


def count(server, query: str) -> int:
    r = requests.get(f"{server.base_url}/{query}", params={"_summary": "count"},
                     headers=server.headers(), timeout=HTTP_TIMEOUT_S)
    assert r.status_code == 200, r.text
    return r.json()["total"]


def test_mllp_send_delivers_the_shared_messages(feed_server, tmp_path):
    messages = unique_messages()
    batch = tmp_path / "all.hl7"
    batch.write_bytes(b"\r".join(text.rstrip(b"\r\n") for _, text in messages) + b"\r")
    result = mllp_send(batch, feed_server.mllp_port)
    assert result.returncode == 0, result.stderr
    codes = msa_codes(result.stdout)
    assert len(codes) == len(messages), result.stdout[-2000:]
    for (name, _), code in zip(messages, codes):
        if name.split("-")[0] in MAPPED:
            assert code in ("AA", "CA"), f"{name}: {code}"
        else:
            # Not mapped: AE, or CA where the message asked for enhanced acknowledgement (the
            # commit accept comes once it is logged); a dead letter either way.
            assert code in ("AE", "CA"), f"{name} is not mapped: {code}"
    assert count(feed_server, "Patient") > 0
    assert count(feed_server, "Encounter") > 0
    assert count(feed_server, "DiagnosticReport") > 0
    assert count(feed_server, "Appointment") > 0
    assert count(feed_server, "DocumentReference") > 0

    listed = run_cli("feed", "dead-letters", "list", "--data", str(feed_server.data_dir))
    assert listed.returncode == 0, listed.stderr
    unmapped = [name for name, _ in messages if name.split("-")[0] not in MAPPED]
    assert f"{len(unmapped)} dead letter(s)" in listed.stdout
    assert "BAR^P01" in listed.stdout

    # The samples as shipped reuse one control id for different MDM messages: each reuse is kept
    # as a dead letter, not applied and not dropped.
    # Sending the same batch again is acknowledged the same way and applies nothing twice.
    before = count(feed_server, "Patient")
    again = mllp_send(batch, feed_server.mllp_port)
    assert msa_codes(again.stdout) == codes
    assert count(feed_server, "Patient") == before


def test_hl7v2_over_http_needs_a_token_and_answers_with_an_ack(feed_server):
    name, text = unique_messages()[3]
    url = f"{feed_server.root_url}/hl7v2"
    anonymous = requests.post(url, data=text, headers={"Content-Type": "x-application/hl7-v2+er7"},
                              timeout=HTTP_TIMEOUT_S)
    assert anonymous.status_code == 401
    r = requests.post(url, data=text, timeout=HTTP_TIMEOUT_S,
                      headers={"Authorization": f"Bearer {feed_server.token}",
                               "Content-Type": "x-application/hl7-v2+er7"})
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("x-application/hl7-v2+er7")
    assert msa_codes(r.text) == ["AA"], f"{name}: {r.text}"


def a04(patient_id: str) -> bytes:
    """The A04 sample as a new patient: its own control id and every PID-3 identifier its own
    (the mapping keys the Patient on them)."""
    text = (MESSAGES / "ADT-A04-01.hl7").read_bytes()
    text = text.replace(b"|MSG00001|", f"|{patient_id}|".encode())
    text = text.replace(b"PATID1234^", f"{patient_id}P^".encode())
    text = text.replace(b"~123456789^", f"~{patient_id}S^".encode())
    return text.replace(b"|1234567^4^M11^", f"|{patient_id}^4^M11^".encode())


def test_killing_the_server_mid_stream_loses_no_acknowledged_message(tmp_path):
    data, logs = tmp_path / "data", tmp_path / "logs"
    acked: list[str] = []
    with running_server(data, logs, mllp=True) as server:
        stop = threading.Event()

        def stream():
            with socket.create_connection(("127.0.0.1", server.mllp_port), timeout=10) as s:
                buffer = b""
                while not stop.is_set():
                    pid = "K" + uuid.uuid4().hex[:10]
                    try:
                        s.sendall(SB + a04(pid) + EB)
                        while EB not in buffer:
                            chunk = s.recv(65536)
                            if not chunk:
                                return
                            buffer += chunk
                    except OSError:
                        return
                    ack, _, buffer = buffer.partition(EB)
                    if b"MSA|AA|" in ack:
                        acked.append(pid)

        sender = threading.Thread(target=stream)
        sender.start()
        deadline = time.monotonic() + 30
        while len(acked) < 20 and time.monotonic() < deadline:
            time.sleep(0.05)
        server.killed = True
        server.proc.send_signal(signal.SIGKILL)
        server.proc.wait(timeout=10)
        stop.set()
        sender.join(timeout=10)
    assert len(acked) >= 20, "the stream got going before the kill"

    with running_server(data, logs) as server:
        token = mint_token(server.data_dir)
        for pid in acked:
            r = requests.get(f"{server.base_url}/Patient", params={"identifier": pid, "_summary": "count"},
                             headers={"Authorization": f"Bearer {token}"}, timeout=HTTP_TIMEOUT_S)
            assert r.json()["total"] == 1, f"acknowledged message for {pid} was lost"
