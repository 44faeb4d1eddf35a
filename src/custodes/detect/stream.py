"""The stream runner: micro-batches of access events from the bus, scored as they come.

Each micro-batch goes through the same ``DetectionEngine.score`` as the batch runner,
carrying the engine's state (per user: patients seen, workstations, today's volume,
today's suspicious accesses) from one batch to the next, so the stream's scores equal
the batch runner's for the same events in the same order. Accesses whose score reaches
the threshold are published as alerts, one JSON message each, with their reasons.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import orjson
import polars as pl

from custodes.core.clock import Clock, SystemClock
from custodes.core.errors import InputFormatError
from custodes.core.events import ACCESS_EVENT_SCHEMA, SIGNIN_EVENT_SCHEMA
from custodes.core.ports import EventBus
from custodes.detect.engine import DetectionEngine, EngineState

ACCESS_SUBJECT = "custodes.access"
ALERT_SUBJECT = "custodes.alerts"


def access_messages(events: pl.DataFrame) -> list[bytes]:
    """One JSON message per access event (times as ISO 8601 UTC)."""
    rows = events.select(list(ACCESS_EVENT_SCHEMA)).with_columns(
        pl.col("time").dt.strftime("%Y-%m-%dT%H:%M:%S%.6fZ")
    )
    return [orjson.dumps(row) for row in rows.iter_rows(named=True)]


def access_events_from(messages: Sequence[bytes]) -> pl.DataFrame:
    """The access events of a micro-batch; a message that is not one is refused."""
    rows = []
    for number, message in enumerate(messages, start=1):
        try:
            row = orjson.loads(message)
        except orjson.JSONDecodeError:
            raise InputFormatError(f"message {number} of the batch is not JSON") from None
        if (
            not isinstance(row, dict)
            or not {"event_id", "time", "user_id", "patient_id"} <= row.keys()
        ):
            raise InputFormatError(f"message {number} of the batch is not an access event")
        rows.append(row)
    frame = pl.DataFrame(rows, schema={**ACCESS_EVENT_SCHEMA, "time": pl.String}, orient="row")
    return frame.with_columns(pl.col("time").str.to_datetime(time_zone="UTC", time_unit="us")).sort(
        "time", "event_id", maintain_order=True
    )


def signin_messages(signins: pl.DataFrame) -> list[bytes]:
    """One JSON message per sign-in event, as ``SignInFanOut`` publishes them."""
    rows = signins.select(list(SIGNIN_EVENT_SCHEMA))
    return [orjson.dumps(row) for row in rows.iter_rows(named=True)]


def signin_events_from(messages: Sequence[bytes]) -> pl.DataFrame:
    """The sign-in events of a micro-batch (``SignInEvent.to_row`` as JSON), time-ordered;
    a message that is not one is refused."""
    rows = []
    for number, message in enumerate(messages, start=1):
        try:
            row = orjson.loads(message)
            time = datetime.fromisoformat(row["time"].replace("Z", "+00:00"))
        except (orjson.JSONDecodeError, TypeError, KeyError, ValueError, AttributeError):
            raise InputFormatError(
                f"message {number} of the batch is not a sign-in event"
            ) from None
        if not isinstance(row.get("user_id"), str) or not isinstance(row.get("kind"), str):
            raise InputFormatError(f"message {number} of the batch is not a sign-in event")
        row["time"] = time if time.tzinfo else time.replace(tzinfo=UTC)
        rows.append({name: row.get(name) for name in SIGNIN_EVENT_SCHEMA})
    frame = pl.DataFrame(rows, schema=SIGNIN_EVENT_SCHEMA, orient="row")
    return frame.sort("time", "event_id", maintain_order=True)


@dataclass
class StreamResult:
    """What one micro-batch gave."""

    scored: pl.DataFrame
    alerts: int
    seconds: float


@dataclass
class StreamDetector:
    """Scores micro-batches in arrival order and publishes the alerts.

    Parameters
    ----------
    engine: a fitted detection engine.
    threshold: the score that makes an alert.
    alert_subject: where alerts are published.
    clock: tells the processing time; injected so tests replay exactly.
    """

    engine: DetectionEngine
    threshold: float = 60.0
    alert_subject: str = ALERT_SUBJECT
    clock: Clock = field(default_factory=SystemClock)
    state_: EngineState = field(default_factory=EngineState.empty, init=False)

    def score_batch(self, events: pl.DataFrame) -> pl.DataFrame:
        """Score one micro-batch (time-ordered) and remember what it taught."""
        scored, self.state_ = self.engine.score(events, self.state_)
        return scored

    async def run_once(
        self,
        bus: EventBus,
        *,
        subject: str = f"{ACCESS_SUBJECT}.>",
        durable: str = "custodes-detect",
        batch: int = 2_000,
        timeout: float = 0.1,
    ) -> StreamResult:
        """Fetch up to ``batch`` access events, score them, publish their alerts."""
        started: datetime = self.clock.now()
        messages = await bus.fetch(subject, durable, batch, timeout)
        if not messages:
            return StreamResult(pl.DataFrame(), 0, 0.0)
        scored = self.score_batch(access_events_from(messages))
        alerts = scored.filter(pl.col("score") >= self.threshold)
        for alert in alerts.iter_rows(named=True):
            await bus.publish(self.alert_subject, orjson.dumps(alert))
        elapsed = (self.clock.now() - started).total_seconds()
        return StreamResult(scored, alerts.height, elapsed)
