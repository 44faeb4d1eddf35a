"""The planner: a case and the playbooks in, a response plan (pure data) out."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from custodes.core.cases import Case
from custodes.respond.playbooks import Playbook

#: Every account action, in the order a playbook usually lists them. A patient case
#: (one record, many users) has no one account to act on, so it plans none of them.
ACCOUNT_ACTIONS = (
    "lock_account",
    "revoke_sessions",
    "revoke_tokens",
    "require_step_up",
    "require_mfa_reenrolment",
)


@dataclass(frozen=True)
class PlannedAction:
    """One step: what to do, to whom, whether it waits for approval, when to undo it.

    ``step_id`` is derived from the case, the playbook and the action, so planning the
    same case twice gives the same steps and the executor performs each once.
    """

    step_id: str
    case_id: str
    playbook: str
    type: str
    target_user: str
    mode: str
    params: dict[str, Any] = field(default_factory=dict)
    undo_after: timedelta | None = None


@dataclass(frozen=True)
class ResponsePlan:
    case_id: str
    steps: tuple[PlannedAction, ...]


def plan_response(case: Case, playbooks: Sequence[Playbook]) -> ResponsePlan:
    """The steps every matching playbook asks for; an action named twice runs once.

    >>> from datetime import UTC, datetime
    >>> from custodes.core.cases import Severity
    >>> from custodes.respond.playbooks import load_playbooks
    >>> t = datetime(2026, 1, 1, tzinfo=UTC)
    >>> case = Case("c1", "compromised_credentials_chain", "u1", Severity.CRITICAL, 99, t, t,
    ...             ("a1",), 1)
    >>> [s.type for s in plan_response(case, load_playbooks()).steps][:3]
    ['lock_account', 'revoke_sessions', 'revoke_tokens']
    """
    steps: list[PlannedAction] = []
    seen: set[str] = set()
    for book in playbooks:
        if not book.trigger.matches(case):
            continue
        for spec in book.actions:
            if spec.type in seen:  # the first playbook that asks for an action decides it
                continue
            if spec.type in ACCOUNT_ACTIONS and case.subject != "user":
                continue
            seen.add(spec.type)
            digest = hashlib.blake2b(
                f"{case.case_id}\x1f{spec.type}".encode(), digest_size=8
            ).hexdigest()
            steps.append(
                PlannedAction(
                    step_id=f"r-{digest}",
                    case_id=case.case_id,
                    playbook=book.name,
                    type=spec.type,
                    target_user=case.user_id,
                    mode=spec.mode,
                    params=dict(spec.params),
                    undo_after=spec.undo_after,
                )
            )
    return ResponsePlan(case.case_id, tuple(steps))
