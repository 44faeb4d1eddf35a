"""Sign-ins and response runs reach the hash-chained audit log, and the log verifies."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from custodes.audit import AuditLog, MemoryAuditStore
from custodes.audit.recorders import AuditedCaseStore, AuditedResponseRuns, AuditedSignIns
from custodes.core.clock import FixedClock
from custodes.core.events import Outcome, SignInEvent, SignInKind
from custodes.core.responses import ResponseRun, RunStatus
from custodes.storage.sql_responses import MemoryResponseRuns

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))


def _log() -> tuple[MemoryAuditStore, AuditLog]:
    store = MemoryAuditStore()
    return store, AuditLog(store, FixedClock(T0), KEY, checkpoint_every=0)


def _bodies(store: MemoryAuditStore) -> list[dict]:
    return [orjson.loads(row.body) for row in store.read()]


def test_every_signin_is_an_audit_entry_without_the_session_id():
    store, log = _log()
    recorder = AuditedSignIns(log)
    for kind, outcome in [
        (SignInKind.LOGIN, Outcome.MINOR_FAILURE),
        (SignInKind.LOCKOUT, Outcome.SUCCESS),
        (SignInKind.LOGIN, Outcome.SUCCESS),
    ]:
        recorder.record(
            SignInEvent(
                event_id=f"e-{kind}-{outcome}",
                time=T0,
                user_id="priya",
                kind=kind,
                outcome=outcome,
                source_ip="127.0.0.1",
                session_id="secret-session-id",
                mfa_method="totp",
            )
        )
    bodies = _bodies(store)
    assert [b["detail"]["kind"] for b in bodies] == [
        "signin.login",
        "signin.lockout",
        "signin.login",
    ]
    assert [b["allowed"] for b in bodies] == [False, True, True]
    assert all(b["actor"] == "priya" for b in bodies)
    assert b"secret-session-id" not in b"".join(row.body for row in store.read())
    assert log.verify(KEY.public_key()).ok


@pytest.mark.parametrize(
    ("status", "outcome"),
    [
        (RunStatus.SUCCEEDED, "success"),
        (RunStatus.FAILED, "serious_failure"),
        (RunStatus.AWAITING_APPROVAL, "success"),
        (RunStatus.UNDO_FAILED, "serious_failure"),
    ],
)
def test_every_response_run_is_kept_and_audited(status, outcome):
    store, log = _log()
    runs = AuditedResponseRuns(MemoryResponseRuns(), log)
    run = ResponseRun(
        run_id="r1",
        step_id="s1",
        case_id="c-1",
        playbook="default",
        action="lock_account",
        target_user="s00027",
        mode="auto",
        status=status,
        attempt=1,
        at=T0,
    )
    runs.append(run)
    assert runs.latest("s1") == run
    assert runs.runs("c-1") == [run]
    (body,) = _bodies(store)
    assert body["detail"] == {
        "kind": "response.lock_account",
        "case": "c-1",
        "target": "s00027",
        "status": str(status),
        "attempt": "1",
    }
    assert body["outcome"] == outcome
    assert log.verify(KEY.public_key()).ok


def test_verdicts_and_suppressions_are_audited_without_their_free_text():
    from datetime import timedelta

    from tests.unit.cases.alerts_table import alert, frame

    from custodes.core.cases import SuppressionScope, Verdict
    from custodes.correlate.service import CaseBook
    from custodes.storage.memory_cases import MemoryCaseStore

    store, log = _log()
    book = CaseBook(AuditedCaseStore(MemoryCaseStore(), log), FixedClock(T0))
    book.record(frame([alert("e1", 0)]))
    assert _bodies(store) == []  # recording alerts is the machine's, not a decision
    (case,) = book.queue()
    book.acknowledge(case.case_id, "priya")
    book.close(case.case_id, Verdict.CONFIRMED_MISUSE, "priya", note="mother's chart")
    made = book.suppress(SuppressionScope.USER, "u7", "covering ward 3", "sam",
                         timedelta(hours=2))
    assert book.store.revoke_suppression(made.suppression_id, T0)
    assert not book.store.revoke_suppression(made.suppression_id, T0)  # once
    bodies = _bodies(store)
    assert [b["detail"]["kind"] for b in bodies] == [
        "case.acknowledged", "case.closed", "suppression.created", "suppression.revoked"
    ]
    assert bodies[1]["detail"]["verdict"] == "confirmed_misuse" and bodies[1]["actor"] == "priya"
    assert bodies[2]["detail"]["scope"] == "user" and bodies[2]["actor"] == "sam"
    raw = b"".join(row.body for row in store.read())
    assert b"mother" not in raw and b"covering" not in raw
    assert log.verify(KEY.public_key()).ok
