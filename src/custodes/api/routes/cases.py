"""Alerts, cases, verdicts, suppressions, playbooks and approvals over HTTP.

Authorised by role through the access policy (``access.roles.may_work_cases``):
privacy officers and administrators may read and act; every other role gets 403.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field

from custodes.access.roles import may_work_cases
from custodes.api.deps import Caller, CallerDep
from custodes.bootstrap import Custodes
from custodes.core.cases import SuppressionScope, Verdict
from custodes.core.errors import CustodesError
from custodes.correlate.service import CaseBook, CaseNotFoundError
from custodes.respond.playbooks import load_playbooks


class ForbiddenError(CustodesError):
    """The caller's role may not do this."""


def get_officer(caller: CallerDep) -> Caller:
    if not may_work_cases(caller.user.role):
        raise ForbiddenError("only privacy officers and administrators may work cases")
    return caller


def get_custodes(request: Request) -> Custodes:
    return request.app.state.custodes


OfficerDep = Annotated[Caller, Depends(get_officer)]
CustodesDep = Annotated[Custodes, Depends(get_custodes)]

router = APIRouter(prefix="/api", tags=["cases"])


class VerdictIn(BaseModel):
    verdict: Verdict
    note: str | None = Field(default=None, max_length=2000)


class SuppressionIn(BaseModel):
    scope: SuppressionScope
    value: str = Field(min_length=1, max_length=200)
    reason: str = Field(min_length=1, max_length=2000)
    hours: float = Field(default=24, gt=0, le=24 * 365)


def _run(run) -> dict:
    return {
        "step_id": run.step_id, "case_id": run.case_id, "playbook": run.playbook,
        "action": run.action, "status": str(run.status), "attempt": run.attempt,
        "at": run.at.isoformat(), "detail": run.detail, "actor": run.actor,
        "undo_at": run.undo_at.isoformat() if run.undo_at else None,
    }


@router.get("/cases", summary="The case queue, most severe first")
def list_cases(
    officer: OfficerDep, app: CustodesDep,
    include_closed: bool = False, limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    order: Annotated[Literal["severity", "uncertain"], Query(
        description="severity: most severe first; uncertain: least sure first")] = "severity",
) -> dict:
    cases = app.case_book().queue(include_closed=include_closed, limit=limit, order=order)
    return {"cases": [CaseBook.describe(c) for c in cases]}


@router.get("/cases/{case_id}", summary="A case with its alerts and response runs")
def show_case(case_id: str, officer: OfficerDep, app: CustodesDep) -> dict:
    case, alerts = app.case_book().show(case_id)
    runs = app.responder().runs.runs(case_id)
    return {
        "case": CaseBook.describe(case),
        "alerts": [
            {"alert_id": a.alert_id, "event_id": a.event_id, "time": a.time.isoformat(),
             "patient_id": a.patient_id, "action": a.action, "score": round(a.score, 2),
             "reasons": a.reasons, "status": str(a.status)}
            for a in alerts
        ],
        "responses": [_run(r) for r in runs],
    }


@router.post("/cases/{case_id}/acknowledge", summary="Take a case")
def acknowledge(case_id: str, officer: OfficerDep, app: CustodesDep) -> dict:
    return {"case": CaseBook.describe(app.case_book().acknowledge(case_id, officer.user.name))}


@router.post("/cases/{case_id}/verdict", summary="Close a case with a verdict")
def close(case_id: str, body: VerdictIn, officer: OfficerDep, app: CustodesDep) -> dict:
    case = app.case_book().close(case_id, body.verdict, officer.user.name, note=body.note)
    return {"case": CaseBook.describe(case)}


@router.get("/suppressions", summary="Suppressions, active and past")
def list_suppressions(officer: OfficerDep, app: CustodesDep) -> dict:
    now = app.clock.now()
    return {
        "suppressions": [
            {"suppression_id": s.suppression_id, "scope": str(s.scope), "value": s.value,
             "reason": s.reason, "created_by": s.created_by,
             "created_at": s.created_at.isoformat(), "expires_at": s.expires_at.isoformat(),
             "active": s.active(now)}
            for s in app.case_book().store.suppressions()
        ]
    }


@router.post("/suppressions", status_code=201, summary="Silence alerts in one scope")
def add_suppression(body: SuppressionIn, officer: OfficerDep, app: CustodesDep) -> dict:
    made = app.case_book().suppress(
        body.scope, body.value, body.reason, officer.user.name, timedelta(hours=body.hours)
    )
    return {"suppression_id": made.suppression_id, "expires_at": made.expires_at.isoformat()}


@router.get("/playbooks", summary="The response playbooks in force")
def playbooks(officer: OfficerDep, app: CustodesDep) -> dict:
    return {
        "playbooks": [
            {"name": b.name,
             "when": {"kinds": list(b.trigger.kinds), "min_severity": str(b.trigger.min_severity),
                      "tactics": list(b.trigger.tactics)},
             "actions": [{"type": a.type, "mode": a.mode,
                          "undo_after_seconds": a.undo_after.total_seconds()
                          if a.undo_after else None} for a in b.actions]}
            for b in load_playbooks(app.settings.playbooks)
        ]
    }


@router.get("/approvals", summary="Response steps waiting for approval")
def approvals(officer: OfficerDep, app: CustodesDep) -> dict:
    return {"approvals": [_run(r) for r in app.responder().pending()]}


def _case_of(app: Custodes, step_id: str):
    latest = app.responder().runs.latest(step_id)
    case = app.case_book().store.case(latest.case_id) if latest else None
    if case is None:
        raise CaseNotFoundError(f"no response step {step_id!r}")
    return case


@router.post("/approvals/{step_id}/approve", summary="Approve a waiting step and run it")
def approve(step_id: str, officer: OfficerDep, app: CustodesDep) -> dict:
    runs = app.responder().approve(step_id, officer.user.name, _case_of(app, step_id))
    return {"runs": [_run(r) for r in runs]}


@router.post("/approvals/{step_id}/reject", summary="Reject a waiting step")
def reject(step_id: str, officer: OfficerDep, app: CustodesDep) -> dict:
    return {"run": _run(app.responder().reject(step_id, officer.user.name))}


@router.post("/responses/{step_id}/undo", summary="Undo a step that succeeded")
def undo(step_id: str, officer: OfficerDep, app: CustodesDep) -> dict:
    run = app.responder().undo(step_id, officer.user.name, _case_of(app, step_id))
    return {"run": _run(run)}
