"""The vault's tables (audit log, scope keys) on SQLite and the real PostgreSQL server."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from custodes.audit import AuditEntry, AuditLog
from custodes.core.events import Action
from custodes.keys import EnvelopeCipher, LocalKeyring, RecordRef, Tier, Undecryptable
from custodes.storage.sql_vault import SqlAuditStore, SqlScopeKeyStore

T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))


class Clock:
    def now(self) -> datetime:
        return T0


def _log(engine, n: int) -> tuple[SqlAuditStore, AuditLog]:
    store = SqlAuditStore(engine)
    log = AuditLog(store, Clock(), KEY, checkpoint_every=10)
    log.record_many([
        AuditEntry(T0 + timedelta(seconds=i), f"u{i % 3}", Action.READ, patient_id=f"p{i}",
                   resource_type="Observation", resource_id=f"o{i}")
        for i in range(n)
    ])  # fmt: skip
    for i in range(3):
        log.record(AuditEntry(T0, "admin", Action.EXPORT, review=True, detail={"n": str(i)}))
    return store, log


def _drop_guard(engine) -> None:
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(sa.text("ALTER TABLE audit_entries DISABLE TRIGGER USER"))
        else:
            conn.execute(sa.text("DROP TRIGGER audit_entries_no_update"))
            conn.execute(sa.text("DROP TRIGGER audit_entries_no_delete"))


def test_the_log_is_stored_and_verifies(engine):
    store, log = _log(engine, 25)
    assert store.count() == 28
    assert [cp.size for cp in store.checkpoints()] == [25]
    assert store.read(26, 28)[0].position == 26
    report = log.verify(KEY.public_key())
    assert report.ok and report.entries == 28


def test_the_table_refuses_updates_and_deletes(engine):
    _log(engine, 3)
    for statement in ("UPDATE audit_entries SET body = body", "DELETE FROM audit_entries"):
        with pytest.raises(sa.exc.DBAPIError, match="append-only"), engine.begin() as conn:
            conn.execute(sa.text(statement))


@pytest.mark.parametrize(
    ("statement", "bad"),
    [
        ("UPDATE audit_entries SET body = :b WHERE position = 7", 7),
        ("DELETE FROM audit_entries WHERE position = 4", 4),
    ],
)
def test_tampering_past_the_guard_is_named(engine, statement, bad):
    _, log = _log(engine, 12)
    _drop_guard(engine)
    with engine.begin() as conn:
        conn.execute(sa.text(statement), {"b": b'{"actor":"mallory"}'})
    report = log.verify(KEY.public_key())
    assert not report.ok and report.first_bad == bad


def test_scope_keys_rotate_and_shred(engine):
    cipher = EnvelopeCipher(LocalKeyring.generate(), SqlScopeKeyStore(engine))
    refs = [RecordRef(f"o{i}", "Observation", 1, Tier.STANDARD, patient_id=f"p{i % 2}")
            for i in range(4)] + [RecordRef("n1", "DocumentReference", 1, Tier.SENSITIVE, patient_id="p0")]  # fmt: skip
    sealed = [cipher.seal(r, r.record_id.encode()) for r in refs]
    assert cipher.status()["scope_keys_by_version"] == {"1": 3}
    assert list(cipher.rotate())[-1].done == 3
    assert cipher.status()["versions"] == [2]
    assert [cipher.open(r, s) for r, s in zip(refs, sealed, strict=True)] == [b"o0", b"o1", b"o2", b"o3", b"n1"]
    assert cipher.shred_patient("p0") == 2
    with pytest.raises(Undecryptable):
        cipher.open(refs[0], sealed[0])
    assert cipher.open(refs[1], sealed[1]) == b"o1"


@pytest.mark.parametrize("tamper", [None, "update", "delete", "delete_last_of_span"])
def test_verify_in_spans_across_processes(engine, monkeypatch, tamper):
    from custodes.audit import log as log_module

    monkeypatch.setattr(log_module, "PARALLEL_FROM", 10)
    _, log = _log(engine, 97)  # 100 entries: spans [0, 50) and [50, 100)
    assert log.verify(KEY.public_key(), workers=2).ok
    if tamper is None:
        return
    _drop_guard(engine)
    statement, bad = {
        "update": ("UPDATE audit_entries SET body = :b WHERE position = 61", 61),
        "delete": ("DELETE FROM audit_entries WHERE position = 20", 20),
        "delete_last_of_span": ("DELETE FROM audit_entries WHERE position = 49", 49),
    }[tamper]
    with engine.begin() as conn:
        conn.execute(sa.text(statement), {"b": b"{}"})
    for workers in (1, 2, 3):
        report = log.verify(KEY.public_key(), workers=workers)
        assert not report.ok and report.first_bad == bad, workers


def test_two_writers_creating_one_scope_key_agree_on_it(engine):
    ring, store = LocalKeyring.generate(), SqlScopeKeyStore(engine)
    first = EnvelopeCipher(ring, store)
    ref = RecordRef("o1", "Observation", 1, Tier.STANDARD, patient_id="p1")
    sealed = first.seal(ref, b"one")

    class Late(SqlScopeKeyStore):  # looked before the first writer's insert landed
        def get(self, scope_id):
            return None

    second = EnvelopeCipher(ring, Late(engine))
    other = RecordRef("o2", "Observation", 1, Tier.STANDARD, patient_id="p1")
    sealed_other = second.seal(other, b"two")
    assert first.open(ref, sealed) == b"one" and first.open(other, sealed_other) == b"two"


def test_two_writers_on_one_log_lose_nothing(engine):
    """Each log keeps its head between appends; a position another writer took is
    refused by the store and the head read again."""
    first = AuditLog(SqlAuditStore(engine), Clock(), KEY, checkpoint_every=7)
    second = AuditLog(SqlAuditStore(engine), Clock(), KEY, checkpoint_every=7)
    positions = []
    for i in range(20):
        writer = first if i % 3 else second
        positions += writer.record_many([AuditEntry(T0, f"u{i}", Action.READ), AuditEntry(T0, f"v{i}", Action.READ)])
    assert sorted(positions) == list(range(40))
    report = first.verify(KEY.public_key())
    assert report.ok and report.entries == 40
