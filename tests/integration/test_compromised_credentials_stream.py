"""The issue's end-to-end story over the bus: a compromised account's unusual sign-in,
mass access and export, published on the real NATS JetStream among a day's ordinary
traffic, consumed by the streaming pipeline, end with ONE case that tells it all, the
account locked, its sessions revoked and a signed webhook received by a real HTTP
receiver that checks the HMAC; then ``custodes watch`` does the same from the shell."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import polars as pl
import pytest
from tests.integration.jetstream import delete_stream
from tests.integration.receivers import signed_webhook_receiver
from tests.integration.test_cli import custodes, last_json

from custodes.bootstrap import Custodes, Settings
from custodes.core.clock import FixedClock
from custodes.core.responses import RunStatus
from custodes.detect.stream import access_messages, signin_messages
from custodes.identity.errors import NotAuthenticated
from custodes.ingest.context_service import read_context_folder
from custodes.ingest.service import read_event_files
from custodes.simulate import config_for, simulate
from custodes.simulate.attacks import compromised_credentials_attack
from custodes.storage.bus import NatsJetStreamBus, subject_for_user
from custodes.streaming import Subjects

pytestmark = pytest.mark.integration

KEY = "webhook-test-key-0123456789abcdef"


@pytest.fixture(scope="module")
def hospital(tmp_path_factory: pytest.TempPathFactory):
    """Four simulated days: three learnt, the fourth streamed with an attack in it."""
    folder = tmp_path_factory.mktemp("stream") / "hospital"
    simulate(config_for("small", 4242, days=4), folder)
    context, _ = read_context_folder(folder / "context")
    log = read_event_files([folder / "events.csv", folder / "signins.ndjson"])
    cut = log.access["time"].min().replace(hour=0, minute=0, second=0, microsecond=0)
    cut += timedelta(days=3)
    history = replace(
        log,
        access=log.access.filter(pl.col("time") < cut),
        signins=log.signins.filter(pl.col("time") < cut),
    )
    user = history.access.group_by("user_id").len().sort("len", "user_id", descending=True)
    attack = compromised_credentials_attack(
        user["user_id"][0],
        context.patients["patient_id"].to_list(),
        cut + timedelta(hours=2, minutes=5),
        seed=7,
    )
    until = cut + timedelta(hours=8)
    accesses = pl.concat(
        [log.access.filter(pl.col("time").is_between(cut, until)), attack.accesses]
    )
    signins = pl.concat([log.signins.filter(pl.col("time").is_between(cut, until)), attack.signins])
    return folder, context, history, attack, accesses.sort("time", "event_id"), signins.sort("time")


async def _publish(url: str, stream: str, prefix: str, accesses, signins) -> None:
    subjects = Subjects(prefix)
    bus = await NatsJetStreamBus.connect(url, stream, (f"{prefix}.>",))
    try:
        for row, message in zip(
            signins.iter_rows(named=True), signin_messages(signins), strict=True
        ):
            await bus.publish(subject_for_user(subjects.signin, row["user_id"], 4), message)
        for row, message in zip(
            accesses.iter_rows(named=True), access_messages(accesses), strict=True
        ):
            await bus.publish(subject_for_user(subjects.access, row["user_id"], 4), message)
    finally:
        await bus.close()


@pytest.fixture
def bus_names(nats_url: str):
    token = uuid.uuid4().hex[:12]
    stream, prefix = f"T_{token}", f"t{token}"
    yield stream, prefix
    asyncio.run(delete_stream(nats_url, stream))


def test_a_streamed_attack_ends_locked_revoked_reported_in_one_case(
    hospital, nats_url: str, postgres_url: str, bus_names, tmp_path: Path
) -> None:
    _, context, history, attack, accesses, signins = hospital
    stream, prefix = bus_names
    with signed_webhook_receiver(KEY.encode()) as (url, received):
        settings = Settings(
            data_dir=tmp_path,
            database_url=postgres_url,
            nats_url=nats_url,
            nats_stream=stream,
            nats_prefix=prefix,
            webhook_url=url,
            webhook_key=KEY,
            argon2_memory_kib=8,
            argon2_time_cost=1,
            argon2_parallelism=1,
        )
        clock = FixedClock(accesses["time"].max() + timedelta(minutes=5))
        app = Custodes(settings, clock)
        user = attack.user_id
        app.identity.add_user(user, "clinician", password="correct horse battery staple")
        session = app.identity.sessions.start(user)
        asyncio.run(_publish(nats_url, stream, prefix, accesses, signins))

        # The identity service publishes its own sign-in events on the same bus: during
        # the run, the response's lockout and the reset of the second factors.
        _, totals = app.watch(
            context,
            history,
            budget=10,
            max_events=accesses.height + signins.height + 2,
            max_seconds=120,  # a guard, should an event never come
            batch=300,
        )

        assert (totals.accesses, totals.signins) == (accesses.height, signins.height + 2)
        assert totals.batches > 3  # the story arrived over several micro-batches
        book = app.case_book()
        (case,) = [c for c in book.queue(limit=1000) if c.user_id == user]
        assert case.kind == "compromised_credentials_chain" and str(case.severity) == "critical"
        story = " ".join(case.story)
        assert "unusual sign-in at 02:05 then access at" in story and "then export at" in story
        _, alerts = book.show(case.case_id)
        attack_ids = set(attack.accesses["event_id"]) | set(attack.signins["event_id"])
        assert {a.event_id for a in alerts} <= attack_ids
        assert case.patient_count >= 10 and any(a.source == "signin" for a in alerts)
        # The account is locked, its session ended, its second factors reset (it enrols
        # again) and its next sensitive operation needs a step-up.
        account = app.identity.user(user)
        assert account.locked_until is not None and account.mfa_enrolment_required
        assert account.step_up_demanded_at is not None
        with pytest.raises(NotAuthenticated):
            app.identity.sessions.check(session.session_id)
        # The signed webhook reached the receiver, which checked its HMAC.
        good, body = received.get(timeout=10)
        assert good and body["case"]["case_id"] == case.case_id
        statuses = {r.action: r.status for r in app.responder().runs.runs(case.case_id)}
        assert statuses["lock_account"] is RunStatus.SUCCEEDED
        assert statuses["revoke_sessions"] is RunStatus.SUCCEEDED
        assert statuses["webhook"] is RunStatus.SUCCEEDED
        # Only the attack's account was locked by the day's stream.
        locked = [u.name for u in app.identity.list_users() if u.locked_until is not None]
        assert locked == [user]


def test_custodes_watch_reads_the_bus_until_its_bound(hospital, nats_url: str, bus_names) -> None:
    folder, _, _, attack, accesses, signins = hospital
    stream, prefix = bus_names
    asyncio.run(_publish(nats_url, stream, prefix, accesses.head(3_000), signins.head(50)))
    env = {
        "CUSTODES_NATS_URL": nats_url,
        "CUSTODES_NATS_STREAM": stream,
        "CUSTODES_NATS_PREFIX": prefix,
    }
    run = custodes(
        "watch",
        "--context",
        str(folder / "context"),
        "--history",
        str(folder / "events.csv"),
        "--max-events",
        "1000",
        "--batch",
        "400",
        "--json",
        data_dir=folder.parent / "watch",
        env=env,
    )
    assert run.returncode == 0, run.stderr
    summary = last_json(run.stdout)
    assert summary["accesses"] + summary["signins"] == 1000
    assert summary["batches"] >= 3 and summary["threshold"] >= 25


def test_custodes_watch_without_a_bus_says_how_to_get_one(hospital, tmp_path: Path) -> None:
    folder, *_ = hospital
    run = custodes(
        "watch",
        "--context",
        str(folder / "context"),
        "--history",
        str(folder / "events.csv"),
        "--max-events",
        "10",
        data_dir=tmp_path,
        env={"CUSTODES_NATS_URL": ""},
    )
    assert run.returncode != 0 and "CUSTODES_NATS_URL" in run.stderr
