"""The record vault over in-memory stores: reads, versions, searches, transactions,
the access policy at every door, the audit trail, masks and crypto-shredding."""

from __future__ import annotations

import copy
import gzip
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from custodes.access import BreakGlass, ConsentDirective
from custodes.audit import AuditLog
from custodes.audit.chain import AuditEntry
from custodes.audit.memory import MemoryAuditStore
from custodes.core.accounts import Role
from custodes.core.clock import FixedClock
from custodes.core.events import Action
from custodes.keys import (
    BlindIndex,
    EnvelopeCipher,
    LocalKeyring,
    MemoryScopeKeyStore,
    RecordRef,
    Tier,
)
from custodes.storage.memory_records import MemoryRecordStore
from custodes.vault.errors import (
    AccessDenied,
    InvalidResource,
    RecordGone,
    RecordNotFound,
    VersionMismatch,
)
from custodes.vault.resources import references
from custodes.vault.service import RecordUnreadable, RecordVault, Requester

NOW = datetime(2026, 3, 2, 9, tzinfo=UTC)
HIV = "86406008"


@dataclass(frozen=True)
class _Label:
    tier: Tier
    categories: frozenset[str] = frozenset()


class CodeClassifier:
    """A stand-in classifier for these tests: one SNOMED code makes a record sensitive."""

    def classify(self, resource: dict) -> _Label:
        if resource["resourceType"] in ("Practitioner", "Organization"):
            return _Label(Tier.ORGANISATIONAL)
        codes = {c.get("code") for c in (resource.get("code") or {}).get("coding", [])}
        return _Label(Tier.SENSITIVE, frozenset({"hiv"})) if HIV in codes else _Label(Tier.STANDARD)


class Env:
    def __init__(self, care: set[tuple[str, str]] | None = None, consents=None) -> None:
        self.clock = FixedClock(NOW)
        self.keyring = LocalKeyring.generate()
        self.scope_keys = MemoryScopeKeyStore()
        self.cipher = EnvelopeCipher(self.keyring, self.scope_keys)
        self.store = MemoryRecordStore()
        self.audit_store = MemoryAuditStore()
        self.key = Ed25519PrivateKey.generate()
        self.audit = AuditLog(self.audit_store, self.clock, self.key, checkpoint_every=50)
        care = care or set()
        ids = iter(f"id-{n}" for n in range(1, 10_000))
        self.vault = RecordVault(
            self.store, self.cipher, BlindIndex(self.keyring.index_secret()), CodeClassifier(), self.audit,
            self.clock, care_relationship=lambda u, p: (u, p) in care,
            consents=consents, new_id=lambda: next(ids),
        )  # fmt: skip

    def entries(self) -> list[AuditEntry]:
        return [AuditEntry.from_body(e.body) for e in self.audit_store.read()]


ADMIN = Requester("root", Role.ADMINISTRATOR, step_up_fresh=True)
ADMIN_NO_STEP_UP = Requester("root", Role.ADMINISTRATOR)
DOCTOR = Requester("dr.lee", Role.CLINICIAN)
FRONT_DESK = Requester("desk", Role.FRONT_DESK)


def patient(pid: str = "p1", mrn: str = "MRN-0042", family: str = "Zyxwert") -> dict:
    return {
        "resourceType": "Patient", "id": pid, "gender": "female", "birthDate": "1970-05-06",
        "name": [{"family": family, "given": ["Quilla"]}],
        "identifier": [
            {"system": "urn:hospital:mrn", "value": mrn},
            {"system": "http://hl7.org/fhir/sid/us-ssn", "value": "999-12-3456"},
        ],
        "telecom": [{"system": "phone", "value": "555-0100"}],
    }  # fmt: skip


def condition(cid: str, pid: str = "p1", code: str = "38341003") -> dict:
    return {
        "resourceType": "Condition", "id": cid, "subject": {"reference": f"Patient/{pid}"},
        "code": {"coding": [{"system": "http://snomed.info/sct", "code": code}], "text": "hypertension"},
    }  # fmt: skip


def bundle(*resources: dict, method: str = "PUT") -> dict:
    entries = []
    for r in resources:
        request = {"method": method, "url": f"{r['resourceType']}/{r['id']}" if method == "PUT" else r["resourceType"]}
        entries.append({"fullUrl": f"urn:uuid:{r['id']}", "resource": r, "request": request})
    return {"resourceType": "Bundle", "type": "transaction", "entry": entries}


def _plain(resource: dict) -> dict:
    out = copy.deepcopy(resource)
    out.pop("meta", None)
    return out


def test_update_as_create_then_read_and_versions():
    env = Env()
    stored, created = env.vault.update(ADMIN, "Patient", "p1", patient())
    assert created and stored["meta"]["versionId"] == "1"
    changed = patient(family="Newname")
    env.clock.advance(minutes=1)
    stored2, created2 = env.vault.update(ADMIN, "Patient", "p1", changed)
    assert not created2 and stored2["meta"]["versionId"] == "2"
    assert _plain(env.vault.read(ADMIN, "Patient", "p1")) == changed
    assert _plain(env.vault.vread(ADMIN, "Patient", "p1", 1)) == patient()
    with pytest.raises(VersionMismatch):
        env.vault.update(ADMIN, "Patient", "p1", patient(), if_match=1)
    with pytest.raises(RecordNotFound):
        env.vault.vread(ADMIN, "Patient", "p1", 3)


def test_create_assigns_an_id_and_delete_leaves_a_gone_record():
    env = Env()
    env.vault.update(ADMIN, "Patient", "p1", patient())
    made = env.vault.create(ADMIN, condition("ignored"))
    assert made["id"] == "id-1"
    env.vault.delete(ADMIN, "Condition", "id-1")
    with pytest.raises(RecordGone):
        env.vault.read(ADMIN, "Condition", "id-1")
    assert _plain(env.vault.vread(ADMIN, "Condition", "id-1", 1))["code"]["text"] == "hypertension"
    assert env.vault.search(ADMIN, "Condition", patient="p1").resources == []


def test_invalid_resources_are_refused_with_the_element_named():
    env = Env()
    with pytest.raises(InvalidResource, match="birthDate"):
        env.vault.update(ADMIN, "Patient", "p1", {**patient(), "birthDate": "not a date"})
    with pytest.raises(InvalidResource, match="must reference a Patient"):
        env.vault.create(ADMIN, {**condition("c1"), "subject": {"reference": "Group/g1"}})
    with pytest.raises(InvalidResource, match="does not hold"):
        env.vault.read(ADMIN, "Basic", "x")
    with pytest.raises(InvalidResource, match="id must be p1"):
        env.vault.update(ADMIN, "Patient", "p1", patient("p2"))
    assert env.store.count() == {}


def test_a_ciphertext_moved_to_another_row_does_not_open():
    env = Env()
    env.vault.transaction(ADMIN, bundle(patient(), condition("c1"), condition("c2")))
    c1, c2 = env.store.latest("Condition", "c1"), env.store.latest("Condition", "c2")
    env.store._versions[("Condition", "c1")][-1] = type(c1)(
        **{**{f: getattr(c1, f) for f in c1.__dataclass_fields__}, "ciphertext": c2.ciphertext,
           "wrapped_key": c2.wrapped_key}
    )  # fmt: skip
    with pytest.raises(RecordUnreadable):
        env.vault.read(ADMIN, "Condition", "c1")


def test_search_by_patient_identifier_ssn_and_name_uses_the_blind_index():
    env = Env()
    env.vault.transaction(ADMIN, bundle(patient(), patient("p2", "MRN-7", "Other"), condition("c1")))
    assert [r["id"] for r in env.vault.search(ADMIN, "Patient", identifier="mrn 0042").resources] == ["p1"]
    assert [r["id"] for r in env.vault.search(ADMIN, "Patient", identifier="urn:hospital:mrn|MRN-7").resources] == [
        "p2"
    ]
    assert [r["id"] for r in env.vault.search(ADMIN, "Patient", identifier="999123456").resources] == ["p1", "p2"]
    assert [r["id"] for r in env.vault.search(ADMIN, "Patient", name="zyxwert").resources] == ["p1"]
    assert [r["id"] for r in env.vault.search(ADMIN, "Patient", name="Quilla Zyxwert").resources] == ["p1"]
    assert [r["id"] for r in env.vault.search(ADMIN, "Condition", patient="p1").resources] == ["c1"]
    with pytest.raises(InvalidResource, match="needs patient"):
        env.vault.search(ADMIN, "Condition")
    # The index holds digests, never the identifier or the name.
    stored = repr(env.store._index)
    assert "0042" not in stored and "Zyxwert" not in stored.lower().title()


def test_transaction_resolves_references_and_reimport_adds_nothing():
    env = Env()
    pat = patient("4b1e6a3c-0000-4000-8000-000000000001")
    cond = condition("4b1e6a3c-0000-4000-8000-000000000002", pid="x")
    cond["subject"] = {"reference": f"urn:uuid:{pat['id']}"}
    result = env.vault.transaction(ADMIN, bundle(pat, cond, method="POST"))
    assert [e["response"]["status"] for e in result["entry"]] == ["201 Created", "201 Created"]
    read = env.vault.read(ADMIN, "Condition", cond["id"])
    assert read["subject"]["reference"] == f"Patient/{pat['id']}"
    again = env.vault.transaction(ADMIN, bundle(pat, cond, method="POST"))
    assert [e["response"]["location"] for e in again["entry"]] == [
        f"Patient/{pat['id']}/_history/1", f"Condition/{cond['id']}/_history/1"
    ]  # fmt: skip
    assert env.store.count() == {"Patient": 1, "Condition": 1}


def test_a_transaction_with_one_bad_entry_writes_nothing():
    env = Env()
    bad = {**condition("c2"), "status": 12}
    with pytest.raises(InvalidResource, match=r"entry\[2\]"):
        env.vault.transaction(ADMIN, bundle(patient(), condition("c1"), bad))
    assert env.store.count() == {}
    with pytest.raises(InvalidResource, match="transaction"):
        env.vault.transaction(ADMIN, {**bundle(patient()), "type": "batch"})


def test_a_denied_entry_stops_the_whole_transaction_and_is_audited():
    env = Env()
    with pytest.raises(AccessDenied, match="care relationship"):
        env.vault.transaction(DOCTOR, bundle(patient(), condition("c1")))
    assert env.store.count() == {}
    denied = [e for e in env.entries() if not e.allowed]
    assert denied and denied[0].actor == "dr.lee" and denied[0].patient_id == "p1"


def test_every_read_and_denial_is_in_the_audit_log_and_the_log_verifies():
    env = Env(care={("dr.lee", "p1")})
    env.vault.transaction(ADMIN, bundle(patient(), condition("c1"), patient("p2", "M2", "Two")))
    env.vault.read(DOCTOR, "Condition", "c1")
    with pytest.raises(AccessDenied):
        env.vault.read(DOCTOR, "Patient", "p2")
    with pytest.raises(RecordNotFound):
        env.vault.read(DOCTOR, "Patient", "nope")
    entries = env.entries()
    reads = [(e.action, e.resource_id, e.allowed) for e in entries if e.actor == "dr.lee"]
    assert reads == [(Action.READ, "c1", True), (Action.READ, "p2", False), (Action.READ, "nope", True)]
    assert all(e.review for e in entries if e.actor == "root")  # administrator use is reviewed
    assert env.audit.verify(env.key.public_key()).ok
    # Audit bodies name ids and roles, never a name, an identifier or clinical text.
    bodies = b"".join(e.body for e in env.audit_store.read())
    for planted in (b"Zyxwert", b"MRN-0042", b"999-12-3456", b"hypertension"):
        assert planted not in bodies


def test_sensitive_records_need_step_up_and_searches_withhold_them():
    env = Env(care={("dr.lee", "p1")})
    env.vault.transaction(ADMIN, bundle(patient(), condition("c1"), condition("c2", code=HIV)))
    assert env.store.latest("Condition", "c2").tier == "sensitive"
    with pytest.raises(AccessDenied) as denied:
        env.vault.read(DOCTOR, "Condition", "c2")
    assert denied.value.step_up
    result = env.vault.search(DOCTOR, "Condition", patient="p1")
    assert [r["id"] for r in result.resources] == ["c1"] and result.withheld == 1
    stepped = Requester("dr.lee", Role.CLINICIAN, step_up_fresh=True)
    assert env.vault.read(stepped, "Condition", "c2")["id"] == "c2"
    assert env.vault.read(ADMIN, "Condition", "c2")["id"] == "c2"
    with pytest.raises(AccessDenied):
        env.vault.read(ADMIN_NO_STEP_UP, "Condition", "c2")
    # The sensitive record has a key of its own; the standard one shares the patient's.
    assert env.store.latest("Condition", "c2").scope_id.startswith("record:")
    assert env.store.latest("Condition", "c1").scope_id.startswith("patient:")


def test_break_the_glass_opens_the_record_and_queues_it_for_review():
    env = Env()
    env.vault.transaction(ADMIN, bundle(patient(), condition("c1")))
    glass = BreakGlass("unconscious patient in the ED", NOW, NOW + timedelta(hours=1))
    er = Requester("dr.lee", Role.CLINICIAN, break_glass=glass, purpose_of_use="ETREAT")
    assert env.vault.read(er, "Condition", "c1")["id"] == "c1"
    last = env.entries()[-1]
    assert last.break_the_glass and last.review and last.reason == "unconscious patient in the ED"


def test_consent_directive_denies_and_masks_follow_the_role():
    consents = {"p1": (ConsentDirective("p1", denied_users=frozenset({"dr.lee"}), emergency_override=False),)}
    env = Env(care={("dr.lee", "p1")}, consents=lambda p: consents.get(p, ()))
    env.vault.transaction(ADMIN, bundle(patient(), condition("c1")))
    with pytest.raises(AccessDenied, match="consent"):
        env.vault.read(DOCTOR, "Condition", "c1")
    desk = env.vault.read(FRONT_DESK, "Patient", "p1")
    assert "name" in desk and "extension" not in desk
    assert {"code": "MASKED"}.items() <= desk["meta"]["security"][-1].items()
    with pytest.raises(AccessDenied):
        env.vault.read(FRONT_DESK, "Condition", "c1")


def test_everything_returns_the_patients_record_the_requester_may_see():
    env = Env()
    env.vault.transaction(ADMIN, bundle(patient(), condition("c1"), condition("c2", code=HIV), patient("p2", "M2", "B")))
    result = env.vault.everything(ADMIN, "p1")
    assert [r["id"] for r in result.resources] == ["p1", "c1", "c2"]
    partial = env.vault.everything(ADMIN_NO_STEP_UP, "p1")
    assert [r["id"] for r in partial.resources] == ["p1", "c1"] and partial.withheld == 1
    assert env.entries()[-1].detail["operation"] == "$everything"


def test_erasing_a_patient_shreds_the_keys_and_a_backup_stays_unreadable():
    env = Env()
    env.vault.transaction(ADMIN, bundle(patient(), condition("c1"), condition("c2", code=HIV), patient("p2", "M2", "B")))
    backup = {k: list(v) for k, v in env.store._versions.items()}  # what a backup would hold
    result = env.vault.erase_patient(ADMIN, "p1")
    assert result == {"keys_destroyed": 2, "versions_erased": 3}
    with pytest.raises(RecordNotFound):
        env.vault.read(ADMIN, "Patient", "p1")
    assert env.vault.search(ADMIN, "Patient", identifier="MRN-0042").resources == []
    env.store._versions.update(backup)  # the backup restored over the live store
    with pytest.raises(RecordUnreadable):
        env.vault.read(ADMIN, "Condition", "c1")
    assert env.vault.read(ADMIN, "Patient", "p2")["id"] == "p2"  # the other patient is untouched


def test_rotation_rewraps_keys_and_every_record_still_reads():
    env = Env()
    env.vault.transaction(ADMIN, bundle(patient(), condition("c1"), condition("c2", code=HIV)))
    before = {k: v[-1].ciphertext for k, v in env.store._versions.items()}
    progress = list(env.cipher.rotate())
    assert progress[-1].done == progress[-1].total == 2  # the patient's key and c2's own
    assert env.keyring.versions() == [2]  # the old version retired: nothing uses it
    assert {k: v[-1].ciphertext for k, v in env.store._versions.items()} == before  # data not re-encrypted
    for rid in ("c1", "c2"):
        assert env.vault.read(ADMIN, "Condition", rid)["id"] == rid


def test_synthea_bundles_import_whole_and_read_back_equal(synthea_bundles):
    env = Env()
    for path in synthea_bundles:
        original = json.loads(gzip.decompress(path.read_bytes()))
        response = env.vault.transaction(ADMIN, copy.deepcopy(original))
        assert len(response["entry"]) == len(original["entry"])
        ids = {e["fullUrl"]: f"{e['resource']['resourceType']}/{e['resource']['id']}" for e in original["entry"]}
        for entry in original["entry"]:
            expected = json.loads(json.dumps(entry["resource"]).replace("urn:uuid:", ""))
            for ref in references(expected):
                ref["reference"] = ids.get("urn:uuid:" + ref["reference"], ref["reference"])
            read = env.vault.read(ADMIN, expected["resourceType"], expected["id"])
            assert read["meta"]["versionId"] == "1"
            read["meta"] = {k: v for k, v in read["meta"].items() if k not in ("versionId", "lastUpdated")}
            assert read == expected
    counts = env.store.count()
    assert counts["Patient"] == 4 and sum(counts.values()) == 560
    assert {"Encounter", "Observation", "CarePlan", "Goal", "ImagingStudy", "Claim", "Practitioner"} <= set(counts)



def consent(cid: str, pid: str = "p1", **provision) -> dict:
    return {
        "resourceType": "Consent", "id": cid, "status": "active",
        "scope": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "patient-privacy"}]},
        "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}],
        "patient": {"reference": f"Patient/{pid}"},
        "provision": {"type": "deny", **provision},
    }  # fmt: skip


def test_a_stored_consent_resource_restricts_access():
    env = Env(care={("dr.lee", "p1"), ("dr.kim", "p1")})
    env.vault.transaction(ADMIN, bundle(patient(), condition("c1"), condition("c2", code=HIV)))
    # No directive yet: both clinicians with a care relationship may read.
    assert env.vault.read(DOCTOR, "Condition", "c1")["id"] == "c1"
    actor = {"role": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType",
                                  "code": "PRCP"}]}, "reference": {"reference": "Practitioner/dr.lee"}}  # fmt: skip
    env.vault.update(ADMIN, "Consent", "k1", consent("k1", actor=[actor]))
    with pytest.raises(AccessDenied, match="consent"):
        env.vault.read(DOCTOR, "Condition", "c1")
    kim = Requester("dr.kim", Role.CLINICIAN)
    assert env.vault.read(kim, "Condition", "c1")["id"] == "c1"
    # Break-the-glass overrides it, and is reviewed.
    glass = BreakGlass("cardiac arrest on the ward", NOW, NOW + timedelta(hours=1))
    assert env.vault.read(Requester("dr.lee", Role.CLINICIAN, break_glass=glass), "Condition", "c1")["id"] == "c1"
    # Withdrawn (no longer active): the restriction is gone.
    env.vault.update(ADMIN, "Consent", "k1", {**consent("k1"), "status": "inactive"})
    assert env.vault.read(DOCTOR, "Condition", "c1")["id"] == "c1"


def test_consent_by_role_purpose_and_sensitivity():
    from custodes.vault.consent import directives

    doc = consent(
        "k2",
        actor=[{"role": {"coding": [{"system": "urn:custodes:role", "code": "researcher"}]},
                "reference": {"reference": "Organization/o1"}}],
        purpose=[{"system": "http://terminology.hl7.org/CodeSystem/v3-ActReason", "code": "HRESCH"}],
        securityLabel=[{"system": "http://terminology.hl7.org/CodeSystem/v3-Confidentiality", "code": "R"}],
        period={"start": "2026-01-01T00:00:00Z"},
    )  # fmt: skip
    doc["policyRule"] = {"coding": [{"system": "urn:custodes:consent", "code": "no-emergency-override"}]}
    (directive,) = directives(doc, "p1")
    assert directive.denied_roles == {Role.RESEARCHER} and directive.denied_purposes == {"HRESCH"}
    assert directive.sensitive_only and not directive.emergency_override
    assert directive.start == datetime(2026, 1, 1, tzinfo=UTC)
    nested = {**consent("k3"), "provision": {"type": "permit", "provision": [
        {"type": "deny", "actor": [{"reference": {"reference": "Practitioner/s9"}}]}, {"type": "permit"}]}}  # fmt: skip
    assert [d.denied_users for d in directives(nested, "p1")] == [{"s9"}]
    assert directives({**consent("k4"), "status": "draft"}, "p1") == []


def test_a_scope_key_made_meanwhile_by_another_writer_is_used_not_overwritten():
    env = Env()

    class Racing(MemoryScopeKeyStore):
        """The first time new keys are stored, another writer's key for p1 got there first."""

        raced = False

        def add_new_many(self, records):
            if not Racing.raced:
                Racing.raced = True
                other = EnvelopeCipher(env.keyring, self)
                other.seal(RecordRef("x", "Observation", 1, Tier.STANDARD, patient_id="p1"), b"theirs")
            return super().add_new_many(records)

    env.cipher._scope_keys = Racing()
    env.vault.transaction(ADMIN, bundle(patient(), condition("c1")))
    assert Racing.raced
    assert env.vault.read(ADMIN, "Condition", "c1")["id"] == "c1"  # sealed again under the winner's key
