"""One conformance suite for every IdentityStore: in memory, SQLite and real PostgreSQL."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from custodes.core.accounts import (
    AccountKind,
    ApiTokenRecord,
    PasskeyCredential,
    Role,
    SessionRecord,
    UserAccount,
)
from custodes.storage.database import create_engine, current_revision, head_revision, upgrade
from custodes.storage.memory import MemoryIdentityStore
from custodes.storage.sql_identity import SqlIdentityStore

NOW = datetime(2026, 3, 9, 9, tzinfo=UTC)


@pytest.fixture(
    params=["memory", "sqlite", pytest.param("postgresql", marks=pytest.mark.integration)]
)
def store(request, tmp_path: Path):
    if request.param == "memory":
        yield MemoryIdentityStore()
        return
    url = (
        f"sqlite:///{tmp_path / 'custodes.db'}"
        if request.param == "sqlite"
        else request.getfixturevalue("postgres_url")
    )
    engine = create_engine(url)
    upgrade(engine)
    assert current_revision(engine) == head_revision()
    yield SqlIdentityStore(engine)
    engine.dispose()


def _alice(**changes) -> UserAccount:
    values = {
        "name": "alice",
        "role": Role.NURSE,
        "password_hash": "$argon2id$v=19$m=8,t=1,p=1$c2FsdHNhbHQ$aGFzaA",
        "totp_sealed": b"\x00sealed\xff",
        "totp_enabled": True,
        "recovery_hashes": ("a" * 64, "b" * 64),
        "created_at": NOW,
    } | changes
    return UserAccount(**values)


def test_users_round_trip(store):
    store.add_user(_alice())
    store.add_user(UserAccount("etl", Role.HIM, AccountKind.SERVICE, created_at=NOW))
    assert store.get_user("alice") == _alice()
    assert [u.name for u in sorted(store.list_users(), key=lambda u: u.name)] == ["alice", "etl"]
    with pytest.raises(ValueError):
        store.add_user(_alice())
    store.save_user(_alice(role=Role.PRIVACY_OFFICER, locked_until=NOW + timedelta(hours=1)))
    again = store.get_user("alice")
    assert again.role is Role.PRIVACY_OFFICER and again.locked_until == NOW + timedelta(hours=1)
    assert store.get_user("nobody") is None


def test_failures_lock_once_and_reset(store):
    store.add_user(_alice())
    until = NOW + timedelta(minutes=30)
    assert [store.record_failed_login("alice", 3, until) for _ in range(4)] == [
        False,
        False,
        True,
        False,
    ]
    user = store.get_user("alice")
    assert user.failed_logins == 4 and user.locked_until == until
    store.reset_failed_logins("alice")
    assert store.get_user("alice").failed_logins == 0
    assert store.record_failed_login("nobody", 3, until) is False


def test_concurrent_failures_all_count_and_lock_once(store):
    store.add_user(_alice())
    until = NOW + timedelta(minutes=30)
    with ThreadPoolExecutor(8) as pool:
        locked = list(pool.map(lambda _: store.record_failed_login("alice", 10, until), range(80)))
    assert store.get_user("alice").failed_logins == 80
    assert locked.count(True) == 1


def test_totp_step_is_claimed_once(store):
    store.add_user(_alice())
    with ThreadPoolExecutor(8) as pool:
        claims = list(pool.map(lambda _: store.claim_totp_step("alice", 1000), range(16)))
    assert claims.count(True) == 1
    assert store.claim_totp_step("alice", 999) is False
    assert store.claim_totp_step("alice", 1001) is True


def test_recovery_code_is_consumed_once(store):
    store.add_user(_alice())
    assert store.consume_recovery_code("alice", "a" * 64)
    assert not store.consume_recovery_code("alice", "a" * 64)
    assert store.get_user("alice").recovery_hashes == ("b" * 64,)


def test_passkeys(store):
    store.add_user(_alice())
    key = PasskeyCredential(b"\x01\x02cred", "alice", b"cose-key", 5, True, NOW)
    store.add_passkey(key)
    assert store.get_passkey(b"\x01\x02cred") == key
    assert store.passkeys_of("alice") == [key]
    store.update_passkey_use(b"\x01\x02cred", 9, NOW + timedelta(minutes=1))
    used = store.get_passkey(b"\x01\x02cred")
    assert used.sign_count == 9 and used.last_used_at == NOW + timedelta(minutes=1)
    assert store.get_passkey(b"other") is None


def test_sessions(store):
    record = SessionRecord("k1", "alice", NOW, NOW, NOW, "totp", None, "10.0.0.1")
    store.put_session(record)
    store.put_session(SessionRecord("k2", "alice", NOW, NOW))
    assert store.get_session("k1") == record
    assert sorted(x.key for x in store.sessions_of("alice")) == ["k1", "k2"]
    assert store.sessions_of("bob") == []
    store.put_session(SessionRecord("k1", "alice", NOW, NOW + timedelta(minutes=1)))
    assert store.get_session("k1").last_seen == NOW + timedelta(minutes=1)
    store.delete_session("k1")
    assert store.get_session("k1") is None
    assert store.delete_sessions_of("alice") == 1


def test_tokens(store):
    token = ApiTokenRecord("t1", "etl", "d" * 64, ("events:write",), NOW, NOW + timedelta(days=1))
    store.put_token(token)
    assert store.get_token("t1") == token
    assert store.revoke_tokens_of("etl") == 1
    assert store.get_token("t1").revoked
    assert store.revoke_tokens_of("etl") == 0


def test_second_factors_reset_in_one_step(store):
    store.add_user(_alice())
    store.add_user(_alice(name="bob"))
    for owner, credential in (("alice", b"a1"), ("alice", b"a2"), ("bob", b"b1")):
        store.add_passkey(PasskeyCredential(credential, owner, b"cose-key", 0, True, NOW))
    assert store.reset_second_factors("alice") == 3  # two passkeys and TOTP
    alice = store.get_user("alice")
    assert (alice.totp_sealed, alice.totp_enabled, alice.recovery_hashes) == (None, False, ())
    assert alice.mfa_enrolment_required and store.passkeys_of("alice") == []
    assert [p.credential_id for p in store.passkeys_of("bob")] == [b"b1"]
    assert not store.get_user("bob").mfa_enrolment_required
    assert store.reset_second_factors("alice") == 0
    store.save_user(_alice(step_up_demanded_at=NOW, mfa_enrolment_required=False))
    assert store.get_user("alice").step_up_demanded_at == NOW
