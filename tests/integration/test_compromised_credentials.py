"""The issue's end-to-end story, through the wired application: a compromised account's
unusual sign-in, mass access and export end with one case that tells it all, the
account locked, its sessions and tokens revoked and a signed webhook received."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import orjson
import pytest
from tests.integration.receivers import signed_webhook_receiver
from tests.unit.cases.alerts_table import T0, compromised_credentials

from custodes.bootstrap import Custodes, Settings
from custodes.core.clock import FixedClock
from custodes.core.responses import RunStatus
from custodes.identity.errors import NotAuthenticated

KEY = "webhook-test-key-0123456789abcdef"


@pytest.fixture
def receiver():
    with signed_webhook_receiver(KEY.encode()) as receiver:
        yield receiver


def test_a_compromised_account_is_locked_revoked_and_reported(tmp_path: Path, receiver) -> None:
    url, received = receiver
    settings = Settings(
        data_dir=tmp_path,
        webhook_url=url,
        webhook_key=KEY,
        argon2_memory_kib=8,
        argon2_time_cost=1,
        argon2_parallelism=1,
    )
    clock = FixedClock(T0 + timedelta(hours=1))
    app = Custodes(settings, clock)
    app.identity.add_user("mallory", "clinician", password="correct horse battery staple")
    session = app.identity.sessions.start("mallory")
    app.identity.issue_token("mallory", ("events:read",), timedelta(days=1))

    report = app.case_book().record(compromised_credentials(user="mallory"))
    runs = app.respond(report.case_ids)

    (case,) = app.case_book().queue()
    assert case.kind == "compromised_credentials_chain" and str(case.severity) == "critical"
    assert "unusual sign-in at 10:00 then access at 10:01 (12 patient(s)) then export" in " ".join(
        case.story
    )
    assert app.identity.user("mallory").locked_until is not None
    with pytest.raises(NotAuthenticated):
        app.identity.sessions.check(session.session_id)
    good, body = received.get(timeout=5)
    assert good and body["case"]["case_id"] == case.case_id
    statuses = {r.action: r.status for r in runs}
    assert statuses["lock_account"] is RunStatus.SUCCEEDED
    assert statuses["webhook"] is RunStatus.SUCCEEDED
    # Nothing is done twice when the same case is answered again.
    assert app.respond(report.case_ids) == []
    # The lock's and the step-up's automatic undo (24 h in the default playbooks) come
    # due, and only then; the second factors stay reset: mallory enrols again.
    assert app.identity.user("mallory").step_up_demanded_at is not None
    assert app.undo_due() == []
    clock.advance(hours=25)
    undone = {run.action: run.status for run in app.undo_due()}
    assert undone == {"lock_account": RunStatus.UNDONE, "require_step_up": RunStatus.UNDONE}
    mallory = app.identity.user("mallory")
    assert mallory.locked_until is None and mallory.step_up_demanded_at is None
    assert mallory.mfa_enrolment_required
    # Every run, and the lock's sign-in event, is in the hash-chained audit log.
    kinds = [orjson.loads(row.body)["detail"].get("kind") for row in app.audit_store.read()]
    assert "response.lock_account" in kinds and "response.webhook" in kinds
    assert "signin.lockout" in kinds
    assert app.audit_log.verify(app.audit_signing_key().public_key()).ok
