"""``decide()`` by tables: each row a request and the decision it must get."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from custodes.access import (
    ROLE_POLICIES,
    AccessRequest,
    BreakGlass,
    ConsentDirective,
    Obligation,
    care_relationship,
    decide,
)
from custodes.context import HospitalContext
from custodes.core.accounts import Role
from custodes.core.entities import Encounter
from custodes.core.events import Action

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
GLASS = BreakGlass("patient unconscious in the ED, no chart", NOW - timedelta(minutes=5),
                   NOW + timedelta(minutes=55))  # fmt: skip
A, R = Obligation.AUDIT, Obligation.REVIEW


def req(role: Role, action: Action = Action.READ, rtype: str = "Observation", **kw) -> AccessRequest:
    return AccessRequest(f"{role}-1", role, action, rtype, NOW, patient_id="p1", **kw)


ALLOW_TABLE = [
    # (request, obligations beyond audit, a phrase of the reasons)
    (req(Role.CLINICIAN, care_relationship=True), set(), "care relationship"),
    (req(Role.CLINICIAN, Action.UPDATE, care_relationship=True), set(), "care relationship"),
    (req(Role.NURSE, Action.CREATE, care_relationship=True), set(), "care relationship"),
    (req(Role.CLINICIAN, break_glass=GLASS), {R}, "break-the-glass"),
    (req(Role.NURSE, break_glass=GLASS), {R}, "break-the-glass"),
    (req(Role.CLINICIAN, care_relationship=True, sensitive=True, step_up_fresh=True), set(), "fresh second factor"),
    (req(Role.FRONT_DESK, rtype="Patient"), {Obligation.MASK}, "front_desk"),
    (req(Role.FRONT_DESK, Action.UPDATE, rtype="Patient"), {Obligation.MASK}, "front_desk"),
    (req(Role.FRONT_DESK, Action.CREATE, rtype="Appointment"), set(), "front_desk"),
    (req(Role.BILLING, rtype="Claim"), set(), "billing"),
    (req(Role.BILLING, rtype="Procedure"), {Obligation.MASK}, "billing"),
    (req(Role.HIM, Action.EXPORT, rtype="Bundle"), set(), "him"),
    (req(Role.HIM, rtype="DocumentReference", sensitive=True, step_up_fresh=True), set(), "second factor"),
    (req(Role.RESEARCHER, rtype="Patient", purpose_of_use="HRESCH"), {Obligation.MASK}, "researcher"),
    (req(Role.PRIVACY_OFFICER, rtype="AuditEvent"), set(), "privacy_officer"),
    (req(Role.ADMINISTRATOR, Action.CREATE, rtype="Bundle"), {R}, "administrator"),
    (req(Role.ADMINISTRATOR, Action.DELETE, rtype="Observation"), {R}, "administrator"),
    (req(Role.ADMINISTRATOR, rtype="Patient"), {R}, "administrator"),
    (req(Role.CLINICIAN, break_glass=GLASS,
         consents=(ConsentDirective("p1", denied_roles=frozenset({Role.CLINICIAN})),)), {R}, "overrides"),
    (req(Role.CLINICIAN, care_relationship=True,
         consents=(ConsentDirective("p2"),)), set(), "care relationship"),  # another patient's
    (req(Role.CLINICIAN, care_relationship=True,
         consents=(ConsentDirective("p1", sensitive_only=True),)), set(), "care relationship"),
    (req(Role.CLINICIAN, care_relationship=True,
         consents=(ConsentDirective("p1", end=NOW),)), set(), "care relationship"),  # expired
]  # fmt: skip


@pytest.mark.parametrize(("request_", "extra", "phrase"), ALLOW_TABLE)
def test_allowed(request_, extra, phrase):
    decision = decide(request_)
    assert decision.allowed, decision.reasons
    assert decision.obligations == {A, *extra}
    assert any(phrase in reason for reason in decision.reasons)


DENY_TABLE = [
    (req(Role.CLINICIAN), "no care relationship", set()),
    (req(Role.NURSE), "no care relationship", set()),
    (req(Role.CLINICIAN, Action.EXPORT, care_relationship=True), "may not export", set()),
    (req(Role.CLINICIAN, Action.DELETE, care_relationship=True), "may not delete", set()),
    (req(Role.CLINICIAN, rtype="Claim", care_relationship=True), "may not touch Claim", set()),
    (req(Role.FRONT_DESK), "may not touch Observation", set()),
    (req(Role.FRONT_DESK, rtype="Patient", sensitive=True), "sensitive", set()),
    (req(Role.BILLING, Action.CREATE, rtype="Claim"), "may not create", set()),
    (req(Role.BILLING, rtype="DocumentReference"), "may not touch", set()),
    (req(Role.RESEARCHER, rtype="Patient"), "purpose of use", set()),
    (req(Role.RESEARCHER, rtype="Observation", purpose_of_use="TREAT"), "purpose of use", set()),
    (req(Role.RESEARCHER, rtype="Observation", purpose_of_use="HRESCH", sensitive=True), "sensitive", set()),
    (req(Role.RESEARCHER, rtype="Observation", purpose_of_use="HRESCH",
         consents=(ConsentDirective("p1", denied_purposes=frozenset({"HRESCH"})),)), "consent", set()),
    (req(Role.PRIVACY_OFFICER, Action.UPDATE), "may not update", set()),
    (req(Role.CLINICIAN, care_relationship=True, sensitive=True), "second factor", {Obligation.STEP_UP}),
    (req(Role.ADMINISTRATOR, sensitive=True), "second factor", {Obligation.STEP_UP}),
    (req(Role.CLINICIAN, care_relationship=True,
         consents=(ConsentDirective("p1", denied_users=frozenset({"clinician-1"})),)), "consent", set()),
    (req(Role.NURSE, care_relationship=True,
         consents=(ConsentDirective("p1", denied_roles=frozenset({Role.NURSE})),)), "consent", set()),
    (req(Role.CLINICIAN, break_glass=GLASS,
         consents=(ConsentDirective("p1", emergency_override=False),)), "consent", {R}),
    # break-the-glass that does not hold: always queued for review
    (req(Role.CLINICIAN, break_glass=replace(GLASS, reason="emergency")), "stated reason", {R}),
    (req(Role.CLINICIAN, break_glass=replace(GLASS, reason="   ")), "stated reason", {R}),
    (req(Role.CLINICIAN, break_glass=replace(GLASS, expires_at=NOW)), "expired", {R}),
    (req(Role.CLINICIAN, break_glass=replace(GLASS, started_at=NOW + timedelta(minutes=1))), "expired", {R}),
    (req(Role.CLINICIAN, break_glass=replace(GLASS, expires_at=NOW + timedelta(hours=5))), "at most", {R}),
    (req(Role.FRONT_DESK, rtype="Patient", break_glass=GLASS), "may not break the glass", {R}),
    (req(Role.BILLING, rtype="Observation", break_glass=GLASS), "may not touch", {R}),
]  # fmt: skip


@pytest.mark.parametrize(("request_", "phrase", "extra"), DENY_TABLE)
def test_denied(request_, phrase, extra):
    decision = decide(request_)
    assert not decision.allowed
    assert decision.effect == "deny"
    assert phrase in decision.reasons[0]
    assert decision.obligations == {A, *extra}


@pytest.mark.parametrize("role", list(Role))
def test_every_role_is_in_the_table_and_unknown_types_are_denied(role):
    assert role in ROLE_POLICIES
    assert not decide(req(role, rtype="NotAFhirType", care_relationship=True)).allowed


@pytest.mark.parametrize("role", list(Role))
def test_every_decision_is_audited(role):
    for action in Action:
        assert Obligation.AUDIT in decide(req(role, action, care_relationship=True)).obligations


def test_masks_name_the_visible_elements():
    front = decide(req(Role.FRONT_DESK, rtype="Patient"))
    assert "name" in front.visible_elements and "birthDate" in front.visible_elements
    research = decide(req(Role.RESEARCHER, rtype="Patient", purpose_of_use="HRESCH"))
    assert "name" not in research.visible_elements and "identifier" not in research.visible_elements
    assert decide(req(Role.CLINICIAN, rtype="Patient", care_relationship=True)).visible_elements is None


def test_care_relationship_from_the_context():
    t = NOW - timedelta(days=3)
    ctx = HospitalContext.from_entities(encounters=[
        Encounter("e1", "p1", t, end=t + timedelta(days=1), attending_id="dr", care_team=("rn",)),
        Encounter("e2", "p2", NOW + timedelta(days=1), care_team=("rn",)),
    ])  # fmt: skip
    assert care_relationship(ctx, "dr", "p1", NOW)
    assert care_relationship(ctx, "rn", "p1", NOW)
    assert not care_relationship(ctx, "rn", "p1", NOW + timedelta(days=40))  # long after discharge
    assert not care_relationship(ctx, "rn", "p2", NOW)  # not yet admitted
    assert not care_relationship(ctx, "dr", "p2", NOW + timedelta(days=2))
    assert not care_relationship(HospitalContext.empty(), "dr", "p1", NOW)
