"""NatsJetStreamBus against the real NATS JetStream server of this machine.

The behaviour every bus shares is in ``test_bus_conformance.py``; here is what only the
NATS adapter has: a stream on the server, durable consumers that outlive a connection,
acknowledgements, and connection errors. Each test owns a uuid-named stream and subject
prefix and deletes the stream afterwards.
"""

from __future__ import annotations

import asyncio
import socket
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import nats
import nats.js.errors
import pytest
from nats.js.api import StorageType
from tests.integration.jetstream import delete_stream

from custodes.core.errors import ConfigurationError, ServiceUnavailableError
from custodes.storage.bus import HOW_TO_START_NATS, NatsJetStreamBus

pytestmark = pytest.mark.integration


@dataclass
class Stream:
    url: str
    name: str
    prefix: str

    async def connect(self, **options: float) -> NatsJetStreamBus:
        return await NatsJetStreamBus.connect(self.url, self.name, (f"{self.prefix}.>",), **options)


async def _stream_info(url: str, stream: str) -> nats.js.api.StreamInfo:
    nc = await nats.connect(url, connect_timeout=2, max_reconnect_attempts=1)
    try:
        return await nc.jetstream().stream_info(stream)
    finally:
        await nc.close()


@pytest.fixture
def stream(nats_url: str) -> Iterator[Stream]:
    prefix = f"t{uuid.uuid4().hex[:12]}"
    owned = Stream(nats_url, f"T_{prefix}", prefix)
    try:
        yield owned
    finally:
        asyncio.run(delete_stream(nats_url, owned.name))


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_connect_creates_a_file_stream_over_the_subjects(stream: Stream) -> None:
    async def scenario() -> None:
        async with await stream.connect() as bus:
            await bus.publish(f"{stream.prefix}.access", b"a")
            await bus.publish(f"{stream.prefix}.access", b"b")

    asyncio.run(scenario())
    info = asyncio.run(_stream_info(stream.url, stream.name))
    assert info.config.storage == StorageType.FILE
    assert info.config.subjects == [f"{stream.prefix}.>"]
    # publish returned after JetStream's ack, so both are stored.
    assert info.state.messages == 2


def test_connect_again_updates_the_stream_subjects_and_keeps_its_messages(
    stream: Stream,
) -> None:
    wider = [f"{stream.prefix}.>", f"x{stream.prefix}.>"]

    async def scenario() -> list[bytes]:
        async with await stream.connect() as bus:
            await bus.publish(f"{stream.prefix}.access", b"kept")
        async with await NatsJetStreamBus.connect(stream.url, stream.name, wider) as bus:
            await bus.publish(f"x{stream.prefix}.access", b"new subject")
            return await bus.fetch(f"{stream.prefix}.access", "scorer", batch=10, timeout=1.0)

    assert asyncio.run(scenario()) == [b"kept"]
    assert asyncio.run(_stream_info(stream.url, stream.name)).config.subjects == wider


def test_a_durable_consumer_resumes_after_reconnecting(stream: Stream) -> None:
    subject = f"{stream.prefix}.access.p00"

    async def scenario() -> tuple[list[bytes], list[bytes], list[bytes]]:
        async with await stream.connect(ack_wait=1.0) as bus:
            for i in range(4):
                await bus.publish(subject, f"m{i}".encode())
            before = await bus.fetch(subject, "scorer", batch=2, timeout=1.0)
        async with await stream.connect(ack_wait=1.0) as bus:
            after = await bus.fetch(subject, "scorer", batch=10, timeout=1.0)
            # Past ack_wait: a message delivered but not acknowledged would come again.
            await asyncio.sleep(1.5)
            again = await bus.fetch(subject, "scorer", batch=10, timeout=0.5)
        return before, after, again

    before, after, again = asyncio.run(scenario())
    assert before == [b"m0", b"m1"]
    assert after == [b"m2", b"m3"]
    assert again == []


async def _consumer_info(url: str, stream: str, durable: str) -> nats.js.api.ConsumerInfo:
    nc = await nats.connect(url, connect_timeout=2, max_reconnect_attempts=1)
    try:
        return await nc.jetstream().consumer_info(stream, durable)
    finally:
        await nc.close()


def test_a_fetched_batch_is_acknowledged_on_the_server_when_fetch_returns(
    stream: Stream,
) -> None:
    subject = f"{stream.prefix}.access.p00"
    sent = [f"m{i}".encode() for i in range(300)]

    async def scenario() -> tuple[list[bytes], nats.js.api.ConsumerInfo, list[bytes]]:
        async with await stream.connect(ack_wait=1.0) as bus:
            await asyncio.gather(*(bus.publish(subject, m) for m in sent[:150]))
            await asyncio.gather(*(bus.publish(subject, m) for m in sent[150:]))
            got = await bus.fetch(subject, "scorer", batch=500, timeout=1.0)
            # Asked from another connection: the acks are in before fetch returned.
            info = await _consumer_info(stream.url, stream.name, "scorer")
        await asyncio.sleep(1.5)  # past ack_wait: an unacknowledged message would come again
        async with await stream.connect(ack_wait=1.0) as bus:
            again = await bus.fetch(subject, "scorer", batch=500, timeout=0.5)
        return got, info, again

    got, info, again = asyncio.run(scenario())
    assert sorted(got) == sorted(sent)
    assert info.num_ack_pending == 0
    assert info.ack_floor.stream_seq == len(sent)
    assert again == []


def test_a_durable_capped_at_the_servers_default_is_lifted_to_take_whole_batches(
    stream: Stream,
) -> None:
    subject = f"{stream.prefix}.access.p00"
    sent = [f"m{i:04d}".encode() for i in range(1_500)]

    async def scenario() -> tuple[int, list[bytes], int]:
        async with await stream.connect() as bus:
            for start in range(0, len(sent), 500):
                await asyncio.gather(*(bus.publish(subject, m) for m in sent[start : start + 500]))
        nc = await nats.connect(stream.url, connect_timeout=2, max_reconnect_attempts=1)
        try:  # as an older release made it: no max_ack_pending, so the server's 1,000
            js = nc.jetstream()
            await js.add_consumer(
                stream.name,
                nats.js.api.ConsumerConfig(
                    durable_name="scorer",
                    filter_subject=subject,
                    ack_policy=nats.js.api.AckPolicy.EXPLICIT,
                ),
            )
            capped = (await js.consumer_info(stream.name, "scorer")).config.max_ack_pending
        finally:
            await nc.close()
        async with await stream.connect() as bus:
            got = await bus.fetch(subject, "scorer", batch=len(sent), timeout=0.5)
        info = await _consumer_info(stream.url, stream.name, "scorer")
        return capped, got, info.config.max_ack_pending

    capped, got, lifted = asyncio.run(scenario())
    assert capped == 1_000
    assert sorted(got) == sent
    assert lifted == -1


def test_a_durable_created_elsewhere_keeps_its_subject(stream: Stream) -> None:
    async def scenario() -> None:
        async with await stream.connect() as bus:
            await bus.fetch(f"{stream.prefix}.access", "scorer", batch=1, timeout=0.1)
        async with await stream.connect() as bus:
            with pytest.raises(ValueError, match="bound to subject"):
                await bus.fetch(f"{stream.prefix}.signin", "scorer", batch=1, timeout=0.1)

    asyncio.run(scenario())


def test_publishing_outside_the_stream_subjects_is_a_configuration_error(stream: Stream) -> None:
    async def scenario() -> None:
        async with await stream.connect() as bus:
            with pytest.raises(ConfigurationError, match=stream.name):
                await bus.publish(f"elsewhere{stream.prefix}.access", b"a")

    asyncio.run(scenario())


def test_a_stream_kept_in_memory_is_refused(stream: Stream) -> None:
    async def scenario() -> None:
        nc = await nats.connect(stream.url)
        try:
            await nc.jetstream().add_stream(
                name=stream.name, subjects=[f"{stream.prefix}.>"], storage=StorageType.MEMORY
            )
        finally:
            await nc.close()
        with pytest.raises(ConfigurationError, match="memory storage"):
            await stream.connect()

    asyncio.run(scenario())


def test_a_closed_port_raises_service_unavailable_with_a_clear_message() -> None:
    port = _closed_port()
    url = f"nats://custodes:s3cret@127.0.0.1:{port}"

    async def scenario() -> None:
        await NatsJetStreamBus.connect(url, f"T_{uuid.uuid4().hex[:12]}", connect_timeout=1.0)

    started = time.monotonic()
    with pytest.raises(ServiceUnavailableError) as caught:
        asyncio.run(scenario())
    message = str(caught.value)
    assert time.monotonic() - started < 5.0
    assert f"nats://127.0.0.1:{port}" in message
    assert "s3cret" not in message
    assert "custodes:" not in message
    assert HOW_TO_START_NATS in message
    assert "\n" not in message
