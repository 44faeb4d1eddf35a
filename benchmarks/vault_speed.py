"""Record vault speed: Bundle import, read by id in-process and over HTTP, the encryption tax.

For each database (SQLite in a fresh data directory; PostgreSQL in a fresh schema when
``--postgres URL`` is given), and for the vault as built (envelope encryption) and a
plaintext build of the same store (the cipher replaced by one that stores the bytes as
they are, everything else equal: validation, classification, policy, audit):

1. **import**: every Bundle of ``--bundles`` (default: the 60 Synthea patients in
   ../shared/data/synthea-r4) through the path ``custodes vault import`` takes (read and
   validate in ``--workers`` spawned processes, commit in this one), resources per second;
2. **read in-process**: ``--reads`` reads by id of random non-sensitive records through
   ``RecordVault.read`` (policy, decrypt, audit append), p50 and p99 latency, reads/s;
3. **read over HTTP** (encrypted build only): ``custodes serve [--workers N]`` on loopback, ``wrk``
   (Debian's package) with ``--connections`` connections for ``--seconds`` seconds
   requesting random ``GET /fhir/{type}/{id}`` with an administrator's API token; every
   read audited. Requests per second and wrk's latency percentiles.

The encryption tax is ``1 - encrypted / plaintext`` throughput. Run:
``.venv/bin/python benchmarks/vault_speed.py [--postgres URL] [--out-json FILE]``.
"""

from __future__ import annotations

import argparse
import gzip
import json
import multiprocessing
import os
import platform
import random
import re
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from concurrent.futures import ProcessPoolExecutor
from datetime import timedelta
from pathlib import Path

import orjson
import sqlalchemy as sa

from custodes.bootstrap import Custodes, Settings
from custodes.core.accounts import Role
from custodes.keys import SealedRecord
from custodes.vault.service import Requester, plan_transaction

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_BUNDLES = ROOT.parent / "shared" / "data" / "synthea-r4"
ADMIN = Requester("bench-admin", Role.ADMINISTRATOR, step_up_fresh=True)


class PlainCipher:
    """The plaintext build: the same interface as ``EnvelopeCipher``, no encryption."""

    def batch(self, refs) -> None:
        return None

    def store_new_keys(self, batch) -> None:
        return None

    def seal(self, ref, plaintext: bytes, batch=None) -> SealedRecord:
        return SealedRecord(ref.scope_id(), b"-", plaintext)

    def open(self, ref, sealed: SealedRecord) -> bytes:
        return sealed.ciphertext

    def shred_patient(self, patient_id: str) -> int:
        return 0


def _plan(path: Path) -> list:
    return plan_transaction(orjson.loads(gzip.decompress(path.read_bytes())))


def _custodes(data_dir: Path, database_url: str | None) -> Custodes:
    return Custodes(Settings(data_dir=data_dir, database_url=database_url,
                             argon2_time_cost=1, argon2_memory_kib=8, argon2_parallelism=1))  # fmt: skip


def import_rate(custodes: Custodes, files: list[Path], workers: int) -> dict:
    vault = custodes.vault
    started = time.perf_counter()
    resources = 0
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        for plans in pool.map(_plan, files):
            vault.commit_transaction(ADMIN, plans)
            resources += len(plans)
    seconds = time.perf_counter() - started
    return {"resources": resources, "seconds": round(seconds, 2), "per_second": round(resources / seconds)}


def _keys(custodes: Custodes) -> list[tuple[str, str]]:
    with custodes.engine.connect() as conn:
        rows = conn.execute(sa.text(
            "SELECT resource_type, record_id FROM vault_records WHERE current AND NOT deleted AND tier <> 'sensitive' "
            "ORDER BY resource_type, record_id"
        ))  # fmt: skip
        return [(r[0], r[1]) for r in rows]


def read_rate(custodes: Custodes, keys: list[tuple[str, str]], reads: int, seed: int) -> dict:
    vault = custodes.vault
    picks = random.Random(seed).choices(keys, k=reads)
    for resource_type, record_id in picks[:200]:  # warm-up
        vault.read(ADMIN, resource_type, record_id)
    latencies = []
    started = time.perf_counter()
    for resource_type, record_id in picks:
        t = time.perf_counter()
        vault.read(ADMIN, resource_type, record_id)
        latencies.append(time.perf_counter() - t)
    seconds = time.perf_counter() - started
    latencies.sort()
    return {
        "reads": reads,
        "p50_ms": round(latencies[len(latencies) // 2] * 1000, 3),
        "p99_ms": round(latencies[int(len(latencies) * 0.99)] * 1000, 3),
        "per_second": round(reads / seconds),
    }


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


_LUA = """
local paths = {%s}
local n = #paths
math.randomseed(%d)
wrk.headers["Authorization"] = "Bearer %s"
request = function()
  return wrk.format("GET", paths[math.random(n)])
end
"""


def _ms(text: str) -> float:
    value, unit = re.match(r"([\d.]+)(us|ms|s)", text).groups()
    return round(float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit], 2)


def http_rate(custodes: Custodes, data_dir: Path, database_url: str | None, keys: list[tuple[str, str]],
              seconds: int, connections: int, seed: int, tmp: Path, workers: int = 1) -> dict:  # fmt: skip
    if subprocess.run(["which", "wrk"], capture_output=True).returncode != 0:
        return {"skipped": "wrk is not installed (apt-get install wrk)"}
    identity = custodes.identity
    if identity.store.get_user("bench-admin") is None:
        identity.add_user("bench-admin", "administrator", "a long enough passphrase for benches")
    token = identity.issue_token("bench-admin", ("fhir",), timedelta(hours=2))
    picks = random.Random(seed).choices(keys, k=5000)
    script = tmp / "reads.lua"
    script.write_text(_LUA % (", ".join(f'"/fhir/{t}/{i}"' for t, i in picks), seed, token))
    port = _free_port()
    env = {**os.environ, "CUSTODES_DATA_DIR": str(data_dir)}
    env.pop("CUSTODES_DATABASE_URL", None)
    if database_url:
        env["CUSTODES_DATABASE_URL"] = database_url
    server = subprocess.Popen(
        [sys.executable, "-m", "custodes", "serve", "--host", "127.0.0.1", "--port", str(port),
         "--workers", str(workers)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        for _ in range(200):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        url = f"http://127.0.0.1:{port}"
        subprocess.run(["wrk", "-t1", "-c2", "-d2s", "-s", str(script), url], capture_output=True, check=True)
        run = subprocess.run(
            ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", str(script), url],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
    finally:
        server.terminate()
        server.wait(timeout=20)
    text = run.stdout
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    percentiles = dict(re.findall(r"^\s+(50|90|99)%\s+(\S+)", text, re.M))
    return {
        "server_processes": workers,
        "connections": connections,
        "seconds": seconds,
        "per_second": round(float(re.search(r"Requests/sec:\s+([\d.]+)", text)[1])),
        "p50_ms": _ms(percentiles["50"]),
        "p99_ms": _ms(percentiles["99"]),
        "non_2xx": int(errors[1]) if errors else 0,
    }


def _fresh_schema(url: str) -> tuple[str, callable]:
    schema = f"bench_{uuid.uuid4().hex[:10]}"
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))

    def drop() -> None:
        with engine.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        engine.dispose()

    return f"{url}?options=-csearch_path%3D{schema}", drop


def run_one(name: str, database_url: str | None, files: list[Path], args: argparse.Namespace) -> dict:
    results: dict[str, dict] = {}
    for build in ("encrypted", "plaintext"):
        with tempfile.TemporaryDirectory() as tmp:
            url, drop = _fresh_schema(database_url) if database_url else (None, lambda: None)
            try:
                custodes = _custodes(Path(tmp) / "data", url)
                custodes.ready_engine()
                if build == "plaintext":
                    custodes.__dict__["envelope"] = PlainCipher()
                row = {"import": import_rate(custodes, files, args.workers)}
                keys = _keys(custodes)
                row["read"] = read_rate(custodes, keys, args.reads, args.seed)
                if build == "encrypted":
                    for workers in args.server_workers:
                        row[f"http_{workers}"] = http_rate(custodes, Path(tmp) / "data", url, keys, args.seconds,
                                                           args.connections, args.seed, Path(tmp), workers)  # fmt: skip
                custodes.engine.dispose()
            finally:
                drop()
        results[build] = row
        print(f"{name} {build}: {json.dumps(row)}", flush=True)
    enc, plain = results["encrypted"], results["plaintext"]
    results["tax"] = {
        "import": round(1 - enc["import"]["per_second"] / plain["import"]["per_second"], 3),
        "read": round(1 - enc["read"]["per_second"] / plain["read"]["per_second"], 3),
    }
    print(f"{name} encryption tax: {results['tax']}", flush=True)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bundles", type=Path, default=DEFAULT_BUNDLES)
    parser.add_argument("--postgres", help="a PostgreSQL URL (a fresh schema is made and dropped)")
    parser.add_argument("--reads", type=int, default=5000)
    parser.add_argument("--seconds", type=int, default=15)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--server-workers", type=int, nargs="+", default=[1, 2],
                        help="custodes serve --workers values to measure")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out-json", type=Path)
    args = parser.parse_args()
    files = sorted(args.bundles.glob("*.json.gz"))
    if not files:
        raise SystemExit(f"no Bundles (*.json.gz) in {args.bundles}")
    report = {
        "machine": f"{platform.machine()} {platform.processor() or ''} {os.cpu_count()} cores".strip(),
        "python": platform.python_version(),
        "bundles": len(files),
        "sqlite": run_one("sqlite", None, files, args),
    }
    if args.postgres:
        report["postgresql"] = run_one("postgresql", args.postgres, files, args)
    if args.out_json:
        args.out_json.write_text(json.dumps(report, indent=2))
    print(json.dumps(report))


if __name__ == "__main__":
    main()
