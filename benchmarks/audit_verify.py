"""Audit verification rate: entries checked per second, in memory, on SQLite and PostgreSQL.

Builds a log of ``--entries`` entries (bodies in the exact canonical form
``AuditEntry.body`` makes, about 240 bytes each; a sample is checked against it), stores
it through ``SqlAuditStore`` with one signed checkpoint, and times:

1. the chain check alone over columns in memory (``first_broken_link``), one process
   and ``--workers`` forked processes;
2. ``AuditLog.verify`` end to end: read the columns from the database, check every link
   and the checkpoint's signature and last hash (``check_root=False``, what
   ``custodes audit verify --no-root`` does), with one and ``--workers`` processes;
3. the same with the checkpoint's RFC 6962 Merkle root recomputed (the default).

Each figure is the median of ``--rounds`` rounds. Run:
``.venv/bin/python benchmarks/audit_verify.py [--entries N] [--postgres URL] [--out-json FILE]``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from custodes.audit import AuditEntry, AuditLog, first_broken_link, link_hash
from custodes.audit.chain import GENESIS
from custodes.audit.parallel import parallel_first_broken_link
from custodes.core.ports import StoredAuditEntry
from custodes.storage.database import create_engine, upgrade
from custodes.storage.sql_vault import SqlAuditStore

T0 = datetime(2026, 3, 2, tzinfo=UTC)
KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))


class FixedClock:
    def now(self) -> datetime:
        return T0


def body(i: int) -> bytes:
    time = (T0 + timedelta(milliseconds=i * 37)).isoformat(timespec="microseconds").replace("+00:00", "Z")
    return (
        f'{{"action":"read","actor":"user{i % 500:04d}","allowed":true,"break_the_glass":false,'
        f'"outcome":"success","patient_id":"pat{i % 90000:06d}","purpose_of_use":"TREAT",'
        f'"resource_id":"obs{i:09d}","resource_type":"Observation","review":false,'
        f'"role":"clinician","time":"{time}"}}'
    ).encode()


def build(n: int) -> tuple[list[int], list[bytes], list[bytes]]:
    for i in (0, 12345):  # the bodies are exactly what AuditEntry.body makes
        entry = AuditEntry.from_body(body(i))
        assert entry.body() == body(i), "the benchmark's bodies drifted from AuditEntry.body"
    bodies = [body(i) for i in range(n)]
    hashes, previous = [], GENESIS
    for i, b in enumerate(bodies):
        previous = link_hash(previous, i, b)
        hashes.append(previous)
    return list(range(n)), bodies, hashes


def median_rate(n: int, rounds: int, run) -> float:
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return n / statistics.median(times)


def store_log(engine, columns) -> AuditLog:
    upgrade(engine)
    store = SqlAuditStore(engine)
    positions, bodies, hashes = columns
    step = 100_000
    for s in range(0, len(positions), step):
        store.append([StoredAuditEntry(p, b, h) for p, b, h in
                      zip(positions[s:s + step], bodies[s:s + step], hashes[s:s + step], strict=True)])  # fmt: skip
    log = AuditLog(store, FixedClock(), KEY, checkpoint_every=0)
    log.checkpoint()
    return log


def database_rates(name: str, engine, columns, rounds: int, workers: int) -> dict:
    n = len(columns[0])
    start = time.perf_counter()
    log = store_log(engine, columns)
    loaded = time.perf_counter() - start
    public = KEY.public_key()
    assert log.verify(public, workers=workers).ok
    read = median_rate(n, rounds, lambda: SqlAuditStore(engine).columns())
    return {
        f"{name}_load_seconds": round(loaded, 1),
        f"{name}_read_columns_per_s": round(read),
        f"{name}_verify_no_root_1_process_per_s": round(median_rate(
            n, rounds, lambda: log.verify(public, check_root=False, workers=1))),
        f"{name}_verify_no_root_{workers}_processes_per_s": round(median_rate(
            n, rounds, lambda: log.verify(public, check_root=False, workers=workers))),
        f"{name}_verify_with_root_{workers}_processes_per_s": round(median_rate(
            n, rounds, lambda: log.verify(public, check_root=True, workers=workers))),
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--postgres", default=os.environ.get(
        "CUSTODES_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"))
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument("--out-json", type=Path)
    args = parser.parse_args()

    columns = build(args.entries)
    n = args.entries
    results: dict = {
        "entries": n,
        "machine": f"{platform.machine()} {os.cpu_count()} cores Python {platform.python_version()}",
        "date": datetime.now(UTC).date().isoformat(),
        "memory_chain_1_process_per_s": round(median_rate(n, args.rounds, lambda: first_broken_link(*columns))),
        f"memory_chain_{args.workers}_processes_per_s": round(median_rate(
            n, args.rounds, lambda: parallel_first_broken_link(*columns, workers=args.workers))),
    }  # fmt: skip
    with tempfile.TemporaryDirectory() as folder:
        engine = create_engine(f"sqlite:///{Path(folder) / 'audit.db'}")
        results.update(database_rates("sqlite", engine, columns, args.rounds, args.workers))
        engine.dispose()
    if not args.no_postgres:
        schema = f"bench_{uuid.uuid4().hex[:10]}"
        admin = sa.create_engine(args.postgres)
        with admin.begin() as conn:
            conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
        try:
            engine = create_engine(f"{args.postgres}?options=-csearch_path%3D{schema}")
            results.update(database_rates("postgresql", engine, columns, args.rounds, args.workers))
            engine.dispose()
        finally:
            with admin.begin() as conn:
                conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
            admin.dispose()
    print(json.dumps(results, indent=2))
    if args.out_json:
        args.out_json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
