"""Playbooks, plans and the executor: approvals, idempotence, retries, undo, records."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from custodes.core.cases import Case, Severity
from custodes.core.clock import FixedClock
from custodes.core.errors import InputFormatError
from custodes.core.responses import RunStatus
from custodes.respond.actions import (
    ACCOUNT_ACTIONS,
    AccountAction,
    ActionFailedError,
    ActionRegistry,
    account_actions,
)
from custodes.respond.executor import ResponseExecutor, StepNotFoundError
from custodes.respond.plan import plan_response
from custodes.respond.playbooks import load_playbooks, parse_playbooks
from custodes.storage.database import create_engine, upgrade
from custodes.storage.sql_responses import MemoryResponseRuns, SqlResponseRuns

T = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)


def case(kind: str = "compromised_credentials_chain", severity: Severity = Severity.CRITICAL,
         tactics: tuple[str, ...] = ()) -> Case:
    return Case("c-1", kind, "alice", severity, 97.0, T, T, ("a1", "a2"), 2, tactics=tactics)


class FakeAccounts:
    """An in-memory AccountControl."""

    def __init__(self, names=("alice",)) -> None:
        self.known = set(names)
        self.locked: set[str] = set()
        self.revoked: list[str] = []
        self.step_up: set[str] = set()
        self.factors: dict[str, int] = {}

    def _check(self, name: str) -> None:
        if name not in self.known:
            raise LookupError(name)

    def lock(self, name: str) -> None:
        self._check(name)
        self.locked.add(name)

    def unlock(self, name: str) -> None:
        self._check(name)
        self.locked.discard(name)

    def revoke_sessions(self, name: str) -> int:
        self._check(name)
        self.revoked.append(f"sessions:{name}")
        return 2

    def revoke_tokens(self, name: str) -> int:
        self._check(name)
        self.revoked.append(f"tokens:{name}")
        return 1

    def require_step_up(self, name: str) -> None:
        self._check(name)
        self.step_up.add(name)

    def withdraw_step_up(self, name: str) -> None:
        self._check(name)
        self.step_up.discard(name)

    def require_mfa_reenrolment(self, name: str) -> int:
        self._check(name)
        removed, self.factors[name] = self.factors.get(name, 2), 0
        return removed


class Flaky:
    """A notification that fails ``failures`` times, then works."""

    undoable = False

    def __init__(self, type: str, failures: int) -> None:
        self.type = type
        self.failures = failures
        self.calls = 0

    def perform(self, step, case, at) -> str:
        self.calls += 1
        if self.calls <= self.failures:
            raise ActionFailedError(f"{self.type}: receiver down")
        return "sent"

    def undo(self, step, case, at) -> str:
        raise ActionFailedError("no")


def sqlite_runs(tmp_path: Path) -> SqlResponseRuns:
    engine = create_engine(f"sqlite:///{tmp_path / 'runs.db'}")
    upgrade(engine)
    return SqlResponseRuns(engine)


@pytest.fixture(params=["memory", "sqlite"])
def runs(request, tmp_path):
    return MemoryResponseRuns() if request.param == "memory" else sqlite_runs(tmp_path)


def executor(runs, accounts, *notifiers, attempts=3, clock=None):
    registry = ActionRegistry.of(*account_actions(accounts), *notifiers)
    return ResponseExecutor(registry, runs, clock or FixedClock(T), attempts=attempts)


def test_the_default_playbook_locks_revokes_and_notifies_a_compromised_account(runs) -> None:
    accounts = FakeAccounts()
    hooks = [Flaky(kind, 0) for kind in ("webhook", "syslog", "email")]
    run = executor(runs, accounts, *hooks)
    plan = plan_response(case(), load_playbooks())
    assert [s.type for s in plan.steps] == [
        "lock_account", "revoke_sessions", "revoke_tokens", "require_mfa_reenrolment",
        "webhook", "syslog", "email", "require_step_up",
    ]
    done = run.execute(plan, case())
    assert all(r.status is RunStatus.SUCCEEDED for r in done) and len(done) == 8
    assert accounts.locked == {"alice"} and accounts.step_up == {"alice"}
    assert accounts.revoked == ["sessions:alice", "tokens:alice"]
    assert accounts.factors == {"alice": 0}
    assert [r.action for r in runs.runs("c-1")] == [s.type for s in plan.steps]

    # Planned again (the case grew): nothing runs twice.
    assert run.execute(plan_response(case(), load_playbooks()), case()) == []
    assert all(h.calls == 1 for h in hooks)


def test_failures_are_retried_and_every_attempt_is_recorded(runs) -> None:
    flaky = Flaky("webhook", failures=2)
    run = executor(runs, FakeAccounts(), flaky, attempts=3)
    plan = plan_response(case("mass_access", Severity.HIGH), load_playbooks())
    run.execute(plan, case("mass_access", Severity.HIGH))
    webhook = [r for r in runs.runs() if r.action == "webhook"]
    assert [(r.status, r.attempt) for r in webhook] == [
        (RunStatus.FAILED, 1), (RunStatus.FAILED, 2), (RunStatus.SUCCEEDED, 3)
    ]
    assert webhook[0].detail == "webhook: receiver down"


def test_a_step_that_keeps_failing_is_tried_again_next_time(runs) -> None:
    dead = Flaky("webhook", failures=5)
    run = executor(runs, FakeAccounts(), dead, attempts=2)
    plan = plan_response(case("mass_access", Severity.HIGH), load_playbooks())
    run.execute(plan, case("mass_access", Severity.HIGH))
    assert runs.latest(plan.steps[0].step_id).status is RunStatus.FAILED
    run.execute(plan, case("mass_access", Severity.HIGH))
    assert dead.calls == 4


def test_approvals_wait_then_run_or_are_rejected(runs) -> None:
    accounts = FakeAccounts()
    run = executor(runs, accounts, Flaky("webhook", 0), Flaky("syslog", 0))
    the_case = case("mass_access", Severity.HIGH)
    run.execute(plan_response(the_case, load_playbooks()), the_case)
    waiting = {r.action: r for r in run.pending()}
    assert set(waiting) == {"lock_account", "ticket"} and accounts.locked == set()
    run.approve(waiting["lock_account"].step_id, "officer", the_case)
    assert accounts.locked == {"alice"}
    assert runs.latest(waiting["lock_account"].step_id).actor == "officer"
    run.reject(waiting["ticket"].step_id, "officer")
    assert run.pending() == []
    with pytest.raises(StepNotFoundError):
        run.approve(waiting["ticket"].step_id, "officer", the_case)


def test_a_case_that_grows_into_an_urgent_one_acts_on_its_waiting_steps(runs) -> None:
    accounts = FakeAccounts()
    run = executor(runs, accounts, Flaky("webhook", 0), Flaky("syslog", 0))
    # The stream first sees the mass access: the lock waits for an officer...
    early = case("mass_access", Severity.HIGH)
    run.execute(plan_response(early, load_playbooks()), early)
    assert accounts.locked == set()
    # ...then the unusual sign-in arrives and the same case becomes the chain: the lock
    # is automatic now, so it happens at once and no longer waits.
    grown = case()
    done = run.execute(plan_response(grown, load_playbooks()), grown)
    assert accounts.locked == {"alice"}
    assert {r.action for r in done if r.status is RunStatus.SUCCEEDED} >= {"lock_account"}
    assert "lock_account" not in {r.action for r in run.pending()}
    # A step an officer rejected stays rejected, whatever the case becomes.
    rejected = {r.action: r for r in run.pending()}["ticket"]
    run.reject(rejected.step_id, "officer")
    assert run.execute(plan_response(grown, load_playbooks()), grown) == []


def test_a_lock_is_undone_by_hand_or_after_its_timeout(runs) -> None:
    accounts = FakeAccounts()
    clock = FixedClock(T)
    run = executor(runs, accounts, clock=clock)
    plan = plan_response(case(), load_playbooks())
    run.execute(plan, case())
    assert accounts.locked == {"alice"}
    clock.advance(hours=23)
    assert run.undo_due(lambda _: case()) == []
    clock.advance(hours=2)
    undone, withdrawn = run.undo_due(lambda _: case())
    assert undone.action == "lock_account" and withdrawn.action == "require_step_up"
    assert undone.status is RunStatus.UNDONE and accounts.locked == set()
    with pytest.raises(StepNotFoundError):
        run.undo(undone.step_id, "officer", case())
    revoke = next(s for s in plan.steps if s.type == "revoke_sessions")
    with pytest.raises(StepNotFoundError, match="cannot be undone"):
        run.undo(revoke.step_id, "officer", case())


def test_an_unknown_account_fails_and_is_recorded(runs) -> None:
    run = executor(runs, FakeAccounts(names=()), attempts=3)
    run.execute(plan_response(case(), load_playbooks()), case())
    (lock,) = [r for r in runs.runs() if r.action == "lock_account"]  # not retried
    assert lock.status is RunStatus.FAILED and "no such account" in lock.detail
    missing = next(r for r in runs.runs() if r.action == "webhook")
    assert missing.status is RunStatus.SKIPPED and "not configured" in missing.detail


@pytest.mark.parametrize(
    ("the_case", "expected"),
    [
        (case(), {"lock_account", "revoke_sessions", "revoke_tokens", "require_mfa_reenrolment",
                  "webhook", "syslog", "email", "require_step_up"}),
        (case(severity=Severity.MEDIUM), set()),
        (case("mass_access", Severity.HIGH), {"webhook", "lock_account", "ticket", "syslog",
                                              "require_step_up"}),
        (case("single_alert", Severity.HIGH), {"syslog", "require_step_up"}),
        (case("single_alert", Severity.LOW), set()),
        (case("sign_in_then_export", Severity.HIGH), {"lock_account", "revoke_sessions",
                                                      "webhook", "ticket", "syslog",
                                                      "require_step_up"}),
    ],
)
def test_triggers(the_case, expected) -> None:
    assert {s.type for s in plan_response(the_case, load_playbooks()).steps} == expected


def test_a_sign_in_then_export_locks_at_once_and_for_eight_hours() -> None:
    steps = {s.type: s for s in plan_response(case("sign_in_then_export", Severity.HIGH),
                                              load_playbooks()).steps}
    assert steps["lock_account"].mode == "auto" and steps["ticket"].mode == "approval"
    assert steps["lock_account"].undo_after == timedelta(hours=8)


def test_tactic_triggers() -> None:
    books = parse_playbooks(
        "playbooks:\n - name: exfil\n   when: {tactics: [TA0010 Exfiltration]}\n"
        "   actions: [{type: webhook}]\n"
    )
    assert plan_response(case(tactics=("TA0010 Exfiltration",)), books).steps
    assert not plan_response(case(tactics=("TA0009 Collection",)), books).steps


def test_the_same_case_plans_the_same_step_ids() -> None:
    first = plan_response(case(), load_playbooks())
    assert first == plan_response(case(), load_playbooks())


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("playbooks: [{name: a}]", "needs a name and actions"),
        ("playbooks: [{name: a, actions: [{type: fax}]}]", "is not one of"),
        ("playbooks: [{name: a, actions: [{type: email, mode: later}]}]", "auto or approval"),
        ("playbooks: [{name: a, actions: [{type: lock_account, undo_after: soon}]}]",
         "not like 30s"),
        ("playbooks: [{name: a, when: {min_severity: dire}, actions: [{type: email}]}]", "dire"),
        ("playbooks: [", "not valid YAML"),
    ],
)
def test_bad_playbooks_are_one_clear_error(text, message) -> None:
    with pytest.raises(InputFormatError, match=message):
        parse_playbooks(text)


def test_the_registry_checks_what_it_is_given() -> None:
    with pytest.raises(TypeError, match="not a response action"):
        ActionRegistry().register(object())  # type: ignore[arg-type]


def test_undo_after_only_for_undoable_actions(runs) -> None:
    run = executor(runs, FakeAccounts())
    run.execute(plan_response(case(), load_playbooks()), case())
    by_action = {r.action: r for r in runs.runs()}
    assert by_action["lock_account"].undo_at == T + timedelta(hours=24)
    assert by_action["revoke_sessions"].undo_at is None


@pytest.mark.parametrize(
    ("kind", "detail", "undone"),
    [
        ("lock_account", "account locked; its sessions and tokens revoked", "account unlocked"),
        ("revoke_sessions", "2 session(s) revoked", None),
        ("revoke_tokens", "1 token(s) revoked", None),
        ("require_step_up", "the next sensitive operation needs a new second factor",
         "step-up demand withdrawn"),
        ("require_mfa_reenrolment",
         "2 second factor(s) reset; enrols again at the next sign-in", None),
    ],
)
def test_every_account_action_and_its_undo(kind, detail, undone) -> None:
    accounts = FakeAccounts()
    action = AccountAction(accounts, kind)
    step = plan_response(case(), load_playbooks()).steps[0]
    step = type(step)(**{**step.__dict__, "type": kind})
    assert action.perform(step, case(), T) == detail
    assert action.undoable is (undone is not None)
    if undone:
        assert action.undo(step, case(), T) == undone
        assert accounts.locked == set() and accounts.step_up == set()
    else:
        with pytest.raises(ActionFailedError, match="cannot be undone"):
            action.undo(step, case(), T)
    # An account no one has: a failure that retrying would not mend.
    stranger = type(step)(**{**step.__dict__, "target_user": "mallory"})
    with pytest.raises(ActionFailedError, match="no such account") as caught:
        action.perform(stranger, case(), T)
    assert not caught.value.retryable


def test_the_account_actions_are_all_registered() -> None:
    registry = ActionRegistry.of(*account_actions(FakeAccounts()))
    assert all(registry.get(kind) is not None for kind in ACCOUNT_ACTIONS)


def test_a_step_up_demand_is_undone_after_a_day(runs) -> None:
    accounts = FakeAccounts()
    clock = FixedClock(T)
    run = executor(runs, accounts, Flaky("syslog", 0), clock=clock)
    high = case("single_alert", Severity.HIGH)
    run.execute(plan_response(high, load_playbooks()), high)
    assert accounts.step_up == {"alice"}
    clock.advance(hours=25)
    (undone,) = run.undo_due(lambda _: high)
    assert undone.action == "require_step_up" and accounts.step_up == set()


@pytest.mark.parametrize("severity", [Severity.HIGH, Severity.CRITICAL])
def test_a_patient_case_is_never_answered_on_an_account(severity) -> None:
    patient_case = Case(
        "p-1-vip", "record_viewed_by_many", "", severity, 88.0, T, T, ("a1", "a2", "a3"), 1,
        subject="patient", patient_id="vip", user_count=3,
    )
    steps = plan_response(patient_case, load_playbooks()).steps
    assert {s.type for s in steps} == {"webhook", "ticket", "syslog"}
    assert not {s.type for s in steps} & set(ACCOUNT_ACTIONS)
    # The same kind of case about one user is answered on the account.
    user_case = Case("c-1", "record_viewed_by_many", "alice", severity, 88.0, T, T, ("a1",), 1)
    assert "require_step_up" in {s.type for s in plan_response(user_case, load_playbooks()).steps}
