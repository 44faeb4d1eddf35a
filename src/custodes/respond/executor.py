"""The executor: performs a plan's steps, records every run, waits for approvals, undoes.

Steps are idempotent: a step already done (or waiting, rejected or undone) is not done
again when the same case is planned twice, with one exception: a case that grows (the
stream adds its alerts as they come) may be planned again under a playbook that makes a
waiting step automatic, and then the step is performed at once. Failures are retried up to ``attempts``
times, each attempt recorded; ``pause`` waits between attempts (a no-op in tests).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import timedelta

from custodes.core.cases import Case
from custodes.core.clock import Clock
from custodes.core.errors import CustodesError
from custodes.core.ports import ResponseRunStore
from custodes.core.responses import SETTLED, ResponseRun, RunStatus
from custodes.respond.actions import ActionFailedError, ActionRegistry
from custodes.respond.plan import PlannedAction, ResponsePlan

CaseLookup = Callable[[str], Case | None]


class StepNotFoundError(CustodesError):
    """No response step has that id, or it is not in the state the request needs."""


class ResponseExecutor:
    def __init__(
        self,
        actions: ActionRegistry,
        runs: ResponseRunStore,
        clock: Clock,
        *,
        attempts: int = 3,
        pause: Callable[[float], None] = lambda seconds: None,
    ) -> None:
        self.actions = actions
        self.runs = runs
        self.clock = clock
        self.attempts = attempts
        self.pause = pause

    def execute(self, plan: ResponsePlan, case: Case) -> list[ResponseRun]:
        """Perform the automatic steps; park the others for approval. Returns new runs."""
        done = []
        for step in plan.steps:
            latest = self.runs.latest(step.step_id)
            escalated = (
                latest is not None
                and latest.status is RunStatus.AWAITING_APPROVAL
                and step.mode == "auto"
            )
            if latest is not None and latest.status in SETTLED and not escalated:
                continue
            if step.mode == "approval":
                done.append(
                    self._record(step, RunStatus.AWAITING_APPROVAL, 0, "waits for approval")
                )
            else:
                done.extend(self._perform(step, case))
        return done

    def pending(self) -> list[ResponseRun]:
        return [r for r in self.runs.latest_of_all() if r.status is RunStatus.AWAITING_APPROVAL]

    def approve(self, step_id: str, by: str, case: Case) -> list[ResponseRun]:
        latest = self._awaiting(step_id)
        step = _step_of(latest)
        self._record(step, RunStatus.AWAITING_APPROVAL, 0, "approved", actor=by)
        return self._perform(step, case, actor=by)

    def reject(self, step_id: str, by: str) -> ResponseRun:
        latest = self._awaiting(step_id)
        return self._record(_step_of(latest), RunStatus.REJECTED, 0, "rejected", actor=by)

    def undo(self, step_id: str, by: str, case: Case) -> ResponseRun:
        latest = self.runs.latest(step_id)
        if latest is None or latest.status is not RunStatus.SUCCEEDED:
            raise StepNotFoundError(f"step {step_id} has not succeeded; nothing to undo")
        step = _step_of(latest)
        action = self.actions.get(step.type)
        if action is None or not action.undoable:
            raise StepNotFoundError(f"step {step_id} ({step.type}) cannot be undone")
        try:
            detail = action.undo(step, case, self.clock.now())
        except ActionFailedError as err:
            return self._record(step, RunStatus.UNDO_FAILED, latest.attempt, str(err), actor=by)
        return self._record(step, RunStatus.UNDONE, latest.attempt, detail, actor=by)

    def undo_due(self, cases: CaseLookup) -> list[ResponseRun]:
        """Undo every succeeded step whose automatic undo time has come."""
        now = self.clock.now()
        undone = []
        for run in self.runs.latest_of_all():
            if run.status is RunStatus.SUCCEEDED and run.undo_at is not None and run.undo_at <= now:
                case = cases(run.case_id)
                if case is not None:
                    undone.append(self.undo(run.step_id, "custodes (timeout)", case))
        return undone

    def _awaiting(self, step_id: str) -> ResponseRun:
        latest = self.runs.latest(step_id)
        if latest is None or latest.status is not RunStatus.AWAITING_APPROVAL:
            raise StepNotFoundError(f"step {step_id} is not waiting for approval")
        return latest

    def _perform(
        self, step: PlannedAction, case: Case, actor: str = "custodes"
    ) -> list[ResponseRun]:
        action = self.actions.get(step.type)
        if action is None:  # recorded once: planning the case again will not retry it
            return [self._record(step, RunStatus.SKIPPED, 0, f"{step.type}: not configured")]
        runs = []
        for attempt in range(1, self.attempts + 1):
            now = self.clock.now()
            try:
                detail = action.perform(step, case, now)
            except ActionFailedError as err:
                runs.append(self._record(step, RunStatus.FAILED, attempt, str(err), actor=actor))
                if not err.retryable:
                    break
                if attempt < self.attempts:
                    self.pause(0.2 * 4 ** (attempt - 1))
                continue
            undo_at = now + step.undo_after if step.undo_after and action.undoable else None
            runs.append(
                self._record(
                    step, RunStatus.SUCCEEDED, attempt, detail, actor=actor, undo_at=undo_at
                )
            )
            break
        return runs

    def _record(
        self,
        step: PlannedAction,
        status: RunStatus,
        attempt: int,
        detail: str,
        *,
        actor: str = "custodes",
        undo_at=None,
    ) -> ResponseRun:
        run = ResponseRun(
            run_id=uuid.uuid4().hex,
            step_id=step.step_id,
            case_id=step.case_id,
            playbook=step.playbook,
            action=step.type,
            target_user=step.target_user,
            mode=step.mode,
            status=status,
            attempt=attempt,
            at=self.clock.now(),
            detail=detail,
            actor=actor,
            undo_at=undo_at,
            params=dict(step.params),
            undo_after_seconds=step.undo_after.total_seconds() if step.undo_after else None,
        )
        self.runs.append(run)
        return run


def _step_of(run: ResponseRun) -> PlannedAction:
    return PlannedAction(
        step_id=run.step_id,
        case_id=run.case_id,
        playbook=run.playbook,
        type=run.action,
        target_user=run.target_user,
        mode=run.mode,
        params=dict(run.params),
        undo_after=timedelta(seconds=run.undo_after_seconds) if run.undo_after_seconds else None,
    )
