"""The stream runner against the real NATS JetStream server: events in, alerts out."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import orjson
import polars as pl
import pytest
from polars.testing import assert_frame_equal
from tests.integration.jetstream import delete_stream

from custodes.detect.engine import DetectionEngine
from custodes.detect.stream import StreamDetector, access_messages
from custodes.ingest.context_service import read_context_folder
from custodes.ingest.service import read_event_files
from custodes.simulate import config_for, simulate
from custodes.storage.bus import NatsJetStreamBus

pytestmark = pytest.mark.integration


async def _run(url: str, prefix: str, detector: StreamDetector, events: pl.DataFrame):
    bus = await NatsJetStreamBus.connect(url, f"T_{prefix}", (f"{prefix}.>",))
    try:
        for message in access_messages(events):
            await bus.publish(f"{prefix}.access.ward-a", message)
        scored = []
        while True:
            result = await detector.run_once(
                bus, subject=f"{prefix}.access.>", durable="detect", batch=500, timeout=0.5
            )
            if result.scored.is_empty():
                break
            scored.append(result.scored)
        alerts = await bus.fetch(f"{prefix}.alerts", "alerts", 10_000, 0.5)
    finally:
        await bus.close()
        await delete_stream(url, f"T_{prefix}")
    return scored, alerts


def test_stream_over_jetstream_publishes_the_batch_alerts(nats_url: str, tmp_path: Path) -> None:
    simulate(config_for("small", 77, days=2), tmp_path)
    context, _ = read_context_folder(tmp_path / "context")
    events = read_event_files([tmp_path / "events.csv"]).access.head(2_000)
    engine = DetectionEngine(context, seed=0).fit(events)
    prefix = f"t{uuid.uuid4().hex[:12]}"
    detector = StreamDetector(engine, threshold=40.0, alert_subject=f"{prefix}.alerts")
    scored, alerts = asyncio.run(_run(nats_url, prefix, detector, events))
    batch, _ = engine.score(events)
    assert_frame_equal(pl.concat(scored), batch)
    expected = batch.filter(pl.col("score") >= 40.0)["event_id"].to_list()
    assert expected, "the seeded log has alerts at 40"
    assert [orjson.loads(alert)["event_id"] for alert in alerts] == expected
