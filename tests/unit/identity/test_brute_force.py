"""A thousand wrong passwords at once: the account locks, every failure counts, and the
right password never opens a session without the second factor, nor once locked."""

from __future__ import annotations

import asyncio

import httpx
from fastapi.testclient import TestClient

from custodes.api.app import create_app
from custodes.bootstrap import Custodes, Settings

from .conftest import PASSWORD, FrontDoor

ATTEMPTS = 1000
RIGHT_PASSWORD_ALONE = 50


def test_thousand_parallel_wrong_passwords_lock_the_account(tmp_path):
    door = FrontDoor(lock_threshold=10)
    door.person()
    custodes = Custodes(Settings(data_dir=tmp_path / "data"), clock=door.clock)
    custodes.identity = door.service
    app = create_app(custodes)

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

    responses = asyncio.run(attack())
    assert [r.status_code for r in responses] == [401] * (ATTEMPTS + RIGHT_PASSWORD_ALONE)
    assert {r.json()["detail"] for r in responses} == {"invalid credentials"}
    assert all("set-cookie" not in r.headers for r in responses)

    user = door.store.get_user("alice")
    assert user.locked_at(door.clock.now())
    assert user.failed_logins == ATTEMPTS + RIGHT_PASSWORD_ALONE  # none lost to a race
    assert door.kinds().count(("lockout", "success")) == 1
    assert door.store.sessions == {}

    # Locked: even the right password and code, from a fresh address, are refused.
    door.next_step()
    with TestClient(app, base_url="https://testserver") as client:
        right = {"username": "alice", "password": PASSWORD, "totp": door.code()}
        assert client.post("/auth/login", json=right).status_code == 401
        door.service.unlock("alice")
        door.service.backoff.clear("ip:testclient")
        door.next_step()
        right["totp"] = door.code()
        assert client.post("/auth/login", json=right).status_code == 200
