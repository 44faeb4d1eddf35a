"""The audit chain: every single modification, deletion, insertion or reorder is found
at the position where it happened; checkpoints catch truncation and rewritten tails."""

from __future__ import annotations

import hashlib
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from custodes.audit import (
    AuditEntry,
    AuditLog,
    MemoryAuditStore,
    chain,
    merkle_root,
    verify_columns,
)
from custodes.audit.chain import link_hash
from custodes.core.events import Action
from custodes.core.ports import StoredAuditEntry

T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
PUBLIC = KEY.public_key()


class StepClock:
    def __init__(self) -> None:
        self.t = T0

    def now(self) -> datetime:
        self.t += timedelta(seconds=1)
        return self.t


def entries(n: int) -> list[AuditEntry]:
    actions = list(Action)
    return [
        AuditEntry(T0 + timedelta(seconds=i), f"u{i % 5}", actions[i % len(actions)],
                   patient_id=f"p{i % 7}", resource_type="Observation", resource_id=f"o{i}")
        for i in range(n)
    ]  # fmt: skip


def verify(rows: list[StoredAuditEntry], checkpoints=()) -> tuple[int | None, str | None]:
    report = verify_columns(
        [r.position for r in rows], [r.body for r in rows], [r.entry_hash for r in rows],
        list(checkpoints), PUBLIC,
    )  # fmt: skip
    return report.first_bad, report.problem


@st.composite
def log_and_index(draw, min_size=2):
    n = draw(st.integers(min_value=min_size, max_value=40))
    return chain(entries(n)), draw(st.integers(min_value=0, max_value=n - 1))


def test_an_untouched_log_verifies():
    assert verify(chain(entries(50))) == (None, None)


def test_entry_body_round_trips():
    entry = replace(entries(1)[0], break_the_glass=True, reason="cardiac arrest", detail={"k": "v"})
    assert AuditEntry.from_body(entry.body()) == entry


@settings(max_examples=150, deadline=None)
@given(log_and_index(), st.integers(min_value=0, max_value=10_000), st.integers(0, 7))
def test_any_modified_byte_is_found_where_it_is(case, at, bit):
    rows, k = case
    body = bytearray(rows[k].body)
    body[at % len(body)] ^= 1 << bit
    rows[k] = replace(rows[k], body=bytes(body))
    assert verify(rows)[0] == k


@settings(max_examples=100, deadline=None)
@given(log_and_index(), st.integers(0, 31))
def test_any_modified_hash_is_found_where_it_is(case, at):
    rows, k = case
    digest = bytearray(rows[k].entry_hash)
    digest[at] ^= 0xFF
    rows[k] = replace(rows[k], entry_hash=bytes(digest))
    assert verify(rows)[0] == k


@settings(max_examples=100, deadline=None)
@given(log_and_index(), st.booleans())
def test_any_deletion_before_the_end_is_found_where_it_is(case, renumber):
    rows, k = case
    if k == len(rows) - 1:
        k -= 1
    del rows[k]
    if renumber:  # the rows after it moved up, positions rewritten to hide the gap
        rows = rows[:k] + [replace(r, position=r.position - 1) for r in rows[k:]]
    assert verify(rows)[0] == k


@settings(max_examples=100, deadline=None)
@given(log_and_index(min_size=1), st.integers(0, 39), st.booleans())
def test_any_insertion_is_found_where_it_is(case, source, renumber):
    rows, k = case
    copy = rows[source % len(rows)]  # a replayed genuine entry, hash and all
    inserted = replace(copy, position=k) if renumber else copy
    rows.insert(k, inserted)
    if renumber:
        rows = rows[: k + 1] + [replace(r, position=r.position + 1) for r in rows[k + 1 :]]
    # A copy of entry k put just before it is entry k itself: the break is at the original.
    assert verify(rows)[0] == (k + 1 if source % (len(rows) - 1) == k else k)


@settings(max_examples=100, deadline=None)
@given(log_and_index(), st.integers(1, 39), st.booleans())
def test_any_reorder_is_found_at_the_first_moved_entry(case, distance, renumber):
    rows, k = case
    j = k + 1 + (distance % (len(rows) - k)) if k + 1 < len(rows) else None
    if j is None or j >= len(rows):
        k, j = 0, len(rows) - 1
    rows[k], rows[j] = rows[j], rows[k]
    if renumber:
        rows[k], rows[j] = replace(rows[k], position=k), replace(rows[j], position=j)
    assert verify(rows)[0] == k


def test_a_forged_entry_linked_to_its_predecessor_breaks_the_chain_at_the_next():
    rows = chain(entries(10))
    forged = replace(entries(1)[0], actor="mallory").body()
    rows.insert(4, StoredAuditEntry(4, forged, link_hash(rows[3].entry_hash, 4, forged)))
    rows = rows[:5] + [replace(r, position=r.position + 1) for r in rows[5:]]
    assert verify(rows)[0] == 5


# --- checkpoints ------------------------------------------------------------------------------


def signed_log(n: int, every: int) -> tuple[MemoryAuditStore, AuditLog]:
    store = MemoryAuditStore()
    log = AuditLog(store, StepClock(), KEY, checkpoint_every=every)
    for entry in entries(n):
        log.record(entry)
    return store, log


def test_checkpoints_are_written_periodically_and_verify():
    store, log = signed_log(25, every=10)
    assert [cp.size for cp in store.checkpoints()] == [10, 20]
    assert log.checkpoint().size == 25
    report = log.verify(PUBLIC)
    assert report.ok and report.entries == 25 and report.checkpoints == 3


def test_truncation_is_caught_by_a_checkpoint():
    store, _ = signed_log(25, every=10)
    rows = store.entries[:17]
    bad, problem = verify(rows, store.checkpoints())
    assert bad == 17 and "missing" in problem


def test_a_rewritten_tail_is_caught_by_the_checkpoint_after_it():
    store, _ = signed_log(25, every=10)
    rewritten = [replace(e, actor="mallory") for e in entries(25)[12:]]
    rows = store.entries[:12] + chain(rewritten, 12, store.entries[11].entry_hash)
    assert verify(rows) == (None, None)  # the chain alone is consistent again
    bad, problem = verify(rows, store.checkpoints())
    assert bad == 10 and "rewritten" in problem


@pytest.mark.parametrize("field", ["signature", "root", "last_hash", "size", "time"])
def test_checkpoint_tampering_is_detected(field):
    store, _ = signed_log(25, every=10)
    cps = store.checkpoints()
    cp = cps[1]
    changed = {
        "signature": bytes([cp.signature[0] ^ 1]) + cp.signature[1:],
        "root": hashlib.sha256(b"x").digest(),
        "last_hash": store.entries[5].entry_hash,
        "size": 11,
        "time": cp.time + timedelta(seconds=1),
    }[field]
    cps[1] = replace(cp, **{field: changed})
    report = verify_columns(*store.columns(), cps, PUBLIC)
    assert not report.ok and report.first_bad == 10


def test_a_checkpoint_signed_by_another_key_is_rejected():
    store, _ = signed_log(12, every=10)
    other = Ed25519PrivateKey.generate().public_key()
    assert not verify_columns(*store.columns(), store.checkpoints(), other).ok


def test_the_newest_checkpoint_root_is_the_merkle_root_of_the_hashes():
    store, log = signed_log(13, every=0)
    cp = log.checkpoint()
    assert cp.root == merkle_root([e.entry_hash for e in store.entries])


# --- RFC 6962 ---------------------------------------------------------------------------------

CT_LEAVES = ["", "00", "10", "2021", "3031", "40414243", "5051525354555657",
             "606162636465666768696a6b6c6d6e6f"]  # fmt: skip
CT_ROOTS = [
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]


@pytest.mark.parametrize("size", range(9))
def test_merkle_root_matches_the_certificate_transparency_reference(size):
    leaves = [bytes.fromhex(x) for x in CT_LEAVES[:size]]
    assert merkle_root(leaves).hex() == CT_ROOTS[size]


def _rfc_root(leaves: list[bytes]) -> bytes:  # the RFC's recursion, verbatim
    if len(leaves) == 1:
        return hashlib.sha256(b"\x00" + leaves[0]).digest()
    k = 1 << ((len(leaves) - 1).bit_length() - 1)
    return hashlib.sha256(b"\x01" + _rfc_root(leaves[:k]) + _rfc_root(leaves[k:])).digest()


@given(st.lists(st.binary(max_size=8), min_size=1, max_size=70))
def test_merkle_root_equals_the_rfc_recursion(leaves):
    assert merkle_root(leaves) == _rfc_root(leaves)


def test_a_value_rewritten_as_text_is_named_not_a_crash():
    rows = chain(entries(6))
    rows[3] = replace(rows[3], body=rows[3].body.decode())
    assert verify(rows)[0] == 3


@pytest.mark.parametrize("bad", [None, 0, 1, 2_499, 2_500, 4_999])
def test_the_parallel_check_agrees_with_the_serial_one(monkeypatch, bad):
    from custodes.audit import parallel

    monkeypatch.setattr(parallel, "PARALLEL_FROM", 10)
    rows = chain(entries(5_000))
    if bad is not None:
        rows[bad] = replace(rows[bad], body=rows[bad].body + b" ")
    columns = ([r.position for r in rows], [r.body for r in rows], [r.entry_hash for r in rows])
    assert parallel.parallel_first_broken_link(*columns, workers=2) == bad
    assert parallel.parallel_first_broken_link(*columns, workers=3) == bad


@given(st.lists(st.binary(max_size=8), max_size=70))
def test_the_frontier_tree_head_equals_the_full_computation(leaves):
    from custodes.audit.merkle import MerkleFrontier

    frontier = MerkleFrontier()
    for leaf in leaves:
        frontier.add(leaf)
    assert frontier.root() == merkle_root(leaves) and frontier.size == len(leaves)


def test_every_checkpoint_root_is_the_root_of_its_prefix_also_with_two_writers():
    store = MemoryAuditStore()
    one = AuditLog(store, StepClock(), KEY, checkpoint_every=7)
    two = AuditLog(store, StepClock(), KEY, checkpoint_every=0)
    for k, entry in enumerate(entries(30)):
        (one if k % 3 else two).record(entry)
        if k == 20:
            two.checkpoint()
    hashes = [e.entry_hash for e in store.entries]
    sizes = [cp.size for cp in store.checkpoints()]
    assert 21 in sizes and len(sizes) >= 3  # the periodic ones fall on the first writer's turns
    for cp in store.checkpoints():
        assert cp.root == merkle_root(hashes[: cp.size]) and cp.last_hash == hashes[cp.size - 1]
    assert one.verify(PUBLIC).ok


def test_concurrent_writers_share_commits_and_each_gets_its_own_positions():
    import threading
    import time as _time

    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from custodes.audit import AuditLog
    from custodes.audit.memory import MemoryAuditStore

    class SlowStore(MemoryAuditStore):
        appends = 0

        def append(self, entries):
            SlowStore.appends += 1
            _time.sleep(0.002)  # a commit that takes time, so callers pile up behind it
            super().append(entries)

    class Clock:
        def now(self):
            return T0

    key = Ed25519PrivateKey.generate()
    log = AuditLog(SlowStore(), Clock(), key, checkpoint_every=0)
    got: dict[int, list[int]] = {}

    def write(n: int) -> None:
        got[n] = []
        for i in range(20):
            got[n] += log.record_many([AuditEntry(T0, f"u{n}", Action.READ, detail={"i": str(i)}),
                                       AuditEntry(T0, f"u{n}", Action.SEARCH)])  # fmt: skip

    threads = [threading.Thread(target=write, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    everything = sorted(p for positions in got.values() for p in positions)
    assert everything == list(range(8 * 20 * 2))
    for n, positions in got.items():  # each caller's entries are where it was told
        for p in positions:
            assert AuditEntry.from_body(log._store.entries[p].body).actor == f"u{n}"
    assert SlowStore.appends < 8 * 20  # commits were shared
    assert log.verify(key.public_key()).ok
