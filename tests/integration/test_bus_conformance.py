"""One conformance suite for every EventBus adapter (STYLE.md: one suite per port).

Each test runs against the in-process bus (a unit test, no server) and against NATS
JetStream (marked ``integration``; its own uuid-named stream and subjects, deleted
afterwards). Adapter-specific behaviour lives in ``tests/unit/test_bus_inprocess.py``
and ``tests/integration/test_bus_nats.py``.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from tests.integration.jetstream import delete_stream

from custodes.core.errors import ServiceUnavailableError
from custodes.core.ports import EventBus
from custodes.storage.bus import InProcessBus, NatsJetStreamBus, subject_for_user


@dataclass
class Harness:
    """A way to open a fresh bus, and the subject prefix this test owns."""

    open: Callable[[], Awaitable[Any]]
    prefix: str

    def run(self, scenario: Callable[[EventBus, str], Awaitable[Any]]) -> Any:
        async def main() -> Any:
            async with await self.open() as bus:
                return await scenario(bus, self.prefix)

        return asyncio.run(main())


@pytest.fixture(params=["inprocess", pytest.param("nats", marks=pytest.mark.integration)])
def harness(request: pytest.FixtureRequest) -> Iterator[Harness]:
    prefix = f"t{uuid.uuid4().hex[:12]}"
    if request.param == "inprocess":
        bus = InProcessBus()

        async def open_inprocess() -> InProcessBus:
            return bus

        yield Harness(open_inprocess, prefix)
        return
    url = request.getfixturevalue("nats_url")
    stream = f"T_{prefix}"

    async def open_nats() -> NatsJetStreamBus:
        return await NatsJetStreamBus.connect(url, stream, (f"{prefix}.>",))

    try:
        yield Harness(open_nats, prefix)
    finally:
        asyncio.run(delete_stream(url, stream))


async def _publish_all(bus: EventBus, subject: str, payloads: list[bytes]) -> None:
    for payload in payloads:
        await bus.publish(subject, payload)


def test_fetch_returns_messages_in_publish_order(harness: Harness) -> None:
    sent = [f"event-{i}".encode() for i in range(20)]

    async def scenario(bus: EventBus, p: str) -> list[bytes]:
        await _publish_all(bus, f"{p}.access", sent)
        return await bus.fetch(f"{p}.access", "scorer", batch=100, timeout=1.0)

    assert harness.run(scenario) == sent


def test_each_fetch_returns_at_most_batch_and_never_repeats(harness: Harness) -> None:
    async def scenario(bus: EventBus, p: str) -> list[list[bytes]]:
        await _publish_all(bus, f"{p}.access", [b"0", b"1", b"2", b"3", b"4"])
        return [await bus.fetch(f"{p}.access", "scorer", batch=2, timeout=0.5) for _ in range(4)]

    assert harness.run(scenario) == [[b"0", b"1"], [b"2", b"3"], [b"4"], []]


def test_durable_consumers_are_independent(harness: Harness) -> None:
    async def scenario(bus: EventBus, p: str) -> dict[str, list[bytes]]:
        await _publish_all(bus, f"{p}.access", [b"a", b"b", b"c"])
        seen = {
            "scorer": await bus.fetch(f"{p}.access", "scorer", batch=10, timeout=1.0),
            "scorer again": await bus.fetch(f"{p}.access", "scorer", batch=10, timeout=0.2),
            # A durable that starts later still starts at the oldest message.
            "archiver": await bus.fetch(f"{p}.access", "archiver", batch=2, timeout=1.0),
        }
        await bus.publish(f"{p}.access", b"d")
        seen["scorer after d"] = await bus.fetch(f"{p}.access", "scorer", batch=10, timeout=1.0)
        seen["archiver after d"] = await bus.fetch(f"{p}.access", "archiver", 10, 1.0)
        return seen

    assert harness.run(scenario) == {
        "scorer": [b"a", b"b", b"c"],
        "scorer again": [],
        "archiver": [b"a", b"b"],
        "scorer after d": [b"d"],
        "archiver after d": [b"c", b"d"],
    }


def test_the_timeout_bounds_the_wait_for_the_first_message_not_the_batch(
    harness: Harness,
) -> None:
    sent = [f"event-{i:05d}".encode() for i in range(3_000)]

    async def scenario(bus: EventBus, p: str) -> tuple[list[bytes], list[bytes]]:
        for start in range(0, len(sent), 500):
            await asyncio.gather(
                *(bus.publish(f"{p}.access.p00", m) for m in sent[start : start + 500])
            )
        # Far less time than 3,000 messages take to arrive: they are all there, so
        # none is waited for and the whole batch comes.
        got = await bus.fetch(f"{p}.access.*", "scorer", batch=3_000, timeout=0.01)
        await bus.publish(f"{p}.access.p01", b"next")
        after = await bus.fetch(f"{p}.access.*", "scorer", batch=3_000, timeout=2.0)
        return got, after

    got, after = harness.run(scenario)
    assert sorted(got) == sent
    assert after == [b"next"]


def test_a_fetch_waiting_for_the_first_message_returns_with_it(harness: Harness) -> None:
    async def scenario(bus: EventBus, p: str) -> tuple[list[bytes], float]:
        async def later() -> None:
            await asyncio.sleep(0.3)
            await bus.publish(f"{p}.access", b"late")

        started = time.monotonic()
        sender = asyncio.create_task(later())
        got = await bus.fetch(f"{p}.access", "scorer", batch=100, timeout=5.0)
        await sender
        return got, time.monotonic() - started

    got, elapsed = harness.run(scenario)
    assert got == [b"late"]
    assert elapsed < 2.5


def test_fetch_with_nothing_to_deliver_returns_empty_after_timeout(harness: Harness) -> None:
    async def scenario(bus: EventBus, p: str) -> tuple[list[bytes], float]:
        await bus.publish(f"{p}.other", b"not for this subject")
        started = time.monotonic()
        got = await bus.fetch(f"{p}.access", "scorer", batch=5, timeout=0.3)
        return got, time.monotonic() - started

    got, elapsed = harness.run(scenario)
    assert got == []
    assert 0.25 <= elapsed < 2.0


def test_fetch_returns_a_message_published_while_it_waits(harness: Harness) -> None:
    async def scenario(bus: EventBus, p: str) -> tuple[list[bytes], float]:
        async def publish_later() -> None:
            await asyncio.sleep(0.2)
            await bus.publish(f"{p}.access", b"late")

        started = time.monotonic()
        got, _ = await asyncio.gather(
            bus.fetch(f"{p}.access", "scorer", batch=10, timeout=10.0), publish_later()
        )
        return got, time.monotonic() - started

    got, elapsed = harness.run(scenario)
    assert got == [b"late"]
    assert elapsed < 5.0


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ("{p}.access.u1", [b"1", b"4"]),
        ("{p}.*.u1", [b"1", b"2", b"4"]),
        ("{p}.access.*", [b"1", b"4"]),
        ("{p}.access.>", [b"1", b"3", b"4"]),
        ("{p}.>", [b"1", b"2", b"3", b"4"]),
        ("{p}.*", []),
        ("{p}.*.*.x", [b"3"]),
    ],
)
def test_wildcards_in_fetch_match_like_nats(
    harness: Harness, pattern: str, expected: list[bytes]
) -> None:
    async def scenario(bus: EventBus, p: str) -> list[bytes]:
        await bus.publish(f"{p}.access.u1", b"1")
        await bus.publish(f"{p}.signin.u1", b"2")
        await bus.publish(f"{p}.access.u2.x", b"3")
        await bus.publish(f"{p}.access.u1", b"4")
        return await bus.fetch(pattern.format(p=p), "reader", batch=10, timeout=0.3)

    assert harness.run(scenario) == expected


def test_payload_bytes_come_back_unchanged(harness: Harness) -> None:
    payloads = [b"", b"\x00\r\n\xff PING\r\n", bytes(range(256)) * 256]

    async def scenario(bus: EventBus, p: str) -> list[bytes]:
        await _publish_all(bus, f"{p}.access", payloads)
        return await bus.fetch(f"{p}.access", "scorer", batch=10, timeout=1.0)

    assert harness.run(scenario) == payloads


def test_user_partitions_route_each_user_to_one_subject(harness: Harness) -> None:
    users = [f"user-{i}" for i in range(12)]

    async def scenario(bus: EventBus, p: str) -> tuple[list[bytes], list[bytes]]:
        for user in users:
            await bus.publish(subject_for_user(f"{p}.access", user, 4), user.encode())
        everyone = await bus.fetch(f"{p}.access.*", "all", batch=100, timeout=1.0)
        mine = subject_for_user(f"{p}.access", "user-3", 4)
        one_partition = await bus.fetch(mine, "worker", batch=100, timeout=1.0)
        return everyone, one_partition

    everyone, one_partition = harness.run(scenario)
    assert everyone == [user.encode() for user in users]
    assert b"user-3" in one_partition
    same = [u for u in users if subject_for_user("x", u, 4) == subject_for_user("x", "user-3", 4)]
    assert one_partition == [u.encode() for u in same]


def test_a_durable_stays_bound_to_its_first_subject(harness: Harness) -> None:
    async def scenario(bus: EventBus, p: str) -> None:
        await bus.publish(f"{p}.access", b"a")
        await bus.fetch(f"{p}.access", "scorer", batch=1, timeout=1.0)
        with pytest.raises(ValueError, match="bound to subject"):
            await bus.fetch(f"{p}.signin", "scorer", batch=1, timeout=0.1)

    harness.run(scenario)


@pytest.mark.parametrize(
    ("call", "args"),
    [
        ("publish", ("{p}.access.*", b"x")),
        ("publish", ("{p}.>", b"x")),
        ("publish", ("{p}..access", b"x")),
        ("publish", ("{p}.access ", b"x")),
        ("publish", ("", b"x")),
        ("fetch", ("{p}.>.access", "scorer", 1, 0.1)),
        ("fetch", ("{p}.acc*", "scorer", 1, 0.1)),
        ("fetch", ("{p}.access", "score.r", 1, 0.1)),
        ("fetch", ("{p}.access", "", 1, 0.1)),
        ("fetch", ("{p}.access", "scorer", 0, 0.1)),
        ("fetch", ("{p}.access", "scorer", 1, -1.0)),
    ],
)
def test_invalid_arguments_raise_value_error(
    harness: Harness, call: str, args: tuple[Any, ...]
) -> None:
    async def scenario(bus: EventBus, p: str) -> None:
        filled = tuple(a.format(p=p) if isinstance(a, str) else a for a in args)
        with pytest.raises(ValueError):
            await getattr(bus, call)(*filled)

    harness.run(scenario)


def test_a_closed_bus_is_unavailable(harness: Harness) -> None:
    async def scenario(bus: EventBus, p: str) -> None:
        await bus.close()  # type: ignore[attr-defined]
        with pytest.raises(ServiceUnavailableError):
            await bus.publish(f"{p}.access", b"a")
        with pytest.raises(ServiceUnavailableError):
            await bus.fetch(f"{p}.access", "scorer", batch=1, timeout=0.1)

    harness.run(scenario)
