"""``custodes keys`` and ``custodes audit`` as an operator runs them."""

from __future__ import annotations

import gzip
import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

from custodes.bootstrap import Custodes, Settings
from custodes.keys import RecordRef, Tier


def custodes(*args: str, data_dir: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "CUSTODES_DATA_DIR": str(data_dir), "CUSTODES_AUDIT_CHECKPOINT_EVERY": "2"}
    env.pop("CUSTODES_DATABASE_URL", None)
    return subprocess.run([sys.executable, "-m", "custodes", *args], capture_output=True,
                          text=True, env=env, timeout=120)  # fmt: skip


def test_rotate_verify_tamper_export(tmp_path: Path) -> None:
    app = Custodes(Settings(data_dir=tmp_path))
    refs = [RecordRef(f"o{i}", "Observation", 1, Tier.STANDARD, patient_id=f"p{i}") for i in range(3)]
    sealed = [app.envelope.seal(r, b"secret") for r in refs]

    rotated = custodes("keys", "rotate", "--json", data_dir=tmp_path)
    assert rotated.returncode == 0, rotated.stderr
    assert json.loads(rotated.stdout.splitlines()[-1]) == {"version": 2, "rewrapped": 3, "live_versions": [2]}
    for _ in range(3):
        assert custodes("keys", "rotate", data_dir=tmp_path).returncode == 0
    status = json.loads(custodes("keys", "status", "--json", data_dir=tmp_path).stdout.splitlines()[-1])
    assert status["current_version"] == 5 and status["scope_keys_by_version"] == {"5": 3}
    fresh = Custodes(Settings(data_dir=tmp_path))
    assert [fresh.envelope.open(r, s) for r, s in zip(refs, sealed, strict=True)] == [b"secret"] * 3

    verified = custodes("audit", "verify", "--json", data_dir=tmp_path)
    assert verified.returncode == 0, verified.stderr
    report = json.loads(verified.stdout.splitlines()[-1])
    assert report["ok"] and report["entries"] == 4 and report["checkpoints"] == 2

    review = custodes("audit", "review", "--json", data_dir=tmp_path)
    queued = json.loads(review.stdout.splitlines()[-1])["review"]
    assert [q["position"] for q in queued] == [3, 2, 1, 0]  # every rotation, newest first

    exported = custodes("audit", "export", "--format", "fhir", data_dir=tmp_path)
    lines = [json.loads(line) for line in exported.stdout.splitlines()]
    assert [r["id"] for r in lines] == ["audit-0", "audit-1", "audit-2", "audit-3"]

    with sqlite3.connect(tmp_path / "custodes.db") as db:  # an attacker with the file
        db.execute("DROP TRIGGER audit_entries_no_update")
        db.execute("UPDATE audit_entries SET body = replace(body, 'cli', 'eve') WHERE position = 2")
    broken = custodes("audit", "verify", data_dir=tmp_path)
    assert broken.returncode == 1
    assert broken.stderr.strip().splitlines() == [
        "audit log does not verify at position 2: entry 2 does not match the chain"
    ]


def test_bad_input_is_one_line(tmp_path: Path) -> None:
    wrong = custodes("audit", "export", "--format", "csv", data_dir=tmp_path)
    assert wrong.returncode == 1
    assert wrong.stderr.strip() == "error: --format 'csv' is not supported; use fhir"
    (tmp_path / "keyring.json").write_text("{}")
    os.chmod(tmp_path / "keyring.json", 0o644)
    loose = custodes("keys", "status", data_dir=tmp_path)
    assert loose.returncode == 1
    assert loose.stderr.strip().startswith("error: key file keyring.json is readable by others")


def test_exported_audit_events_ingest_as_access_events(tmp_path: Path) -> None:
    from datetime import UTC, datetime

    from custodes.audit import AuditEntry
    from custodes.core.events import Action

    app = Custodes(Settings(data_dir=tmp_path / "vault"))
    at = datetime(2026, 3, 2, 9, tzinfo=UTC)
    app.audit_log.record(AuditEntry(at, "dr-lee", Action.READ, patient_id="p1",
                                    resource_type="Observation", resource_id="o1"))  # fmt: skip
    app.audit_log.record(AuditEntry(at, "fd-kim", Action.READ, allowed=False, patient_id="p2",
                                    resource_type="Condition", resource_id="c1"))  # fmt: skip
    for name in ("keyring.json", "audit-signing.key"):
        _ = app.keyring if name == "keyring.json" else app.audit_signing_key()
        assert (tmp_path / "vault" / name).stat().st_mode & 0o777 == 0o600
    out = tmp_path / "audit.ndjson"
    exported = custodes("audit", "export", "--out", str(out), data_dir=tmp_path / "vault")
    assert exported.returncode == 0, exported.stderr
    ingested = custodes("ingest", "events", str(out), "--json", data_dir=tmp_path / "monitor")
    assert ingested.returncode == 0, ingested.stderr
    counts = json.loads(ingested.stdout.splitlines()[-1])
    assert counts["accepted"] == 2 and counts["quarantined"] == 0


SYNTHEA = Path(__file__).resolve().parents[1] / "fixtures" / "synthea-r4"


def test_vault_import_reads_back_refuses_a_bad_bundle_and_erases(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"resourceType": "Bundle", "type": "transaction", "entry": [{"resource": '
                   '{"resourceType": "Observation", "status": "final"}, "request": {"method": "POST", '
                   '"url": "Observation"}}]}')  # fmt: skip
    broken = tmp_path / "broken.json.gz"
    broken.write_bytes(b"not gzip")
    bundles = sorted(SYNTHEA.glob("*.json.gz"))
    result = custodes("vault", "import", *map(str, bundles), str(bad), str(broken), "--json", data_dir=tmp_path)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.splitlines()[-1])
    assert report["bundles"] == len(bundles) and report["resources"] == 560
    reasons = {r["file"]: r["reason"] for r in report["refused"]}
    assert reasons["bad.json"].startswith("Bundle.entry[0]: Observation.code: ")  # the element, not a value
    assert reasons["broken.json.gz"] == "not a readable JSON or NDJSON file" and len(reasons) == 2
    again = json.loads(custodes("vault", "import", str(SYNTHEA), "--json", data_dir=tmp_path).stdout.splitlines()[-1])
    assert again["bundles"] == len(bundles)
    status = json.loads(custodes("vault", "status", "--json", data_dir=tmp_path).stdout.splitlines()[-1])
    assert status["total"] == 560 and status["records"]["Patient"] == 4  # nothing stored twice
    first = json.loads(gzip.decompress(bundles[0].read_bytes()))
    patient_id = first["entry"][0]["fullUrl"].removeprefix("urn:uuid:")
    read = custodes("vault", "read", f"Patient/{patient_id}", data_dir=tmp_path)
    assert read.returncode == 0 and json.loads(read.stdout.splitlines()[-1])["id"] == patient_id
    refused = custodes("vault", "erase", patient_id, data_dir=tmp_path)
    assert refused.returncode != 0 and "--yes" in refused.stderr and "Traceback" not in refused.stderr
    erased = custodes("vault", "erase", patient_id, "--yes", "--json", data_dir=tmp_path)
    assert json.loads(erased.stdout.splitlines()[-1])["keys_destroyed"] >= 1
    gone = custodes("vault", "read", f"Patient/{patient_id}", data_dir=tmp_path)
    assert gone.returncode != 0 and "not in the vault" in gone.stderr and "Traceback" not in gone.stderr
    nothing = custodes("vault", "import", str(bad), data_dir=tmp_path)
    assert nothing.returncode == 1
