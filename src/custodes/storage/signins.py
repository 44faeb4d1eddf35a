"""Where the identity service's sign-in events go: the event stores and the bus.

Each event is written to every configured event sink (the same places ingested sign-ins
go, so the detectors read both alike) and published, as JSON, on the sign-in subject of
the bus, partitioned by user like the access events.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Sequence

import orjson
import polars as pl

from custodes.core.events import SIGNIN_EVENT_SCHEMA, SignInEvent
from custodes.core.ports import EventBus, EventSink
from custodes.storage.bus import subject_for_user

SIGNIN_SUBJECT = "custodes.events.signin"

log = logging.getLogger(__name__)


class SignInFanOut:
    """A ``SignInRecorder`` that writes to sinks and publishes to a bus, in order.

    Safe to call from many threads (the API's worker threads): one lock serialises the
    writes. A bus that fails is logged and does not fail the sign-in; the stores are
    the record.
    """

    def __init__(
        self, sinks: Sequence[EventSink], bus: EventBus | None = None, partitions: int = 16
    ) -> None:
        self.sinks = list(sinks)
        self.bus = bus
        self.partitions = partitions
        self._lock = threading.Lock()

    def record(self, event: SignInEvent) -> None:
        row = pl.DataFrame([event.to_row()], schema=SIGNIN_EVENT_SCHEMA)
        with self._lock:
            for sink in self.sinks:
                sink.write_signin_events(row)
                sink.flush()
            if self.bus is not None:
                payload = orjson.dumps(event.to_row())
                subject = subject_for_user(SIGNIN_SUBJECT, event.user_id, self.partitions)
                try:
                    asyncio.run(self.bus.publish(subject, payload))
                except Exception as err:  # the stores hold the event; say the bus missed it
                    log.warning("sign-in event not published on the bus: %s", err)
