"""Accounts, passkeys, sessions and API tokens in the relational store.

Implements ``IdentityStore`` over SQLAlchemy Core, on SQLite and PostgreSQL alike. The
operations that race under a flood of sign-in attempts are single guarded statements
(``failed_logins = failed_logins + 1``; ``totp_last_step < :step``), so every failure
counts and a TOTP code is accepted once, however many requests arrive together.
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from custodes.core.accounts import (
    AccountKind,
    ApiTokenRecord,
    PasskeyCredential,
    Role,
    SessionRecord,
    UserAccount,
)
from custodes.storage.database import reader
from custodes.storage.schema import api_tokens, passkeys, sessions, users


def _utc(value: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes for UTC columns."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)


def _user(row) -> UserAccount:
    return UserAccount(
        name=row.name,
        role=Role(row.role),
        kind=AccountKind(row.kind),
        password_hash=row.password_hash,
        totp_sealed=row.totp_sealed,
        totp_enabled=bool(row.totp_enabled),
        totp_last_step=row.totp_last_step,
        recovery_hashes=tuple(row.recovery_hashes or ()),
        failed_logins=row.failed_logins,
        locked_until=_utc(row.locked_until),
        created_at=_utc(row.created_at),
        step_up_demanded_at=_utc(row.step_up_demanded_at),
        mfa_enrolment_required=bool(row.mfa_enrolment_required),
    )


def _user_values(user: UserAccount) -> dict:
    return {
        "name": user.name,
        "role": str(user.role),
        "kind": str(user.kind),
        "password_hash": user.password_hash,
        "totp_sealed": user.totp_sealed,
        "totp_enabled": user.totp_enabled,
        "totp_last_step": user.totp_last_step,
        "recovery_hashes": list(user.recovery_hashes),
        "failed_logins": user.failed_logins,
        "locked_until": user.locked_until,
        "created_at": user.created_at,
        "step_up_demanded_at": user.step_up_demanded_at,
        "mfa_enrolment_required": user.mfa_enrolment_required,
    }


def _passkey(row) -> PasskeyCredential:
    return PasskeyCredential(
        credential_id=bytes(row.credential_id),
        user_name=row.user_name,
        public_key=bytes(row.public_key),
        sign_count=row.sign_count,
        backed_up=bool(row.backed_up),
        created_at=_utc(row.created_at),
        last_used_at=_utc(row.last_used_at),
    )


def _session(row) -> SessionRecord:
    return SessionRecord(
        key=row.key,
        user_name=row.user_name,
        created_at=_utc(row.created_at),
        last_seen=_utc(row.last_seen),
        mfa_at=_utc(row.mfa_at),
        mfa_method=row.mfa_method,
        verified_at=_utc(row.verified_at),
        source_ip=row.source_ip,
    )


class SqlIdentityStore:
    """An ``IdentityStore`` over SQLAlchemy (SQLite or PostgreSQL)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._reader = reader(engine)
        # The two lookups every API request makes, built once (building a statement
        # costs more than running it).
        self._user_by_name = users.select().where(users.c.name == sa.bindparam("name"))
        self._token_by_id = api_tokens.select().where(api_tokens.c.token_id == sa.bindparam("token_id"))

    def add_user(self, user: UserAccount) -> None:
        try:
            with self.engine.begin() as connection:
                connection.execute(users.insert().values(**_user_values(user)))
        except sa.exc.IntegrityError as err:
            raise ValueError(f"{user.name} exists") from err

    def get_user(self, name: str) -> UserAccount | None:
        with self._reader.connect() as connection:
            row = connection.execute(self._user_by_name, {"name": name}).first()
        return _user(row) if row else None

    def list_users(self) -> list[UserAccount]:
        with self.engine.connect() as connection:
            return [_user(r) for r in connection.execute(users.select().order_by(users.c.name))]

    def save_user(self, user: UserAccount) -> None:
        values = _user_values(user)
        del values["name"]
        with self.engine.begin() as connection:
            connection.execute(users.update().where(users.c.name == user.name).values(**values))

    def record_failed_login(self, name: str, threshold: int, lock_until: datetime) -> bool:
        # Two statements in one transaction: the first takes the row lock, so the second
        # sees every earlier failure and sets the lock in exactly one transaction.
        with self.engine.begin() as connection:
            connection.execute(
                users.update()
                .where(users.c.name == name)
                .values(failed_logins=users.c.failed_logins + 1)
            )
            locked = connection.execute(
                users.update()
                .where(
                    users.c.name == name,
                    users.c.failed_logins >= threshold,
                    sa.or_(users.c.locked_until.is_(None), users.c.locked_until < lock_until),
                )
                .values(locked_until=lock_until)
            )
        return locked.rowcount == 1

    def reset_failed_logins(self, name: str) -> None:
        with self.engine.begin() as connection:
            connection.execute(users.update().where(users.c.name == name).values(failed_logins=0))

    def claim_totp_step(self, name: str, step: int) -> bool:
        with self.engine.begin() as connection:
            result = connection.execute(
                users.update()
                .where(users.c.name == name, users.c.totp_last_step < step)
                .values(totp_last_step=step)
            )
        return result.rowcount == 1

    def consume_recovery_code(self, name: str, digest: str) -> bool:
        with self.engine.begin() as connection:
            row = connection.execute(
                sa.select(users.c.recovery_hashes).where(users.c.name == name).with_for_update()
            ).first()
            if row is None or digest not in (row.recovery_hashes or ()):
                return False
            left = [d for d in row.recovery_hashes if d != digest]
            connection.execute(
                users.update().where(users.c.name == name).values(recovery_hashes=left)
            )
        return True

    def add_passkey(self, passkey: PasskeyCredential) -> None:
        with self.engine.begin() as connection:
            connection.execute(
                passkeys.insert().values(
                    credential_id=passkey.credential_id,
                    user_name=passkey.user_name,
                    public_key=passkey.public_key,
                    sign_count=passkey.sign_count,
                    backed_up=passkey.backed_up,
                    created_at=passkey.created_at,
                    last_used_at=passkey.last_used_at,
                )
            )

    def get_passkey(self, credential_id: bytes) -> PasskeyCredential | None:
        with self.engine.connect() as connection:
            row = connection.execute(
                passkeys.select().where(passkeys.c.credential_id == credential_id)
            ).first()
        return _passkey(row) if row else None

    def passkeys_of(self, name: str) -> list[PasskeyCredential]:
        with self.engine.connect() as connection:
            rows = connection.execute(passkeys.select().where(passkeys.c.user_name == name))
            return [_passkey(r) for r in rows]

    def reset_second_factors(self, name: str) -> int:
        with self.engine.begin() as connection:
            totp = connection.execute(
                sa.select(users.c.totp_enabled).where(users.c.name == name).with_for_update()
            ).scalar_one()
            removed = connection.execute(passkeys.delete().where(passkeys.c.user_name == name))
            connection.execute(
                users.update()
                .where(users.c.name == name)
                .values(
                    totp_sealed=None,
                    totp_enabled=False,
                    recovery_hashes=[],
                    mfa_enrolment_required=True,
                )
            )
        return removed.rowcount + int(bool(totp))

    def update_passkey_use(self, credential_id: bytes, sign_count: int, at: datetime) -> None:
        with self.engine.begin() as connection:
            connection.execute(
                passkeys.update()
                .where(passkeys.c.credential_id == credential_id)
                .values(sign_count=sign_count, last_used_at=at)
            )

    def put_session(self, session: SessionRecord) -> None:
        values = {
            "user_name": session.user_name,
            "created_at": session.created_at,
            "last_seen": session.last_seen,
            "mfa_at": session.mfa_at,
            "mfa_method": session.mfa_method,
            "verified_at": session.verified_at,
            "source_ip": session.source_ip,
        }
        with self.engine.begin() as connection:
            updated = connection.execute(
                sessions.update().where(sessions.c.key == session.key).values(**values)
            )
            if updated.rowcount == 0:
                connection.execute(sessions.insert().values(key=session.key, **values))

    def get_session(self, key: str) -> SessionRecord | None:
        with self.engine.connect() as connection:
            row = connection.execute(sessions.select().where(sessions.c.key == key)).first()
        return _session(row) if row else None

    def delete_session(self, key: str) -> None:
        with self.engine.begin() as connection:
            connection.execute(sessions.delete().where(sessions.c.key == key))

    def delete_sessions_of(self, name: str) -> int:
        with self.engine.begin() as connection:
            return connection.execute(
                sessions.delete().where(sessions.c.user_name == name)
            ).rowcount

    def sessions_of(self, name: str) -> list[SessionRecord]:
        with self.engine.connect() as connection:
            rows = connection.execute(
                sessions.select()
                .where(sessions.c.user_name == name)
                .order_by(sessions.c.created_at)
            )
            return [_session(r) for r in rows]

    def put_token(self, token: ApiTokenRecord) -> None:
        with self.engine.begin() as connection:
            connection.execute(
                api_tokens.insert().values(
                    token_id=token.token_id,
                    user_name=token.user_name,
                    digest=token.digest,
                    scopes=list(token.scopes),
                    created_at=token.created_at,
                    expires_at=token.expires_at,
                    revoked=token.revoked,
                )
            )

    def get_token(self, token_id: str) -> ApiTokenRecord | None:
        with self._reader.connect() as connection:
            row = connection.execute(self._token_by_id, {"token_id": token_id}).first()
        if row is None:
            return None
        return ApiTokenRecord(
            token_id=row.token_id,
            user_name=row.user_name,
            digest=row.digest,
            scopes=tuple(row.scopes),
            created_at=_utc(row.created_at),
            expires_at=_utc(row.expires_at),
            revoked=bool(row.revoked),
        )

    def revoke_tokens_of(self, name: str) -> int:
        with self.engine.begin() as connection:
            return connection.execute(
                api_tokens.update()
                .where(api_tokens.c.user_name == name, api_tokens.c.revoked.is_(False))
                .values(revoked=True)
            ).rowcount
