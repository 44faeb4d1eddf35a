"""Where the identity service's sign-in events go: the event stores and the bus.

Each event is written to every configured event sink (the same places ingested sign-ins
go, so the detectors read both alike) and published, as JSON, on the sign-in subject of
the bus, partitioned by user like the access events.

The identity service is synchronous (the API runs it in worker threads) and the buses
are asynchronous, so ``BackgroundBus`` gives a bus its own event loop in a daemon
thread; every bus operation runs there, which also keeps the in-process bus on the one
thread it asks for.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from typing import Any

import orjson
import polars as pl

from custodes.core.events import SIGNIN_EVENT_SCHEMA, SignInEvent
from custodes.core.ports import EventBus, EventSink
from custodes.storage.bus import subject_for_user

SIGNIN_SUBJECT = "custodes.events.signin"

log = logging.getLogger(__name__)


class BackgroundBus:
    """An asynchronous bus used from synchronous code, on its own event loop thread."""

    def __init__(self, open_bus: Callable[[], Awaitable[EventBus]], timeout: float = 10.0) -> None:
        self.timeout = timeout
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="custodes-bus", daemon=True
        )
        self._thread.start()
        try:
            self.bus: EventBus = self._run(open_bus())
        except BaseException:
            self._stop()
            raise

    def _run(self, coroutine: Coroutine[Any, Any, Any] | Awaitable[Any]) -> Any:
        async def wrapped():
            return await coroutine

        return asyncio.run_coroutine_threadsafe(wrapped(), self._loop).result(self.timeout)

    def publish(self, subject: str, payload: bytes) -> None:
        self._run(self.bus.publish(subject, payload))

    def fetch(self, subject: str, durable: str, batch: int, timeout: float) -> list[bytes]:
        return self._run(self.bus.fetch(subject, durable, batch, timeout))

    def close(self) -> None:
        close = getattr(self.bus, "close", None)
        if close is not None:
            self._run(close())
        self._stop()

    def _stop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=self.timeout)


class SignInFanOut:
    """A ``SignInRecorder`` that writes to sinks and publishes to a bus, in order.

    Safe to call from many threads (the API's worker threads): one lock serialises the
    writes. A bus that fails is logged and does not fail the sign-in; the stores are
    the record.
    """

    def __init__(
        self,
        sinks: Sequence[EventSink],
        bus: BackgroundBus | None = None,
        partitions: int = 16,
        subject: str = SIGNIN_SUBJECT,
    ) -> None:
        self.sinks = list(sinks)
        self.bus = bus
        self.partitions = partitions
        self.subject = subject
        self._lock = threading.Lock()

    def record(self, event: SignInEvent) -> None:
        row = pl.DataFrame([event.to_row()], schema=SIGNIN_EVENT_SCHEMA)
        with self._lock:
            for sink in self.sinks:
                sink.write_signin_events(row)
                sink.flush()
            if self.bus is not None:
                subject = subject_for_user(self.subject, event.user_id, self.partitions)
                try:
                    self.bus.publish(subject, orjson.dumps(event.to_row()))
                except Exception as err:  # the stores hold the event; say the bus missed it
                    log.warning("sign-in event not published on the bus: %s", type(err).__name__)
