"""A thousand wrong passwords at once: the account locks, every failure counts, and the
right password never opens a session without the second factor, nor once locked.

Run on the in-memory store, and through the real wiring on SQLite (the embedded
default) and PostgreSQL, where the counting is done by the database.
"""

from __future__ import annotations

import asyncio

import httpx
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from custodes.api.app import create_app
from custodes.bootstrap import Custodes, Settings
from custodes.core.accounts import UserAccount

from .conftest import CHEAP_ARGON2, PASSWORD, FrontDoor

ATTEMPTS = 1000
RIGHT_PASSWORD_ALONE = 50


def _attack(app) -> list[httpx.Response]:
    async def attack() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=app, client=("203.0.113.7", 40000))
        async with httpx.AsyncClient(transport=transport, base_url="https://testserver") as client:
            bodies = [
                {"username": "alice", "password": f"guess number {i:04d} xyz", "totp": None}
                for i in range(ATTEMPTS)
            ]
            # The right password, mixed in, without the second factor.
            for i in range(RIGHT_PASSWORD_ALONE):
                bodies.insert(i * 20, {"username": "alice", "password": PASSWORD})
            return await asyncio.gather(*(client.post("/auth/login", json=b) for b in bodies))

    return asyncio.run(attack())


def _assert_refused_and_locked(responses: list[httpx.Response], user: UserAccount, now) -> None:
    assert [r.status_code for r in responses] == [401] * (ATTEMPTS + RIGHT_PASSWORD_ALONE)
    assert {r.json()["detail"] for r in responses} == {"invalid credentials"}
    assert all("set-cookie" not in r.headers for r in responses)
    assert user.locked_at(now)
    assert user.failed_logins == ATTEMPTS + RIGHT_PASSWORD_ALONE  # none lost to a race


def _assert_locked_until_unlocked(app, door: FrontDoor) -> None:
    """Locked: even the right password and code, from a fresh address, are refused."""
    door.next_step()
    with TestClient(app, base_url="https://testserver") as client:
        right = {"username": "alice", "password": PASSWORD, "totp": door.code()}
        assert client.post("/auth/login", json=right).status_code == 401
        door.service.unlock("alice")
        door.service.backoff.clear("ip:testclient")
        door.next_step()
        right["totp"] = door.code()
        assert client.post("/auth/login", json=right).status_code == 200


def test_thousand_parallel_wrong_passwords_lock_the_account(tmp_path):
    door = FrontDoor(lock_threshold=10)
    door.person()
    custodes = Custodes(Settings(data_dir=tmp_path / "data"), clock=door.clock)
    custodes.identity = door.service
    app = create_app(custodes)

    responses = _attack(app)
    _assert_refused_and_locked(responses, door.store.get_user("alice"), door.clock.now())
    assert door.kinds().count(("lockout", "success")) == 1
    assert door.store.sessions == {}
    _assert_locked_until_unlocked(app, door)


@pytest.mark.parametrize(
    "database", ["sqlite", pytest.param("postgresql", marks=pytest.mark.integration)]
)
def test_thousand_parallel_wrong_passwords_on_the_real_stores(tmp_path, request, database):
    door = FrontDoor()
    url = None if database == "sqlite" else request.getfixturevalue("postgres_url")
    settings = Settings(
        data_dir=tmp_path / "data",
        database_url=url,
        argon2_time_cost=CHEAP_ARGON2.time_cost,
        argon2_memory_kib=CHEAP_ARGON2.memory_cost_kib,
        argon2_parallelism=CHEAP_ARGON2.parallelism,
    )
    custodes = Custodes(settings, clock=door.clock)
    door.service = custodes.identity  # the wired service: SQL store, events to the database
    door.person()
    app = create_app(custodes)

    responses = _attack(app)
    _assert_refused_and_locked(responses, door.service.store.get_user("alice"), door.clock.now())
    with custodes.engine.connect() as connection:
        events = connection.execute(
            sa.text("SELECT kind, outcome, count(*) FROM signin_events GROUP BY kind, outcome")
        ).fetchall()
    counts = {(kind, outcome): n for kind, outcome, n in events}
    assert counts.pop(("login", "minor_failure")) == ATTEMPTS + RIGHT_PASSWORD_ALONE
    assert counts.pop(("lockout", "success")) == 1
    # Right passwords that came before the lock and the backoff met the missing code.
    assert set(counts) <= {("mfa", "minor_failure")}
    _assert_locked_until_unlocked(app, door)
    custodes.engine.dispose()
