"""The vault's record store, the same contract on SQLite, PostgreSQL and in memory."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from custodes.core.ports import IndexEntry, StoredRecord, VersionConflict
from custodes.storage.memory_records import MemoryRecordStore
from custodes.storage.sql_records import SqlCareRelationships, SqlRecordStore

T0 = datetime(2026, 3, 2, 9, tzinfo=UTC)


@pytest.fixture(params=["memory", "sql"])
def store(request, engine):
    return MemoryRecordStore() if request.param == "memory" else SqlRecordStore(engine)


def rec(rid: str, version: int = 1, patient: str | None = "p1", rtype: str = "Observation",
        deleted: bool = False, minutes: int = 0) -> StoredRecord:  # fmt: skip
    return StoredRecord(rtype, rid, version, patient, "standard", f"patient:default:{patient}",
                        b"wrapped", f"{rid}-v{version}".encode(), T0 + timedelta(minutes=minutes), deleted)  # fmt: skip


def test_versions_current_and_reads(store):
    store.write([rec("o1"), rec("o2", minutes=1), rec("x", rtype="Practitioner", patient=None)])
    store.write([rec("o1", 2, minutes=2)])
    assert store.latest("Observation", "o1").ciphertext == b"o1-v2"
    assert store.version("Observation", "o1", 1).ciphertext == b"o1-v1"
    assert store.version("Observation", "o1", 3) is None and store.latest("Observation", "nope") is None
    assert [r.record_id for r in store.by_patient("p1")] == ["o2", "o1"]  # oldest first, current versions
    assert [r.version for r in store.by_patient("p1", ["Observation"])] == [1, 2]
    assert store.by_patient("p1", ["Condition"]) == []
    assert {k: v.version for k, v in store.latest_many([("Observation", "o1"), ("Observation", "zz")]).items()} == {
        ("Observation", "o1"): 2
    }
    assert [r.record_id for r in store.of_type("Practitioner", 10)] == ["x"]
    assert store.count() == {"Observation": 2, "Practitioner": 1}
    assert store.latest("Observation", "o1").last_updated == T0 + timedelta(minutes=2)


def test_a_taken_version_is_a_conflict_and_nothing_of_the_batch_is_stored(store):
    store.write([rec("o1")])
    with pytest.raises(VersionConflict):
        store.write([rec("o9"), rec("o1")])
    assert store.latest("Observation", "o9") is None


def test_deletion_markers_and_the_index(store):
    entry = IndexEntry("mrn", "d1", "Patient", "p1", "p1")
    store.write([rec("p1", rtype="Patient")], [entry, IndexEntry("name", "n1", "Patient", "p1", "p1")])
    assert store.find("mrn", "d1", "Patient") == ["p1"] and store.find("mrn", "d1", "Observation") == []
    store.write([rec("p1", 2, rtype="Patient")], [IndexEntry("mrn", "d2", "Patient", "p1", "p1")])
    assert store.find("mrn", "d1", "Patient") == [] and store.find("mrn", "d2", "Patient") == ["p1"]
    store.write([rec("p1", 3, rtype="Patient", deleted=True)])
    assert store.latest("Patient", "p1").deleted and store.count() == {}
    assert store.find("mrn", "d2", "Patient") == []


def test_erasing_a_patient_leaves_the_others(store):
    store.write([rec("o1"), rec("o2", patient="p2"), rec("p1", rtype="Patient")],
                [IndexEntry("mrn", "d1", "Patient", "p1", "p1")])  # fmt: skip
    store.write([rec("o1", 2)])
    assert store.erase_patient("p1") == 3
    assert store.latest("Observation", "o1") is None and store.find("mrn", "d1", "Patient") == []
    assert store.latest("Observation", "o2").patient_id == "p2"


def test_care_relationships_come_from_encounters_and_care_teams(engine):
    from custodes.core.entities import Encounter
    from custodes.storage.sql_context import SqlContextStore

    SqlContextStore(engine).upsert_encounters([
        Encounter("e1", "p1", start=T0, department="ED", attending_id="s1", care_team=("s2", "s_3")),
    ])  # fmt: skip
    cares = SqlCareRelationships(engine)
    assert cares("s1", "p1") and cares("s2", "p1") and cares("s_3", "p1")
    assert not cares("s1", "p2") and not cares("s", "p1") and not cares("s_", "p1") and not cares("s%", "p1")
