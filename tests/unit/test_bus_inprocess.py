"""InProcessBus specifics and the subject helpers.

What every bus must do (order, batch limits, independent durables, timeouts, wildcards,
argument checks) is in ``tests/integration/test_bus_conformance.py``, which runs its
in-process case without a server. Here: what only the in-memory adapter promises, and
the pure helpers.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter

import pytest

from custodes.core.errors import ServiceUnavailableError
from custodes.storage.bus import (
    InProcessBus,
    redacted_nats_url,
    subject_for_user,
    subject_matches,
)


@pytest.mark.parametrize(
    ("pattern", "subject", "expected"),
    [
        ("a.b.c", "a.b.c", True),
        ("a.b.c", "a.b", False),
        ("a.b", "a.b.c", False),
        ("a.*.c", "a.b.c", True),
        ("a.*.c", "a.b.d", False),
        ("a.*", "a.b.c", False),
        ("*", "a", True),
        ("a.>", "a.b", True),
        ("a.>", "a.b.c.d", True),
        ("a.>", "a", False),
        (">", "a.b", True),
        ("a.*.>", "a.b", False),
        ("a.*.>", "a.b.c", True),
    ],
)
def test_subject_matches(pattern: str, subject: str, expected: bool) -> None:
    assert subject_matches(pattern, subject) is expected


@pytest.mark.parametrize(
    ("user_id", "partitions", "expected"),
    [
        # Pinned vectors: a change here moves every user's state to another worker.
        ("u-1001", 16, "custodes.events.access.p05"),
        ("alice", 16, "custodes.events.access.p15"),
        ("bob", 64, "custodes.events.access.p26"),
        ("bob", 1000, "custodes.events.access.p650"),
        ("", 16, "custodes.events.access.p04"),
        ("anyone", 1, "custodes.events.access.p00"),
    ],
)
def test_subject_for_user_is_a_stable_sha256_partition(
    user_id: str, partitions: int, expected: str
) -> None:
    assert subject_for_user("custodes.events.access", user_id, partitions) == expected


def test_subject_for_user_spreads_users_evenly() -> None:
    counts = Counter(subject_for_user("e", f"user-{i}", 16) for i in range(16_000))
    assert len(counts) == 16
    assert all(800 <= n <= 1200 for n in counts.values())


@pytest.mark.parametrize(
    ("prefix", "partitions"),
    [("e", 0), ("e", -3), ("e", True), ("e.*", 4), ("e.>", 4), ("", 4), ("e..x", 4)],
)
def test_subject_for_user_rejects_bad_arguments(prefix: str, partitions: int) -> None:
    with pytest.raises(ValueError):
        subject_for_user(prefix, "u-1", partitions)


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("nats://127.0.0.1:4222", "nats://127.0.0.1:4222"),
        ("nats://app:s3cret@bus:4222", "nats://bus:4222"),
        ("nats://t0ken@bus:4222", "nats://bus:4222"),
        ("tls://a:b@c@bus:4443/path?secret=1", "tls://bus:4443"),
        ("app:s3cret@bus:4222", "bus:4222"),
    ],
)
def test_redacted_nats_url_drops_credentials(url: str, shown: str) -> None:
    assert redacted_nats_url(url) == shown


def test_competing_fetches_on_one_durable_share_the_messages() -> None:
    async def scenario() -> list[list[bytes]]:
        bus = InProcessBus()
        workers = [
            asyncio.create_task(bus.fetch("e.access", "scorers", batch=3, timeout=2.0))
            for _ in range(4)
        ]
        await asyncio.sleep(0)
        for i in range(12):
            await bus.publish("e.access", str(i).encode())
            await asyncio.sleep(0)
        batches = list(await asyncio.gather(*workers))
        # A fetch returns as soon as it has something; the rest waits for the next one.
        batches.append(await bus.fetch("e.access", "scorers", batch=100, timeout=0))
        return batches

    batches = asyncio.run(scenario())
    delivered = [m for batch in batches for m in batch]
    assert sorted(delivered, key=int) == [str(i).encode() for i in range(12)]
    assert all(1 <= len(batch) <= 3 for batch in batches[:-1])


def test_two_waiters_one_message_the_other_times_out_empty() -> None:
    async def scenario() -> list[list[bytes]]:
        bus = InProcessBus()
        waiting = [
            asyncio.create_task(bus.fetch("e.access", "scorers", batch=5, timeout=0.3))
            for _ in range(2)
        ]
        await asyncio.sleep(0.05)
        await bus.publish("e.access", b"only")
        return list(await asyncio.gather(*waiting))

    assert sorted(asyncio.run(scenario())) == [[], [b"only"]]


def test_a_wildcard_durable_sees_subjects_that_appear_later() -> None:
    async def scenario() -> list[list[bytes]]:
        bus = InProcessBus()
        await bus.publish("e.access.p00", b"1")
        first = await bus.fetch("e.access.*", "scorer", batch=10, timeout=0)
        await bus.publish("e.access.p07", b"2")
        await bus.publish("e.access.p00", b"3")
        second = await bus.fetch("e.access.*", "scorer", batch=10, timeout=0)
        return [first, second]

    assert asyncio.run(scenario()) == [[b"1"], [b"2", b"3"]]


def test_the_bus_keeps_its_state_across_event_loops() -> None:
    bus = InProcessBus()
    asyncio.run(bus.publish("e.access", b"a"))
    asyncio.run(bus.publish("e.access", b"b"))
    assert asyncio.run(bus.fetch("e.access", "scorer", batch=1, timeout=0)) == [b"a"]
    assert asyncio.run(bus.fetch("e.access", "scorer", batch=1, timeout=0.05)) == [b"b"]
    assert asyncio.run(bus.fetch("e.access", "scorer", batch=1, timeout=0.05)) == []


def test_publish_keeps_a_copy_of_a_mutable_payload() -> None:
    async def scenario() -> list[bytes]:
        bus = InProcessBus()
        payload = bytearray(b"before")
        await bus.publish("e.access", payload)
        payload[:] = b"after!"
        return await bus.fetch("e.access", "scorer", batch=1, timeout=0)

    assert asyncio.run(scenario()) == [b"before"]


def test_zero_timeout_returns_at_once() -> None:
    async def scenario() -> tuple[list[bytes], float]:
        bus = InProcessBus()
        started = time.monotonic()
        got = await bus.fetch("e.access", "scorer", batch=1, timeout=0)
        return got, time.monotonic() - started

    got, elapsed = asyncio.run(scenario())
    assert got == []
    assert elapsed < 0.1


def test_closing_wakes_a_waiting_fetch_which_raises() -> None:
    async def scenario() -> None:
        bus = InProcessBus()
        waiting = asyncio.create_task(bus.fetch("e.access", "scorer", batch=1, timeout=10.0))
        await asyncio.sleep(0.05)
        started = time.monotonic()
        await bus.close()
        with pytest.raises(ServiceUnavailableError, match="closed"):
            await waiting
        assert time.monotonic() - started < 1.0

    asyncio.run(scenario())


def test_async_with_closes_the_bus() -> None:
    async def scenario() -> None:
        async with InProcessBus() as bus:
            await bus.publish("e.access", b"a")
        with pytest.raises(ServiceUnavailableError):
            await bus.publish("e.access", b"b")

    asyncio.run(scenario())
