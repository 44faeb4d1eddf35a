"""What other modules hand the audit log: sign-ins, response runs and the privacy
officers' decisions on cases, as audit entries.

The identity service reports sign-ins through a ``SignInRecorder``, the response
executor keeps its runs in a ``ResponseRunStore`` and the case book its cases and
suppressions in a ``CaseStore``; the adapters here put each act in the hash-chained log
as well, so `custodes audit verify` covers them. Only ids and short machine strings
are kept: never a session id, a password, a token, nor the free text of a verdict's
note or a suppression's reason (the case store keeps those).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from custodes.audit.chain import AuditEntry
from custodes.audit.log import AuditLog
from custodes.core.cases import Case, CaseStatus, Suppression, Verdict
from custodes.core.events import Action, Outcome, SignInEvent
from custodes.core.ports import CaseStore, ResponseRunStore
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


def case_status_entry(case: Case, status: CaseStatus, at: datetime, by: str | None) -> AuditEntry:
    """A case acknowledged or closed with a verdict, as an audit entry."""
    detail = {"kind": f"case.{status}", "case": case.case_id, "case_kind": case.kind}
    if case.verdict is not None and status is CaseStatus.CLOSED:
        detail["verdict"] = str(case.verdict)
    return AuditEntry(
        time=at,
        actor=by or "unknown",
        action=Action.UPDATE,
        patient_id=case.patient_id,
        detail=detail,
    )


def suppression_entry(suppression: Suppression, kind: str, at: datetime) -> AuditEntry:
    """A suppression made or revoked, as an audit entry: its scope, value and expiry."""
    return AuditEntry(
        time=at,
        actor=suppression.created_by,
        action=Action.CREATE if kind == "created" else Action.DELETE,
        detail={
            "kind": f"suppression.{kind}",
            "suppression": suppression.suppression_id,
            "scope": str(suppression.scope),
            "value": suppression.value,
            "expires_at": suppression.expires_at.isoformat(),
        },
    )


class AuditedCaseStore:
    """A ``CaseStore`` that also appends every privacy officer's decision to the audit
    log: acknowledging a case, closing it with a verdict, making or revoking a
    suppression. Everything else passes straight through to the wrapped store."""

    def __init__(self, store: CaseStore, log: AuditLog) -> None:
        self.store = store
        self.log = log

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)

    def set_case_status(
        self,
        case_id: str,
        status: CaseStatus,
        at: datetime,
        *,
        verdict: Verdict | None = None,
        note: str | None = None,
        by: str | None = None,
    ) -> Case | None:
        case = self.store.set_case_status(
            case_id, status, at, verdict=verdict, note=note, by=by
        )
        if case is not None:
            self.log.record(case_status_entry(case, status, at, by))
        return case

    def add_suppression(self, suppression: Suppression) -> None:
        self.store.add_suppression(suppression)
        self.log.record(suppression_entry(suppression, "created", suppression.created_at))

    def revoke_suppression(self, suppression_id: str, at: datetime) -> bool:
        revoked = self.store.revoke_suppression(suppression_id, at)
        if revoked:
            known = next(
                (s for s in self.store.suppressions() if s.suppression_id == suppression_id),
                None,
            )
            if known is not None:
                self.log.record(suppression_entry(known, "revoked", at))
        return revoked
