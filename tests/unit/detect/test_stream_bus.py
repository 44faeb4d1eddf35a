"""The stream runner on the in-process bus: micro-batches in, alerts out, batch scores kept."""

from __future__ import annotations

import asyncio

import orjson
import polars as pl
from polars.testing import assert_frame_equal

from custodes.core.clock import FixedClock
from custodes.detect.stream import ALERT_SUBJECT, StreamDetector, access_messages
from custodes.storage.bus import InProcessBus


async def _replay(detector: StreamDetector, events: pl.DataFrame) -> tuple[list, list[bytes]]:
    async with InProcessBus() as bus:
        for message in access_messages(events):
            await bus.publish("custodes.access.ward-a", message)
        scored = []
        while True:
            result = await detector.run_once(bus, batch=700, timeout=0.01)
            if result.scored.is_empty():
                break
            scored.append(result.scored)
        alerts = await bus.fetch(ALERT_SUBJECT, "test-alerts", 100_000, 0.01)
    return scored, alerts


def test_micro_batches_from_the_bus_score_as_the_batch_does(scored_hospital):
    events = scored_hospital.events.head(4_000)
    engine = scored_hospital.engine
    detector = StreamDetector(engine, threshold=50.0, clock=FixedClock(events["time"][0]))
    scored, alerts = asyncio.run(_replay(detector, events))
    assert len(scored) == 6  # 4,000 events in batches of 700
    batch, _ = engine.score(events)
    assert_frame_equal(pl.concat(scored), batch)
    expected = batch.filter(pl.col("score") >= 50.0)
    published = [orjson.loads(alert) for alert in alerts]
    assert [a["event_id"] for a in published] == expected["event_id"].to_list()
    assert all(a["reasons"] for a in published)


def test_a_message_that_is_not_an_event_is_refused_in_one_line(scored_hospital):
    import pytest

    from custodes.core.errors import InputFormatError
    from custodes.detect.stream import access_events_from

    with pytest.raises(InputFormatError, match="message 2 of the batch is not JSON"):
        access_events_from([access_messages(scored_hospital.events.head(1))[0], b"{oops"])
    with pytest.raises(InputFormatError, match="message 1 of the batch is not an access event"):
        access_events_from([b'{"hello": 1}'])
