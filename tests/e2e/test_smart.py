"""SMART on FHIR end to end with the real `concord` binary and a real SMART client library.

A backend service (SMART Backend Services: client credentials with a private_key_jwt assertion)
is registered with `concord client add`, finds the token endpoint in
`/.well-known/smart-configuration`, gets a token, and reads through the FHIR API with Python's
`fhirclient`. A patient portal then runs the authorization code flow with PKCE through the
sign-in form, driven with `requests`, and reads with the token it got. Last, an EHR launch: the
host system (a backend service with `system/launch`) registers the patient and the signed-in
user, and the app opens on that patient with no second sign-in.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import secrets
import time
import uuid
from urllib.parse import parse_qs, urlparse

import jwt
import requests
from cryptography.hazmat.primitives.asymmetric import ec
from fhirclient import client as fhir_client
from fhirclient.auth import FHIROAuth2Auth
from fhirclient.models.patient import Patient

from conftest import HTTP_TIMEOUT_S, ORGANIZATION, run_cli

JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def new_key(kid: str) -> tuple[ec.EllipticCurvePrivateKey, dict]:
    key = ec.generate_private_key(ec.SECP256R1())
    numbers = key.public_key().public_numbers()
    jwk = {
        "kty": "EC",
        "crv": "P-256",
        "kid": kid,
        "alg": "ES256",
        "use": "sig",
        "x": b64url(numbers.x.to_bytes(32, "big")),
        "y": b64url(numbers.y.to_bytes(32, "big")),
    }
    return key, jwk


def cli_ok(*args: str) -> str:
    res = run_cli(*args, timeout=60)
    assert res.returncode == 0, f"concord {' '.join(args[:2])} failed ({res.returncode}): {res.stderr}"
    return res.stdout.strip()


def smart_configuration(server) -> dict:
    r = requests.get(f"{server.root_url}/.well-known/smart-configuration", timeout=HTTP_TIMEOUT_S)
    assert r.status_code == 200, r.text
    config = r.json()
    assert "S256" in config["code_challenge_methods_supported"]
    return config


def create_patient(server, family: str) -> str:
    token = cli_ok("token", "issue", "--data", str(server.data_dir), "--sub", "loader", "--system", "--scope", "system/*.*")
    r = requests.post(
        f"{server.base_url}/Patient",
        json={"resourceType": "Patient", "name": [{"family": family, "given": ["Ada"]}], "birthDate": "1970-01-01"},
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/fhir+json"},
        timeout=HTTP_TIMEOUT_S,
    )
    assert r.status_code == 201, r.text
    return r.json()["id"]


def fhirclient_for(server, app_id: str, access_token: str) -> fhir_client.FHIRClient:
    """A fhirclient client that presents ACCESS_TOKEN, as after its own OAuth exchange."""
    smart = fhir_client.FHIRClient(settings={"app_id": app_id, "api_base": server.base_url + "/"})
    auth = FHIROAuth2Auth()
    auth.access_token = access_token
    smart.server.auth = auth
    return smart


def assertion(key, client_id: str, token_url: str, jti: str | None = None, kid: str = "edge-1") -> str:
    now = int(time.time())
    claims = {"iss": client_id, "sub": client_id, "aud": token_url, "exp": now + 240, "jti": jti or str(uuid.uuid4())}
    return jwt.encode(claims, key, algorithm="ES256", headers={"kid": kid})


def test_backend_services_token_then_fhirclient_reads(concord_server, tmp_path):
    server = concord_server
    family = f"Smart{uuid.uuid4().hex[:8]}"
    patient_id = create_patient(server, family)

    key, jwk = new_key("edge-1")
    jwks_file = tmp_path / "edge-jwks.json"
    jwks_file.write_text(json.dumps({"keys": [jwk]}))
    cli_ok(
        "client", "add", "--data", str(server.data_dir), "--id", "edge-smart", "--backend",
        "--jwks-file", str(jwks_file), "--scope", "system/*.rs system/*.read",
    )

    token_url = smart_configuration(server)["token_endpoint"]
    signed = assertion(key, "edge-smart", token_url)
    form = {
        "grant_type": "client_credentials",
        "scope": "system/*.rs",
        "client_assertion_type": JWT_BEARER,
        "client_assertion": signed,
    }
    r = requests.post(token_url, data=form, timeout=HTTP_TIMEOUT_S)
    assert r.status_code == 200, r.text
    grant = r.json()
    assert grant["token_type"] == "Bearer"
    assert grant["scope"] == "system/*.rs"

    smart = fhirclient_for(server, "edge-smart", grant["access_token"])
    patient = Patient.read(patient_id, smart.server)
    assert patient.id == patient_id
    assert patient.name[0].family == family
    found = list(Patient.where(struct={"family": family}).perform_resources_iter(smart.server))
    assert [p.id for p in found] == [patient_id]

    # The same assertion again is a replay.
    again = requests.post(token_url, data=form, timeout=HTTP_TIMEOUT_S)
    assert again.status_code == 401
    assert again.json()["error"] == "invalid_client"


def test_authorization_code_with_pkce_through_the_sign_in_form(concord_server, tmp_path):
    server = concord_server
    family = f"Portal{uuid.uuid4().hex[:8]}"
    patient_id = create_patient(server, family)
    user = f"pat-{uuid.uuid4().hex[:8]}"
    password_file = tmp_path / "password"
    password_file.write_text("a long and secret passphrase\n")
    cli_ok(
        "user", "add", "--data", str(server.data_dir), "--id", user, "--role", "patient",
        "--patient", patient_id, "--password-file", str(password_file),
    )
    redirect_uri = "http://127.0.0.1:9/callback"
    cli_ok(
        "client", "add", "--data", str(server.data_dir), "--id", "portal-e2e", "--public",
        "--redirect-uri", redirect_uri, "--scope", "openid fhirUser launch/patient patient/*.rs offline_access",
    )
    config = smart_configuration(server)
    verifier = secrets.token_urlsafe(48)
    challenge = b64url(hashlib.sha256(verifier.encode()).digest())
    params = {
        "response_type": "code",
        "client_id": "portal-e2e",
        "redirect_uri": redirect_uri,
        "scope": "openid fhirUser launch/patient patient/*.rs offline_access",
        "state": "xyz",
        "aud": server.base_url,
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }
    browser = requests.Session()
    page = browser.get(config["authorization_endpoint"], params=params, timeout=HTTP_TIMEOUT_S)
    assert page.status_code == 200, page.text
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
    form = dict(params, csrf=csrf, username=user, password="a long and secret passphrase")
    signed_in = browser.post(config["authorization_endpoint"], data=form, allow_redirects=False, timeout=HTTP_TIMEOUT_S)
    assert signed_in.status_code == 303, signed_in.text
    location = urlparse(signed_in.headers["Location"])
    query = parse_qs(location.query)
    assert query["state"] == ["xyz"]

    r = requests.post(
        config["token_endpoint"],
        data={
            "grant_type": "authorization_code",
            "code": query["code"][0],
            "redirect_uri": redirect_uri,
            "code_verifier": verifier,
            "client_id": "portal-e2e",
        },
        timeout=HTTP_TIMEOUT_S,
    )
    assert r.status_code == 200, r.text
    grant = r.json()
    assert grant["patient"] == patient_id
    assert "refresh_token" in grant and "id_token" in grant

    smart = fhirclient_for(server, "portal-e2e", grant["access_token"])
    patient = Patient.read(patient_id, smart.server)
    assert patient.name[0].family == family

    # The patient's token reaches only her own record.
    other_id = create_patient(server, f"Other{uuid.uuid4().hex[:8]}")
    for path in (f"Patient/{other_id}", f"Patient/{other_id}/$everything", f"Observation?patient={other_id}"):
        r = requests.get(
            f"{server.base_url}/{path}",
            headers={"Authorization": f"Bearer {grant['access_token']}", "Accept": "application/fhir+json"},
            timeout=HTTP_TIMEOUT_S,
        )
        assert r.status_code == 403, f"{path}: {r.status_code} {r.text}"
        assert r.json()["resourceType"] == "OperationOutcome"


def test_ehr_launch_opens_the_app_on_the_patient_with_no_second_sign_in(concord_server, tmp_path):
    server = concord_server
    family = f"Launch{uuid.uuid4().hex[:8]}"
    patient_id = create_patient(server, family)
    doctor = f"doc-{uuid.uuid4().hex[:8]}"
    password_file = tmp_path / "password"
    password_file.write_text("another long secret passphrase\n")
    cli_ok(
        "user", "add", "--data", str(server.data_dir), "--id", doctor, "--role", "clinician",
        "--org", ORGANIZATION, "--password-file", str(password_file),
    )
    redirect_uri = "http://127.0.0.1:9/viewer"
    cli_ok(
        "client", "add", "--data", str(server.data_dir), "--id", "viewer-e2e", "--public",
        "--redirect-uri", redirect_uri, "--scope", "launch openid fhirUser user/*.rs",
    )
    key, jwk = new_key("ehr-1")
    jwks_file = tmp_path / "ehr-jwks.json"
    jwks_file.write_text(json.dumps({"keys": [jwk]}))
    cli_ok(
        "client", "add", "--data", str(server.data_dir), "--id", "ehr-host", "--backend",
        "--jwks-file", str(jwks_file), "--scope", "system/launch",
    )
    config = smart_configuration(server)
    assert "launch-ehr" in config["capabilities"]
    r = requests.post(
        config["token_endpoint"],
        data={
            "grant_type": "client_credentials",
            "scope": "system/launch",
            "client_assertion_type": JWT_BEARER,
            "client_assertion": assertion(key, "ehr-host", config["token_endpoint"], kid="ehr-1"),
        },
        timeout=HTTP_TIMEOUT_S,
    )
    assert r.status_code == 200, r.text
    host_token = r.json()["access_token"]

    # The host system says who is signed in and which patient is open.
    r = requests.post(
        f"{server.root_url}/oauth/launch",
        json={"patient": patient_id, "user": doctor},
        headers={"Authorization": f"Bearer {host_token}"},
        timeout=HTTP_TIMEOUT_S,
    )
    assert r.status_code == 200, r.text
    launch = r.json()["launch"]

    verifier = secrets.token_urlsafe(48)
    params = {
        "response_type": "code",
        "client_id": "viewer-e2e",
        "redirect_uri": redirect_uri,
        "scope": "launch openid user/*.rs",
        "state": "ehr",
        "aud": server.base_url,
        "launch": launch,
        "code_challenge": b64url(hashlib.sha256(verifier.encode()).digest()),
        "code_challenge_method": "S256",
    }
    # No sign-in form: straight back to the app with a code.
    r = requests.get(config["authorization_endpoint"], params=params, allow_redirects=False, timeout=HTTP_TIMEOUT_S)
    assert r.status_code == 303, r.text
    query = parse_qs(urlparse(r.headers["Location"]).query)
    assert query["state"] == ["ehr"]
    r = requests.post(
        config["token_endpoint"],
        data={
            "grant_type": "authorization_code",
            "code": query["code"][0],
            "redirect_uri": redirect_uri,
            "code_verifier": verifier,
            "client_id": "viewer-e2e",
        },
        timeout=HTTP_TIMEOUT_S,
    )
    assert r.status_code == 200, r.text
    grant = r.json()
    assert grant["patient"] == patient_id

    # The clinician's organisation runs this node, so the record opens.
    smart = fhirclient_for(server, "viewer-e2e", grant["access_token"])
    patient = Patient.read(grant["patient"], smart.server)
    assert patient.name[0].family == family

    # The launch is single use.
    again = requests.get(config["authorization_endpoint"], params=params, allow_redirects=False, timeout=HTTP_TIMEOUT_S)
    assert "error" in parse_qs(urlparse(again.headers.get("Location", "")).query) or again.status_code >= 400
