"""The vault's FHIR API driven by a real FHIR client (fhirpy) against a real Uvicorn
server, on SQLite and on the real PostgreSQL; and the raw files searched for PHI."""

from __future__ import annotations

import copy
import gzip
import json
import logging
import socket
import threading
import time
from datetime import timedelta
from pathlib import Path

import httpx
import pyotp
import pytest
import sqlalchemy as sa
import uvicorn
from fhirpy import SyncFHIRClient
from fhirpy.base.exceptions import ResourceNotFound

from custodes.api.app import create_app
from custodes.bootstrap import Custodes, Settings
from custodes.vault.resources import references

pytestmark = pytest.mark.integration

PASSWORD = "a long enough passphrase for tests"
#: Values planted in the vault; none may appear in any file, table or log in the clear.
PLANTED = {
    "family": "Quetzalvexillary",
    "given": "Orlaith",
    "mrn": "MRN-PLANT-938172",
    "ssn": "999-71-4826",
    "phone": "555-0199-4826",
    "note": "xylophagous planted narrative about a fictional rash",
}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(params=["sqlite", "postgresql"])
def server(request, tmp_path: Path):
    """A real Uvicorn server over a fresh data directory; an administrator's FHIR token."""
    database_url = request.getfixturevalue("postgres_url") if request.param == "postgresql" else None
    settings = Settings(
        data_dir=tmp_path / "data", database_url=database_url,
        argon2_time_cost=1, argon2_memory_kib=8, argon2_parallelism=1,
    )  # fmt: skip
    custodes = Custodes(settings)
    custodes.identity.add_user("root", "administrator", PASSWORD)
    custodes.identity.add_user("s-lee", "clinician", PASSWORD)
    custodes.totp_secret = custodes.identity.enroll_totp("s-lee").secret

    token = custodes.identity.issue_token("root", ("fhir",), timedelta(hours=1))
    other = custodes.identity.issue_token("root", ("alerts:read",), timedelta(hours=1))
    port = _free_port()
    uv = uvicorn.Server(
        # Access logs on, into the test's log capture, to show they hold no PHI.
        uvicorn.Config(create_app(custodes), host="127.0.0.1", port=port, log_level="info", ws="none",
                       log_config=None)  # fmt: skip
    )
    thread = threading.Thread(target=uv.run, daemon=True)
    thread.start()
    for _ in range(200):
        if uv.started:
            break
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}/fhir", custodes, token, other
    uv.should_exit = True
    thread.join(timeout=10)



def _expected(entry: dict, ids: dict[str, str]) -> dict:
    resource = copy.deepcopy(entry["resource"])
    for ref in references(resource):
        ref["reference"] = ids.get(ref["reference"], ref["reference"])
    return resource


def _strip(resource: dict) -> dict:
    out = dict(resource)
    meta = {k: v for k, v in (out.pop("meta", None) or {}).items() if k not in ("versionId", "lastUpdated")}
    return {**out, "meta": meta} if meta else out


def test_a_fhir_client_imports_synthea_reads_searches_and_writes(server, synthea_bundles):
    base, custodes, token, _other = server
    client = SyncFHIRClient(base, authorization=f"Bearer {token}")
    original = json.loads(gzip.decompress(synthea_bundles[0].read_bytes()))
    response = client.execute("", method="post", data=copy.deepcopy(original))
    assert response["type"] == "transaction-response" and len(response["entry"]) == len(original["entry"])
    ids = {e["fullUrl"]: f"{e['resource']['resourceType']}/{e['resource']['id']}" for e in original["entry"]}

    # Everything reads back equal (references resolved to Type/id), by the client's read.
    for entry in original["entry"]:
        expected = _expected(entry, ids)
        read = client.reference(expected["resourceType"], expected["id"]).to_resource()
        assert _strip(read.serialize()) == expected

    patient = original["entry"][0]["resource"]
    observations = client.resources("Observation").search(patient=patient["id"]).limit(1000).fetch()
    expected_obs = {e["resource"]["id"] for e in original["entry"] if e["resource"]["resourceType"] == "Observation"}
    assert {o.id for o in observations} == expected_obs
    everything = client.execute(f"Patient/{patient['id']}/$everything", method="get")
    assert len([e for e in everything["entry"] if "resource" in e]) >= len(expected_obs)
    mrn = next(i["value"] for i in patient["identifier"] if i.get("type", {}).get("text") == "Medical Record Number")
    assert [p.id for p in client.resources("Patient").search(identifier=mrn).fetch()] == [patient["id"]]

    # Create, update (a new version), vread the old one, delete.
    obs = client.resource(
        "Observation", status="final", code={"text": "pulse"}, subject={"reference": f"Patient/{patient['id']}"},
        valueQuantity={"value": 61, "unit": "/min"},
    )  # fmt: skip
    obs.save()
    assert obs.id and obs["meta"]["versionId"] == "1"
    obs["valueQuantity"] = {"value": 72, "unit": "/min"}
    obs.save()
    assert obs["meta"]["versionId"] == "2"
    first = client.execute(f"Observation/{obs.id}/_history/1", method="get")
    assert first["valueQuantity"]["value"] == 61
    obs.delete()
    with pytest.raises(ResourceNotFound, match="was deleted"):  # 410 Gone, as an OperationOutcome
        client.reference("Observation", obs.id).to_resource()
    with pytest.raises(ResourceNotFound, match="not in the vault"):
        client.reference("Observation", "no-such-id").to_resource()

    # Every act above is in the audit log, and the log verifies.
    report = custodes.audit_log.verify(custodes.audit_signing_key().public_key())
    assert report.ok and report.entries >= len(original["entry"]) * 2


def _outcome(response: httpx.Response) -> str:
    body = response.json()
    assert body["resourceType"] == "OperationOutcome", body
    assert response.headers["content-type"].startswith("application/fhir+json")
    return body["issue"][0]["diagnostics"]


def test_refusals_are_operation_outcomes_with_a_4xx(server):
    base, custodes, token, other = server
    auth = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=base, timeout=10) as http:
        r = http.get("/Patient/x")
        assert r.status_code == 401 and "sign in" in _outcome(r).lower() or r.status_code == 401
        r = http.get("/Patient/x", headers={"Authorization": f"Bearer {other}"})
        assert r.status_code == 401 and "fhir" in _outcome(r)
        r = http.post("/Patient", headers={**auth, "content-type": "application/fhir+json"}, content=b"{not json")
        assert r.status_code == 400 and _outcome(r) == "the body is not JSON"
        r = http.put("/Patient/p1", headers=auth, json={"resourceType": "Patient", "id": "p1", "birthDate": "soon"})
        assert r.status_code == 400 and "birthDate" in _outcome(r) and "soon" not in _outcome(r)
        r = http.get("/Basic/b1", headers=auth)
        assert r.status_code == 400 and "does not hold" in _outcome(r)
        r = http.get("/Patient/missing", headers=auth)
        assert r.status_code == 404
        assert r.headers["x-content-type-options"] == "nosniff" and r.headers["cache-control"] == "no-store"
        r = http.get("/Condition", headers=auth)
        assert r.status_code == 400 and "needs patient" in _outcome(r)
        r = http.post("", headers=auth, json={"resourceType": "Bundle", "type": "batch", "entry": []})
        assert r.status_code == 400 and "transaction" in _outcome(r)
        # A transaction with one bad entry writes nothing.
        bad = {"resourceType": "Bundle", "type": "transaction", "entry": [
            {"fullUrl": "urn:uuid:0a0a0a0a-0000-4000-8000-000000000001",
             "resource": {"resourceType": "Patient", "gender": "female"},
             "request": {"method": "POST", "url": "Patient"}},
            {"resource": {"resourceType": "Observation", "status": "final", "code": {"text": "x"},
                          "subject": {"reference": "urn:uuid:0a0a0a0a-0000-4000-8000-000000000001"},
                          "valueQuantity": {"value": "not a number"}},
             "request": {"method": "POST", "url": "Observation"}}]}  # fmt: skip
        r = http.post("", headers=auth, json=bad)
        assert r.status_code == 400 and "entry[1]" in _outcome(r)
        assert custodes.vault.counts() == {}
        # A clinician without a care relationship is refused, and the refusal is audited.
        http.put("/Patient/p9", headers=auth, json={"resourceType": "Patient", "id": "p9"})
        login = http.post(str(http.base_url).replace("/fhir", "") + "auth/login",
                          json={"username": "s-lee", "password": PASSWORD,
                                "totp": pyotp.TOTP(custodes.totp_secret).now()})  # fmt: skip
        assert login.status_code == 200, login.text
        session = login.json()["access_token"]
        r = http.get("/Patient/p9", headers={"Authorization": f"Bearer {session}"})
        assert r.status_code == 403 and "care relationship" in _outcome(r)
        r = http.get("/Patient/p9", headers={"Authorization": f"Bearer {session}", "X-Break-Glass-Reason": "ED"})
        assert r.status_code == 403 and "reason" in _outcome(r)
        # Break-the-glass with a stated reason, just after a second factor: allowed, reviewed.
        glass = {"Authorization": f"Bearer {session}", "X-Break-Glass-Reason": "unconscious on arrival in the ED"}
        r = http.get("/Patient/p9", headers=glass)
        assert r.status_code == 200 and r.json()["id"] == "p9"
        r = http.get("/Patient/p9", headers={"Authorization": f"Bearer {token}", "X-Break-Glass-Reason": "x" * 20})
        assert r.status_code == 403 and "session" in _outcome(r)
    bodies = [json.loads(e.body) for e in custodes.audit_store.read()]
    assert any(b["actor"] == "s-lee" and b.get("patient_id") == "p9" and not b["allowed"] for b in bodies)
    glass_entry = next(b for b in bodies if b.get("break_the_glass") and b["allowed"])
    assert glass_entry["review"] and glass_entry["purpose_of_use"] == "ETREAT"


def _plant(base: str, token: str) -> None:
    client = SyncFHIRClient(base, authorization=f"Bearer {token}")
    patient = client.resource(
        "Patient", name=[{"family": PLANTED["family"], "given": [PLANTED["given"]]}],
        identifier=[{"system": "urn:hospital:mrn", "value": PLANTED["mrn"]},
                    {"system": "http://hl7.org/fhir/sid/us-ssn", "value": PLANTED["ssn"]}],
        telecom=[{"system": "phone", "value": PLANTED["phone"]}], birthDate="1961-02-03",
    )  # fmt: skip
    patient.save()
    client.resource(
        "Condition", subject={"reference": f"Patient/{patient.id}"}, code={"text": "rash"},
        note=[{"text": PLANTED["note"]}],
    ).save()  # fmt: skip
    found = client.resources("Patient").search(identifier=PLANTED["mrn"]).fetch()
    assert [p.id for p in found] == [patient.id]
    assert client.resources("Condition").search(patient=patient.id).fetch()[0]["note"][0]["text"] == PLANTED["note"]


def _needles() -> list[bytes]:
    values = list(PLANTED.values()) + [PLANTED["ssn"].replace("-", ""), PLANTED["mrn"].replace("-", "")]
    return [v.encode() for v in values] + [v.encode("utf-16-le") for v in values] + [v.lower().encode() for v in values]


def test_no_planted_value_is_in_the_raw_files_or_the_logs(server, caplog):
    base, custodes, token, _other = server
    caplog.set_level(logging.DEBUG)
    _plant(base, token)
    custodes.audit_log.checkpoint()
    engine = custodes.engine
    if engine.dialect.name == "sqlite":
        engine.dispose()  # let SQLite write back its WAL; then read the files as a thief would
    files = [p for p in custodes.data_dir.rglob("*") if p.is_file()]
    assert any(p.name.endswith(".db") for p in files) or engine.dialect.name != "sqlite"
    for path in files:
        raw = path.read_bytes()
        for needle in _needles():
            assert needle not in raw, f"a planted value is in {path.name}"
    if engine.dialect.name == "postgresql":
        with engine.connect() as conn:
            tables = [r[0] for r in conn.execute(sa.text(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()"))]  # fmt: skip
            for table in tables:
                for (row,) in conn.execute(sa.text(f'SELECT t::text FROM "{table}" t')):  # noqa: S608
                    for needle in _needles():
                        assert needle.decode("utf-8", "ignore") not in row, f"a planted value is in {table}"
    server_side = [r for r in caplog.records if not r.name.startswith(("urllib3", "httpx", "httpcore"))]
    assert any(r.name == "uvicorn.access" and "/fhir/Patient" in r.getMessage() for r in server_side)
    logged = "\n".join(r.getMessage() for r in server_side).encode()
    for needle in _needles():
        assert needle not in logged
