"""A front door on in-memory stores, a fixed clock and cheap Argon2 parameters.

The Argon2 cost is configuration; the tests use the smallest so a thousand sign-ins
take seconds. The benchmark measures the real defaults.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from custodes.core.clock import FixedClock
from custodes.identity.passwords import Argon2Parameters
from custodes.identity.sealing import SecretSealer
from custodes.identity.service import IdentityConfig, IdentityService
from custodes.identity.totp import Totp
from custodes.storage.memory import MemoryIdentityStore, MemorySignInRecorder

CHEAP_ARGON2 = Argon2Parameters(time_cost=1, memory_cost_kib=8, parallelism=1)
PASSWORD = "correct horse battery staple"
START = datetime(2026, 3, 9, 9, 0, 7, tzinfo=UTC)


class FrontDoor:
    """The service with its store, recorder and clock, and a helper for the right code."""

    def __init__(self, **config) -> None:
        self.clock = FixedClock(START)
        self.store = MemoryIdentityStore()
        self.recorder = MemorySignInRecorder()
        self.service = IdentityService(
            self.store,
            SecretSealer(b"k" * 32),
            self.clock,
            self.recorder,
            IdentityConfig(argon2=config.pop("argon2", CHEAP_ARGON2), **config),
        )
        self.secrets: dict[str, str] = {}
        self.recovery: dict[str, tuple[str, ...]] = {}

    def person(self, name: str = "alice", role: str = "nurse") -> str:
        self.service.add_user(name, role, PASSWORD)
        enrolment = self.service.enroll_totp(name)
        self.secrets[name] = enrolment.secret
        self.recovery[name] = enrolment.recovery.codes
        return name

    def code(self, name: str = "alice", steps_ahead: int = 0) -> str:
        return Totp(self.secrets[name]).code_at(
            self.clock.now() + timedelta(seconds=30 * steps_ahead)
        )

    def next_step(self) -> None:
        """Move to the next 30-second step, so a fresh code exists."""
        self.clock.advance(seconds=30)

    def kinds(self) -> list[tuple[str, str]]:
        return [(str(e.kind), str(e.outcome)) for e in self.recorder.events]


@pytest.fixture
def door() -> FrontDoor:
    return FrontDoor()


def app_client(tmp_path, door: FrontDoor):
    """A TestClient over ``create_app`` whose identity service is ``door``'s."""
    from fastapi.testclient import TestClient

    from custodes.api.app import create_app
    from custodes.bootstrap import Custodes, Settings

    custodes = Custodes(Settings(data_dir=tmp_path / "data"), clock=door.clock)
    custodes.identity = door.service  # the cached property, given in advance
    return TestClient(create_app(custodes), base_url="https://testserver")
