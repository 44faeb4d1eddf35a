"""Stream response time: from an attack's export published on NATS JetStream to the
account locked in the identity store, against steady background traffic (target p99
at most 1 s).

Three processes, as in production: ``Custodes.watch`` (the streaming pipeline, fitted
on three simulated days, PostgreSQL as its store) consumes the bus; a publisher sends
the fourth day's accesses as background at ``--rate`` events per second; this process
injects ``--attacks`` compromised-credentials attacks, one account each. Each attack's
failed logins, sign-in and sweep of records are published first (the case grows, the
lock waits for an officer); after a pause the exports are published, which make the
case the credentials chain whose playbook locks at once. The latency is from just
before the first export is published to the moment a poll of the ``users`` table
(every 5 ms, from this process) sees the account locked.

    .venv/bin/python benchmarks/stream_response.py [--rate 2000] [--attacks 40]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import statistics
import tempfile
import time
import uuid
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import nats
import nats.js.errors
import numpy as np
import polars as pl
import sqlalchemy as sa

from custodes.bootstrap import Custodes, Settings
from custodes.detect.stream import access_messages, signin_messages
from custodes.ingest.context_service import read_context_folder
from custodes.ingest.service import read_event_files
from custodes.simulate import config_for, simulate
from custodes.simulate.attacks import compromised_credentials_attack
from custodes.storage.bus import NatsJetStreamBus, subject_for_user
from custodes.storage.sql_identity import SqlIdentityStore
from custodes.streaming import Subjects

PARTITIONS = 4
DURABLE_ACCESS = "custodes-watch-access"


def settings(args: argparse.Namespace, data_dir: Path) -> dict:
    return {
        "data_dir": data_dir,
        "database_url": args.database_url,
        "nats_url": args.nats,
        "nats_stream": args.stream,
        "nats_prefix": args.prefix,
        "argon2_memory_kib": 8,
        "argon2_time_cost": 1,
        "argon2_parallelism": 1,
    }


def split(folder: Path):
    context, _ = read_context_folder(folder / "context")
    log = read_event_files([folder / "events.csv", folder / "signins.ndjson"])
    cut = log.access["time"].min().replace(hour=0, minute=0, second=0, microsecond=0)
    cut += timedelta(days=3)
    history = replace(
        log,
        access=log.access.filter(pl.col("time") < cut),
        signins=log.signins.filter(pl.col("time") < cut),
    )
    return context, history, log.access.filter(pl.col("time") >= cut), cut


def watch(config: dict, folder: Path, seconds: float, out: multiprocessing.Queue) -> None:
    """The pipeline process: ``Custodes.watch`` for ``seconds``."""
    context, history, _, _ = split(folder)
    _, totals = Custodes(Settings(**config)).watch(
        context, history, budget=10, max_seconds=seconds
    )
    out.put(totals.as_json())


def background(args: argparse.Namespace, folder: Path, skip: list[str], stop_at: float) -> None:
    """The publisher process: the fourth day's accesses, again and again, at ``--rate``."""
    _, _, day, _ = split(folder)
    day = day.filter(~pl.col("user_id").is_in(skip))
    subjects = Subjects(args.prefix)
    routes = [subject_for_user(subjects.access, user, PARTITIONS) for user in day["user_id"]]

    def day_again(number: int) -> list[tuple[str, bytes]]:
        """The day once more, a day later each time, under new event ids: the engine's
        state sees time move forward, and no access is a duplicate."""
        again = day.with_columns(
            time=pl.col("time") + timedelta(days=number),
            event_id=pl.col("event_id") + f"-{number}",
        )
        return list(zip(routes, access_messages(again), strict=True))

    async def run() -> None:
        bus = await NatsJetStreamBus.connect(args.nats, args.stream, (f"{args.prefix}.>",))
        per_tick, sent, start = max(1, round(args.rate * 0.01)), 0, time.perf_counter()
        try:
            messages, number = day_again(0), 0
            while time.time() < stop_at:
                while sent + per_tick > len(messages):
                    number += 1
                    messages += day_again(number)
                chunk = messages[sent : sent + per_tick]
                await asyncio.gather(*(bus.publish(s, m) for s, m in chunk))
                sent += per_tick
                ahead = start + sent / args.rate - time.perf_counter()
                if ahead > 0:
                    await asyncio.sleep(ahead)
        finally:
            await bus.close()
        elapsed = time.perf_counter() - start
        print(f"background: {sent:,} accesses in {elapsed:.1f} s ({sent / elapsed:,.0f}/s)")

    asyncio.run(run())


async def wait_for_pipeline(args: argparse.Namespace) -> None:
    """Until the pipeline has fitted and made its consumer, so no backlog builds first."""
    bus = await NatsJetStreamBus.connect(args.nats, args.stream, (f"{args.prefix}.>",))
    try:
        while True:
            try:
                await bus._js.consumer_info(args.stream, DURABLE_ACCESS)
                return
            except nats.js.errors.NotFoundError:
                await asyncio.sleep(0.2)
    finally:
        await bus.close()


async def attack_all(args, folder: Path, users: list[str], engine: sa.Engine) -> list[float | None]:
    context, _, _, cut = split(folder)
    patients = context.patients["patient_id"].to_list()
    subjects = Subjects(args.prefix)
    store = SqlIdentityStore(engine)
    bus = await NatsJetStreamBus.connect(args.nats, args.stream, (f"{args.prefix}.>",))
    latencies: list[float | None] = []
    try:
        await asyncio.sleep(args.warmup)
        for k, user in enumerate(users):
            attack = compromised_credentials_attack(
                user, patients, cut + timedelta(hours=1 + k, minutes=5), seed=k, tag=f"a{k}"
            )
            signin = subject_for_user(subjects.signin, user, PARTITIONS)
            access = subject_for_user(subjects.access, user, PARTITIONS)
            sweep = attack.accesses.filter(pl.col("action") != "export")
            exports = attack.accesses.filter(pl.col("action") == "export")
            for message in signin_messages(attack.signins):
                await bus.publish(signin, message)
            for message in access_messages(sweep):
                await bus.publish(access, message)
            await asyncio.sleep(args.pause)
            if store.get_user(user).locked_until is not None:
                print(f"attack {k}: {user} locked before its exports; not counted")
                latencies.append(None)
                continue
            started = time.perf_counter()
            for message in access_messages(exports):
                await bus.publish(access, message)
            latency = None
            while time.perf_counter() - started < args.give_up:
                if store.get_user(user).locked_until is not None:
                    latency = time.perf_counter() - started
                    break
                await asyncio.sleep(0.005)
            latencies.append(latency)
            shown = (
                f"{latency * 1000:.0f} ms"
                if latency is not None
                else f"not locked within {args.give_up:g} s"
            )
            print(f"attack {k}: {user} {shown}")
    finally:
        await bus.close()
    return latencies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rate", type=float, default=2_000, help="background accesses/s")
    parser.add_argument("--attacks", type=int, default=40)
    parser.add_argument("--pause", type=float, default=1.0, help="sweep to exports, s")
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--give-up", type=float, default=10.0)
    parser.add_argument("--nats", default="nats://127.0.0.1:4222")
    parser.add_argument("--postgres", default="postgresql+psycopg://postgres@127.0.0.1:5432/test")
    parser.add_argument("--seed", type=int, default=4242)
    args = parser.parse_args()
    token = uuid.uuid4().hex[:10]
    args.stream, args.prefix = f"BENCH_{token}", f"bench{token}"
    schema = f"bench_{token}"
    admin = sa.create_engine(args.postgres)
    with admin.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    args.database_url = f"{args.postgres}?options=-csearch_path%3D{schema}"
    spawn = multiprocessing.get_context("spawn")
    try:
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp) / "hospital"
            simulate(config_for("small", args.seed, days=4), folder)
            config = settings(args, Path(tmp) / "data")
            app = Custodes(Settings(**config))
            _, history, _, _ = split(folder)
            ranked = history.access.group_by("user_id").len().sort("len", "user_id", descending=True)
            users = ranked["user_id"].head(args.attacks).to_list()
            for user in users:
                app.identity.add_user(user, "clinician", password="correct horse battery staple")
            seconds = 90 + args.warmup + args.attacks * (args.pause + 1.5)
            results = spawn.Queue()
            pipeline = spawn.Process(target=watch, args=(config, folder, seconds, results))
            pipeline.start()
            asyncio.run(wait_for_pipeline(args))
            publisher = spawn.Process(
                target=background, args=(args, folder, users, time.time() + seconds)
            )
            publisher.start()
            latencies = asyncio.run(attack_all(args, folder, users, app.engine))
            totals = results.get(timeout=seconds + 120)
            pipeline.join()
            publisher.join()
    finally:
        with admin.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        asyncio.run(_drop_stream(args.nats, args.stream))
    measured = sorted(x for x in latencies if x is not None)
    missed = sum(1 for x in latencies if x is None)
    print(f"pipeline: {totals['accesses']:,} accesses, {totals['signins']:,} sign-ins, "
          f"{totals['batches']:,} micro-batches, {totals['alerts']:,} alerts, "
          f"{len(totals['cases']):,} cases")
    if measured:
        p50 = statistics.median(measured)
        p99 = float(np.quantile(measured, 0.99, method="higher"))
        print(f"export published -> account locked, {len(measured)} attacks at "
              f"{args.rate:,.0f} background accesses/s: p50 {p50 * 1000:.0f} ms, "
              f"p99 {p99 * 1000:.0f} ms, max {measured[-1] * 1000:.0f} ms; "
              f"{missed} not locked in time or locked early, not counted; "
              f"load average {os.getloadavg()[0]:.1f}")


async def _drop_stream(url: str, stream: str) -> None:
    nc = await nats.connect(url, connect_timeout=2, max_reconnect_attempts=1)
    try:
        await nc.jetstream().delete_stream(stream)
    except nats.js.errors.NotFoundError:
        pass
    finally:
        await nc.close()


if __name__ == "__main__":
    main()
