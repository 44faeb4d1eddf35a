"""The streaming pipeline: what ``custodes detect`` does for a log, done continuously.

Composition-level, like ``bootstrap.py``: it joins ``detect`` (scores), ``correlate``
(alerts and cases) and ``respond`` (playbooks) and owns no rule of its own. Each
micro-batch from the bus is scored; the accesses and sign-ins at or above their
thresholds become alerts; the case book stores them and builds or grows their cases
(a user's case keeps growing as the alerts of its window arrive); the playbooks answer
every case the batch touched, automatic actions at once, the others waiting for an
officer.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

import polars as pl

from custodes.core.clock import Clock, SystemClock
from custodes.core.ports import EventBus
from custodes.core.responses import ResponseRun
from custodes.correlate.alerts import alerts_from_scores
from custodes.correlate.cases import ALERT_SCHEMA
from custodes.correlate.service import CaseBook, RecordReport
from custodes.detect.signins import UnusualSignIns
from custodes.detect.stream import StreamDetector, access_events_from, signin_events_from
from custodes.respond.executor import ResponseExecutor
from custodes.respond.plan import plan_response
from custodes.respond.playbooks import Playbook


@dataclass(frozen=True)
class Subjects:
    """The bus subjects under one prefix (``custodes`` by default; tests use their own).

    >>> Subjects("custodes").access, Subjects("t1").signin
    ('custodes.access', 't1.events.signin')
    """

    prefix: str = "custodes"

    @property
    def access(self) -> str:
        return f"{self.prefix}.access"

    @property
    def signin(self) -> str:
        return f"{self.prefix}.events.signin"


#: A sign-in scored at or above this is an alert: a new device and a new network (75),
#: or a new device after four failures (77); a new device alone (45) is not.
SIGNIN_THRESHOLD = 70.0


class CaseResponder:
    """Records alerts in the case book and answers every case they touched."""

    def __init__(
        self, book: CaseBook, executor: ResponseExecutor, playbooks: Sequence[Playbook]
    ) -> None:
        self.book = book
        self.executor = executor
        self.playbooks = tuple(playbooks)

    def respond(self, case_ids: Sequence[str]) -> list[ResponseRun]:
        """Plan and perform the playbooks' response to these cases."""
        runs: list[ResponseRun] = []
        for case_id in case_ids:
            case = self.book.store.case(case_id)
            if case is not None:
                runs.extend(self.executor.execute(plan_response(case, self.playbooks), case))
        return runs

    def record(self, alerts: pl.DataFrame) -> tuple[RecordReport, list[ResponseRun]]:
        report = self.book.record(alerts)
        return report, self.respond(report.case_ids)


@dataclass
class StreamStep:
    """What one micro-batch did."""

    accesses: int = 0
    signins: int = 0
    alerts: int = 0
    cases: tuple[str, ...] = ()
    runs: list[ResponseRun] = field(default_factory=list)


@dataclass
class StreamTotals:
    """What a run of the pipeline did, summed over its micro-batches."""

    batches: int = 0
    accesses: int = 0
    signins: int = 0
    alerts: int = 0
    cases: set[str] = field(default_factory=set)
    actions: int = 0

    def add(self, step: StreamStep) -> None:
        self.batches += 1
        self.accesses += step.accesses
        self.signins += step.signins
        self.alerts += step.alerts
        self.cases.update(step.cases)
        self.actions += len(step.runs)

    def as_json(self) -> dict:
        return {**self.__dict__, "cases": sorted(self.cases)}


def signin_alert_events(signins: pl.DataFrame) -> pl.DataFrame:
    """Sign-ins in the shape ``alerts_from_scores`` joins on: no patient, the kind as
    the action."""
    return signins.select(
        "event_id",
        "time",
        "user_id",
        patient_id=pl.lit(None, pl.String),
        action=pl.col("kind"),
    )


@dataclass
class StreamPipeline:
    """Micro-batches from the bus to alerts, cases and responses.

    Parameters
    ----------
    detector: scores access events, keeping the engine's state between batches.
    signins: scores sign-ins, keeping each user's devices and networks.
    threshold: the access score that makes an alert (from the alert budget).
    responder: stores the alerts, builds the cases, runs the playbooks.
    departments: ``user_id, department``, for department-scoped suppressions.
    signin_threshold: the sign-in score that makes an alert.
    """

    detector: StreamDetector
    signins: UnusualSignIns
    threshold: float
    responder: CaseResponder
    departments: pl.DataFrame | None = None
    signin_threshold: float = SIGNIN_THRESHOLD
    access_subject: str = f"{Subjects().access}.>"
    signin_subject: str = f"{Subjects().signin}.>"
    durable: str = "custodes-watch"

    def alerts_of(self, accesses: pl.DataFrame, signins: pl.DataFrame) -> pl.DataFrame:
        """Score a micro-batch and keep what reaches the thresholds, as alerts."""
        parts = []
        if not signins.is_empty():
            scored = self.signins.score(signins)
            parts.append(
                alerts_from_scores(
                    scored, signin_alert_events(signins), self.signin_threshold, source="signin"
                )
            )
        if not accesses.is_empty():
            scored = self.detector.score_batch(accesses)
            parts.append(
                alerts_from_scores(scored, accesses, self.threshold, departments=self.departments)
            )
        return pl.concat(parts) if parts else pl.DataFrame(schema=ALERT_SCHEMA)

    def process(self, accesses: pl.DataFrame, signins: pl.DataFrame) -> StreamStep:
        """One micro-batch, already read: score, record, respond."""
        step = StreamStep(accesses.height, signins.height)
        alerts = self.alerts_of(accesses, signins)
        if alerts.is_empty():
            return step
        report, runs = self.responder.record(alerts)
        step.alerts, step.cases, step.runs = report.new_alerts, report.case_ids, runs
        return step

    async def run_once(
        self, bus: EventBus, *, batch: int = 2_000, timeout: float = 0.1
    ) -> StreamStep:
        """Fetch up to ``batch`` events that have arrived (sign-ins first: they open the
        stories), then process them."""
        signin_messages = await bus.fetch(
            self.signin_subject, f"{self.durable}-signins", batch, min(timeout, 0.01)
        )
        room = batch - len(signin_messages)
        access_messages = (
            await bus.fetch(self.access_subject, f"{self.durable}-access", room, timeout)
            if room
            else []
        )
        return self.process(
            access_events_from(access_messages) if access_messages else pl.DataFrame(),
            signin_events_from(signin_messages) if signin_messages else pl.DataFrame(),
        )

    async def run(
        self,
        bus: EventBus,
        *,
        max_events: int | None = None,
        max_seconds: float | None = None,
        batch: int = 2_000,
        timeout: float = 0.1,
        clock: Clock | None = None,
    ) -> StreamTotals:
        """Process micro-batches until ``max_events`` events were read or ``max_seconds``
        passed (by ``clock``); with neither, until cancelled."""
        clock = clock or SystemClock()
        started: datetime = clock.now()
        totals = StreamTotals()
        while True:
            if max_events is not None and totals.accesses + totals.signins >= max_events:
                return totals
            if max_seconds is not None and (clock.now() - started).total_seconds() >= max_seconds:
                return totals
            size = batch
            if max_events is not None:
                size = max(1, min(batch, max_events - totals.accesses - totals.signins))
            step = await self.run_once(bus, batch=size, timeout=timeout)
            if step.accesses or step.signins:
                totals.add(step)
