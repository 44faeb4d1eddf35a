"""API tokens for services and scripts: scoped, expiring, stored as keyed digests.

A token reads ``cst_<id>_<secret>``: the id finds the record, the secret is checked
against its keyed digest in constant time. The full token is shown once, at creation.

>>> parse_token("cst_abcd1234_s3cr3t")
('abcd1234', 's3cr3t')
>>> parse_token("not a token") is None
True
"""

from __future__ import annotations

import hmac
import secrets
from datetime import timedelta

from custodes.core.accounts import ApiTokenRecord
from custodes.core.clock import Clock
from custodes.core.ports import IdentityStore
from custodes.identity.errors import NotAuthenticated
from custodes.identity.sealing import SecretSealer

PREFIX = "cst_"

#: What a token may be allowed to do. Routes name the scope they need.
#: ``fhir`` opens the record vault's FHIR API (what the caller's role may do there, no more).
SCOPES = frozenset({"events:write", "events:read", "alerts:read", "reports:read", "admin", "fhir"})


def parse_token(token: str) -> tuple[str, str] | None:
    if not token.startswith(PREFIX):
        return None
    parts = token[len(PREFIX) :].split("_", 1)
    if len(parts) != 2 or not all(parts):
        return None
    return parts[0], parts[1]


class ApiTokens:
    def __init__(self, store: IdentityStore, sealer: SecretSealer, clock: Clock) -> None:
        self.store = store
        self.sealer = sealer
        self.clock = clock

    def issue(self, user_name: str, scopes: tuple[str, ...], lifetime: timedelta) -> str:
        unknown = set(scopes) - SCOPES
        if unknown:
            raise ValueError(f"unknown scopes {sorted(unknown)}; known: {sorted(SCOPES)}")
        token_id = secrets.token_hex(8)
        secret = secrets.token_urlsafe(32)
        now = self.clock.now()
        self.store.put_token(
            ApiTokenRecord(
                token_id=token_id,
                user_name=user_name,
                digest=self.sealer.digest("token:" + secret),
                scopes=tuple(sorted(scopes)),
                created_at=now,
                expires_at=now + lifetime,
            )
        )
        return f"{PREFIX}{token_id}_{secret}"

    def check(self, token: str, scope: str | None = None) -> ApiTokenRecord:
        parsed = parse_token(token)
        record = self.store.get_token(parsed[0]) if parsed else None
        expected = record.digest if record else self.sealer.digest("token:")
        given = self.sealer.digest("token:" + (parsed[1] if parsed else ""))
        if (
            record is None
            or not hmac.compare_digest(expected, given)
            or record.revoked
            or (record.expires_at is not None and self.clock.now() >= record.expires_at)
        ):
            raise NotAuthenticated("the API token is not valid")
        if scope is not None and scope not in record.scopes:
            raise NotAuthenticated(f"the API token lacks the {scope} scope")
        return record
