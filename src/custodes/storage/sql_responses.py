"""Response runs in the relational store: appended in order, never updated."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from custodes.core.responses import ResponseRun, RunStatus
from custodes.storage.schema import response_runs


def _utc(value: datetime | None) -> datetime | None:
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)


def _run(row) -> ResponseRun:
    return ResponseRun(
        run_id=row.run_id,
        step_id=row.step_id,
        case_id=row.case_id,
        playbook=row.playbook,
        action=row.action,
        target_user=row.target_user,
        mode=row.mode,
        status=RunStatus(row.status),
        attempt=row.attempt,
        at=_utc(row.at),
        detail=row.detail,
        actor=row.actor,
        undo_at=_utc(row.undo_at),
        params=dict(row.params or {}),
        undo_after_seconds=row.undo_after_seconds,
    )


class SqlResponseRuns:
    """``ResponseRunStore`` over SQLAlchemy Core; ``seq`` keeps the order of appends."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def append(self, run: ResponseRun) -> None:
        with self.engine.begin() as conn:
            seq = conn.execute(sa.select(sa.func.coalesce(sa.func.max(response_runs.c.seq), 0)))
            conn.execute(
                response_runs.insert().values(
                    seq=int(seq.scalar_one()) + 1,
                    **{
                        k: getattr(run, k)
                        for k in (
                            "run_id",
                            "step_id",
                            "case_id",
                            "playbook",
                            "action",
                            "target_user",
                            "mode",
                            "attempt",
                            "at",
                            "detail",
                            "actor",
                            "undo_at",
                            "params",
                            "undo_after_seconds",
                        )
                    },
                    status=run.status.value,
                )
            )

    def latest(self, step_id: str) -> ResponseRun | None:
        query = (
            sa.select(response_runs)
            .where(response_runs.c.step_id == step_id)
            .order_by(response_runs.c.seq.desc())
            .limit(1)
        )
        with self.engine.connect() as conn:
            row = conn.execute(query).first()
        return _run(row) if row else None

    def runs(self, case_id: str | None = None) -> list[ResponseRun]:
        query = sa.select(response_runs).order_by(response_runs.c.seq)
        if case_id is not None:
            query = query.where(response_runs.c.case_id == case_id)
        with self.engine.connect() as conn:
            return [_run(r) for r in conn.execute(query)]

    def latest_of_all(self) -> list[ResponseRun]:
        last = (
            sa.select(sa.func.max(response_runs.c.seq))
            .group_by(response_runs.c.step_id)
            .scalar_subquery()
        )
        query = (
            sa.select(response_runs)
            .where(response_runs.c.seq.in_(last))
            .order_by(response_runs.c.seq)
        )
        with self.engine.connect() as conn:
            return [_run(r) for r in conn.execute(query)]


class MemoryResponseRuns:
    """``ResponseRunStore`` in memory, for unit tests."""

    def __init__(self) -> None:
        self._runs: list[ResponseRun] = []
        self._lock = threading.Lock()

    def append(self, run: ResponseRun) -> None:
        with self._lock:
            self._runs.append(run)

    def latest(self, step_id: str) -> ResponseRun | None:
        return next((r for r in reversed(self._runs) if r.step_id == step_id), None)

    def runs(self, case_id: str | None = None) -> list[ResponseRun]:
        return [r for r in self._runs if case_id is None or r.case_id == case_id]

    def latest_of_all(self) -> list[ResponseRun]:
        last: dict[str, ResponseRun] = {}
        for run in self._runs:
            last[run.step_id] = run
        return sorted(last.values(), key=self._runs.index)
