"""What other modules hand the audit log: sign-ins and response runs, as audit entries.

The identity service reports sign-ins through a ``SignInRecorder`` and the response
executor keeps its runs in a ``ResponseRunStore``; the adapters here put each one in the
hash-chained log as well, so `custodes audit verify` covers them. Only ids and short
machine strings are kept: never a session id, a password or a token.
"""

from __future__ import annotations

from custodes.audit.chain import AuditEntry
from custodes.audit.log import AuditLog
from custodes.core.events import Action, Outcome, SignInEvent
from custodes.core.ports import ResponseRunStore
from custodes.core.responses import ResponseRun, RunStatus

#: Run statuses that are failures of the action (the rest are outcomes or decisions).
_FAILED = frozenset({RunStatus.FAILED, RunStatus.UNDO_FAILED})


def signin_entry(event: SignInEvent) -> AuditEntry:
    """A sign-in, sign-out, second factor, lockout or step-up, as an audit entry."""
    detail = {"kind": f"signin.{event.kind}"}
    if event.mfa_method:
        detail["mfa_method"] = event.mfa_method
    return AuditEntry(
        time=event.time,
        actor=event.user_id,
        action=Action.EXECUTE,
        outcome=event.outcome,
        allowed=event.outcome is Outcome.SUCCESS,
        source_ip=event.source_ip,
        detail=detail,
    )


def response_entry(run: ResponseRun) -> AuditEntry:
    """One run of a response action (lock, revoke, notify, ...), as an audit entry."""
    return AuditEntry(
        time=run.at,
        actor=run.actor,
        action=Action.EXECUTE,
        outcome=Outcome.SERIOUS_FAILURE if run.status in _FAILED else Outcome.SUCCESS,
        detail={
            "kind": f"response.{run.action}",
            "case": run.case_id,
            "target": run.target_user,
            "status": str(run.status),
            "attempt": str(run.attempt),
        },
    )


class AuditedSignIns:
    """A ``SignInRecorder`` that appends every sign-in event to the audit log."""

    def __init__(self, log: AuditLog) -> None:
        self.log = log

    def record(self, event: SignInEvent) -> None:
        self.log.record(signin_entry(event))


class AuditedResponseRuns:
    """A ``ResponseRunStore`` that also appends every run to the audit log."""

    def __init__(self, runs: ResponseRunStore, log: AuditLog) -> None:
        self.runs_store = runs
        self.log = log

    def append(self, run: ResponseRun) -> None:
        self.runs_store.append(run)
        self.log.record(response_entry(run))

    def latest(self, step_id: str) -> ResponseRun | None:
        return self.runs_store.latest(step_id)

    def runs(self, case_id: str | None = None) -> list[ResponseRun]:
        return self.runs_store.runs(case_id)

    def latest_of_all(self) -> list[ResponseRun]:
        return self.runs_store.latest_of_all()
