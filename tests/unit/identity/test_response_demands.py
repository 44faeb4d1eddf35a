"""What a response may ask of an account: a step-up before the next sensitive operation,
and a reset of its second factors so that it enrols again at its next sign-in."""

from __future__ import annotations

import pytest

from custodes.core.accounts import PasskeyCredential
from custodes.identity.errors import EnrolmentRequired, InvalidCredentials, StepUpRequired
from custodes.identity.stepup import Operation

from .conftest import PASSWORD, START, FrontDoor


def test_a_demanded_step_up_outweighs_a_fresh_factor_until_one_is_given(door):
    door.person()
    issued = door.service.login("alice", PASSWORD, door.code(), "10.0.0.1")
    door.service.require_step_up(issued.record, Operation.EXPORT)  # fresh from login: fine
    door.clock.advance(seconds=5)
    door.service.demand_step_up("alice")
    with pytest.raises(StepUpRequired, match="given after"):
        door.service.require_step_up(issued.record, Operation.EXPORT)
    door.next_step()
    stepped = door.service.step_up(issued.session_id, door.code())
    door.service.require_step_up(stepped.record, Operation.EXPORT)
    assert door.store.get_user("alice").step_up_demanded_at is None
    # Demanded again and withdrawn (the response undone): the fresh factor suffices again.
    door.clock.advance(seconds=1)
    door.service.demand_step_up("alice")
    with pytest.raises(StepUpRequired):
        door.service.require_step_up(stepped.record, Operation.EXPORT)
    door.service.withdraw_step_up("alice")
    door.service.require_step_up(stepped.record, Operation.EXPORT)


def test_a_reset_ends_the_sessions_and_the_next_sign_in_may_only_enrol(door):
    door.person()
    door.store.add_passkey(PasskeyCredential(b"cred", "alice", b"cose", 0, False, START))
    issued = door.service.login("alice", PASSWORD, door.code(), "10.0.0.1")

    assert door.service.reset_second_factors("alice", by="custodes response") == 2
    assert door.store.passkeys_of("alice") == []
    user = door.store.get_user("alice")
    assert not user.totp_enabled and user.totp_sealed is None and user.recovery_hashes == ()
    with pytest.raises(Exception, match="sign in"):
        door.service.sessions.check(issued.session_id)
    # The old code opens nothing now: the password alone signs in (the owner has no
    # factor left), and the session may do nothing but enrol one.
    door.next_step()
    session = door.service.login("alice", PASSWORD, None, "10.0.0.1")
    with pytest.raises(EnrolmentRequired):
        door.service.authenticate(session.session_id)
    with pytest.raises(EnrolmentRequired):
        door.service.list_sessions(session.session_id)
    enrolment = door.service.enroll_own_totp(session.session_id)  # no step-up asked
    door.secrets["alice"] = enrolment.secret
    assert not door.store.get_user("alice").mfa_enrolment_required
    door.service.authenticate(session.session_id)
    # From now on the new factor is needed again.
    door.next_step()
    with pytest.raises(InvalidCredentials):
        door.service.login("alice", PASSWORD, None, "10.0.0.1")
    door.service.login("alice", PASSWORD, door.code(), "10.0.0.1")
    assert ("mfa", "success") in door.kinds()


def test_a_reset_is_idempotent_and_enrolment_restores_the_second_factor_rule():
    door = FrontDoor(require_second_factor=True)
    door.person()
    door.service.reset_second_factors("alice")
    assert door.service.reset_second_factors("alice") == 0  # twice: nothing more to reset
    session = door.service.login("alice", PASSWORD, None, "10.0.0.1")
    with pytest.raises(EnrolmentRequired):
        door.service.authenticate(session.session_id)
    door.service.enroll_own_totp(session.session_id)
    door.next_step()
    with pytest.raises(InvalidCredentials):
        door.service.login("alice", PASSWORD, None, "10.0.0.1")
