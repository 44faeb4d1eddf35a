"""Runs of response actions: what was done about a case, when, by whom, and how it went."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any


class RunStatus(StrEnum):
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    AWAITING_APPROVAL = "awaiting_approval"
    REJECTED = "rejected"
    UNDONE = "undone"
    UNDO_FAILED = "undo_failed"
    SKIPPED = "skipped"  # the channel is not configured


#: After these, planning the same step again does nothing (idempotence).
SETTLED = frozenset(
    {
        RunStatus.SUCCEEDED,
        RunStatus.AWAITING_APPROVAL,
        RunStatus.REJECTED,
        RunStatus.UNDONE,
        RunStatus.SKIPPED,
    }
)


@dataclass(frozen=True)
class ResponseRun:
    """One attempt (or decision) about one planned step."""

    run_id: str
    step_id: str
    case_id: str
    playbook: str
    action: str
    target_user: str
    mode: str
    status: RunStatus
    attempt: int
    at: datetime
    detail: str = ""
    actor: str = "custodes"
    undo_at: datetime | None = None
    params: dict[str, Any] = field(default_factory=dict)
    undo_after_seconds: float | None = None
