"""Identity speed: login through the real route, TOTP verification, session check.

1. Login: ``POST /auth/login`` through the FastAPI app (in-process ASGI client, the
   real route, the real SQLite identity store and sign-in event store of a fresh data
   directory), with the **default Argon2id parameters** (t=3, m=64 MiB, p=4) and a
   correct password and TOTP code. The clock is a fixed clock moved 30 s per login, so
   every login has a fresh code (the replay guard accepts each once).
2. TOTP verification: ``Totp.matching_step`` over the ±1 step window (three HMAC-SHA1
   codes compared in constant time), and the whole second-factor check of the service
   (open the sealed secret, match, claim the step in the in-memory store).
3. Session check: ``SessionManager.check`` on a live session in the in-memory store
   (keyed digest of the id, lookup, idle and absolute timeouts).

Each figure is the median of ``--rounds`` rounds; a round's figure is the median of its
samples. Run: ``.venv/bin/python benchmarks/identity_speed.py [--out-json FILE]``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from fastapi.testclient import TestClient

from custodes.api.app import create_app
from custodes.bootstrap import Custodes, Settings
from custodes.core.accounts import Role, UserAccount
from custodes.core.clock import FixedClock
from custodes.identity.sealing import SecretSealer
from custodes.identity.service import IdentityService
from custodes.identity.totp import Totp, step_of
from custodes.storage.memory import MemoryIdentityStore

PASSWORD = "correct horse battery staple"


def _median_of_rounds(rounds: list[list[float]]) -> tuple[float, float, float]:
    medians = [statistics.median(r) for r in rounds]
    return statistics.median(medians), min(medians), max(medians)


def login_times(logins: int, rounds: int) -> list[list[float]]:
    clock = FixedClock(datetime(2026, 3, 9, 9, tzinfo=UTC))
    with tempfile.TemporaryDirectory() as tmp:
        custodes = Custodes(Settings(data_dir=Path(tmp), database_url=None), clock=clock)
        service = custodes.identity
        assert service.config.argon2.memory_cost_kib == 65536, "default parameters expected"
        service.add_user("alice", "clinician", PASSWORD)
        secret = service.enroll_totp("alice").secret
        out = []
        with TestClient(create_app(custodes), base_url="https://testserver") as client:
            for _ in range(rounds):
                samples = []
                for _ in range(logins):
                    clock.advance(seconds=30)
                    body = {
                        "username": "alice",
                        "password": PASSWORD,
                        "totp": Totp(secret).code_at(clock.now()),
                    }
                    start = time.perf_counter()
                    response = client.post("/auth/login", json=body)
                    samples.append(time.perf_counter() - start)
                    assert response.status_code == 200, response.text
                out.append(samples)
        return out


def totp_times(samples: int, rounds: int) -> tuple[list[list[float]], list[list[float]]]:
    clock = FixedClock(datetime(2026, 3, 9, 9, tzinfo=UTC))
    service = IdentityService(MemoryIdentityStore(), SecretSealer(os.urandom(32)), clock)
    service.store.add_user(UserAccount("alice", Role.NURSE))
    secret = service.enroll_totp("alice").secret
    totp = Totp(secret)
    pure, whole = [], []
    for _ in range(rounds):
        a, b = [], []
        for _ in range(samples):
            clock.advance(seconds=30)
            code = totp.code_at(clock.now())
            start = time.perf_counter()
            step = totp.matching_step(code, at_step=step_of(clock.now()))
            a.append(time.perf_counter() - start)
            assert step is not None
            user = service.store.get_user("alice")
            start = time.perf_counter()
            method = service._second_factor(user, code, clock.now())
            b.append(time.perf_counter() - start)
            assert method == "totp"
        pure.append(a)
        whole.append(b)
    return pure, whole


def session_times(samples: int, rounds: int) -> list[list[float]]:
    clock = FixedClock(datetime(2026, 3, 9, 9, tzinfo=UTC))
    service = IdentityService(MemoryIdentityStore(), SecretSealer(os.urandom(32)), clock)
    issued = service.sessions.start("alice", mfa_method="totp")
    out = []
    for _ in range(rounds):
        batch = []
        for _ in range(samples):
            start = time.perf_counter()
            service.sessions.check(issued.session_id)
            batch.append(time.perf_counter() - start)
        out.append(batch)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--logins", type=int, default=40, help="logins per round")
    parser.add_argument("--samples", type=int, default=20000, help="TOTP/session samples per round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--out-json", type=Path)
    args = parser.parse_args()

    login = _median_of_rounds(login_times(args.logins, args.rounds))
    pure, whole = totp_times(args.samples // 10, args.rounds)
    totp_pure, totp_whole = _median_of_rounds(pure), _median_of_rounds(whole)
    session = _median_of_rounds(session_times(args.samples, args.rounds))
    result = {
        "login_p50_ms": round(login[0] * 1e3, 1),
        "login_p50_range_ms": [round(login[1] * 1e3, 1), round(login[2] * 1e3, 1)],
        "totp_verify_us": round(totp_pure[0] * 1e6, 1),
        "totp_second_factor_us": round(totp_whole[0] * 1e6, 1),
        "session_check_us": round(session[0] * 1e6, 2),
        "rounds": args.rounds,
        "logins_per_round": args.logins,
        "machine": f"{platform.machine()} {os.cpu_count()} cores, Python {sys.version.split()[0]}",
    }
    print(json.dumps(result, indent=2))
    print(
        f"login p50 {result['login_p50_ms']} ms (target <= 250); "
        f"TOTP verify {result['totp_verify_us']} us, whole second factor "
        f"{result['totp_second_factor_us']} us (target <= 1000); "
        f"session check {result['session_check_us']} us (target <= 200)"
    )
    if args.out_json:
        args.out_json.parent.mkdir(parents=True, exist_ok=True)
        args.out_json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
