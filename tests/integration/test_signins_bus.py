"""Sign-in events reach the event store and the bus: in-process, and real NATS JetStream."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime

import nats
import orjson
import pytest

from custodes.core.events import Outcome, SignInEvent, SignInKind
from custodes.storage.bus import InProcessBus, NatsJetStreamBus
from custodes.storage.memory import MemoryEventSink
from custodes.storage.signins import BackgroundBus, SignInFanOut


def _event(user: str, n: int) -> SignInEvent:
    return SignInEvent(
        event_id=f"e{n}",
        time=datetime(2026, 3, 9, 9, n, tzinfo=UTC),
        user_id=user,
        kind=SignInKind.LOGIN,
        outcome=Outcome.MINOR_FAILURE,
        source_ip="10.0.0.1",
        application="custodes",
    )


def _bus(kind: str, request) -> tuple[BackgroundBus, str, str | None]:
    prefix = f"t{uuid.uuid4().hex[:12]}"
    if kind == "inprocess":

        async def in_process() -> InProcessBus:
            return InProcessBus()

        return BackgroundBus(in_process), prefix, None
    url = request.getfixturevalue("nats_url")
    stream = f"T_{prefix}"
    return (
        BackgroundBus(lambda: NatsJetStreamBus.connect(url, stream, (f"{prefix}.>",))),
        prefix,
        stream,
    )


@pytest.mark.parametrize("kind", ["inprocess", pytest.param("nats", marks=pytest.mark.integration)])
def test_sign_ins_go_to_the_store_and_the_bus(kind, request):
    bus, prefix, stream = _bus(kind, request)
    try:
        sink = MemoryEventSink()
        fan_out = SignInFanOut([sink], bus, partitions=1, subject=f"{prefix}.signin")
        for n in range(3):
            fan_out.record(_event("alice", n))
        assert sink.signins["event_id"].to_list() == ["e0", "e1", "e2"]
        messages = bus.fetch(f"{prefix}.signin.>", "detectors", batch=10, timeout=2)
        rows = [orjson.loads(m) for m in messages]
        assert [r["event_id"] for r in rows] == ["e0", "e1", "e2"]
        assert rows[0]["kind"] == "login" and rows[0]["outcome"] == "minor_failure"
    finally:
        bus.close()
        if stream:
            asyncio.run(_delete(request.getfixturevalue("nats_url"), stream))


async def _delete(url: str, stream: str) -> None:
    nc = await nats.connect(url, connect_timeout=2, max_reconnect_attempts=1)
    try:
        await nc.jetstream().delete_stream(stream)
    finally:
        await nc.close()


def test_a_failing_bus_does_not_fail_the_sign_in(caplog):
    class Broken:
        def publish(self, subject: str, payload: bytes) -> None:
            raise ConnectionError("down")

    sink = MemoryEventSink()
    SignInFanOut([sink], Broken()).record(_event("alice", 0))
    assert sink.signins.height == 1
    assert "not published on the bus: ConnectionError" in caplog.text
