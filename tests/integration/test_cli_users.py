"""``custodes users`` and ``custodes serve`` as an administrator runs them."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pyotp

from custodes.api.deps import SESSION_COOKIE

PASSWORD = "correct horse battery staple"
CHEAP = {
    "CUSTODES_ARGON2_TIME_COST": "1",
    "CUSTODES_ARGON2_MEMORY_KIB": "8",
    "CUSTODES_ARGON2_PARALLELISM": "1",
}


def _env(data_dir: Path) -> dict:
    env = {**os.environ, "CUSTODES_DATA_DIR": str(data_dir), **CHEAP}
    env.pop("CUSTODES_DATABASE_URL", None)
    return env


def custodes(*args: str, data_dir: Path, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "custodes", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=_env(data_dir),
        timeout=120,
    )


def test_users_add_enroll_lock_unlock_list(tmp_path: Path) -> None:
    added = custodes(
        "users",
        "add",
        "alice",
        "--role",
        "nurse",
        "--password-stdin",
        data_dir=tmp_path,
        stdin=PASSWORD + "\n",
    )
    assert added.returncode == 0, added.stderr
    enrolled = custodes("users", "totp-enroll", "alice", "--json", data_dir=tmp_path)
    body = json.loads(enrolled.stdout.strip().splitlines()[-1])
    assert body["otpauth_uri"].startswith("otpauth://totp/Custodes:alice?secret=" + body["secret"])
    assert len(body["recovery_codes"]) == 10
    assert custodes("users", "lock", "alice", data_dir=tmp_path).returncode == 0
    listed = custodes("users", "list", "--json", data_dir=tmp_path)
    assert json.loads(listed.stdout.strip().splitlines()[-1])[0] | {} == {
        "name": "alice",
        "role": "nurse",
        "kind": "person",
        "totp": True,
        "passkeys": 0,
        "locked": True,
        "failed_logins": 0,
    }
    assert custodes("users", "unlock", "alice", data_dir=tmp_path).returncode == 0
    assert custodes("users", "set-role", "alice", "him", data_dir=tmp_path).returncode == 0
    listed = custodes("users", "list", "--json", data_dir=tmp_path)
    assert json.loads(listed.stdout.strip().splitlines()[-1])[0]["locked"] is False
    assert json.loads(listed.stdout.strip().splitlines()[-1])[0]["role"] == "him"
    key = tmp_path / "identity.key"
    assert key.stat().st_mode & 0o777 == 0o600


def test_errors_are_one_line(tmp_path: Path) -> None:
    weak = custodes(
        "users",
        "add",
        "bob",
        "--role",
        "billing",
        "--password-stdin",
        data_dir=tmp_path,
        stdin="password1234\n",
    )
    assert weak.returncode == 1
    assert (
        weak.stderr.strip()
        == "error: this password is on the list of common passwords; choose another"
    )
    missing = custodes("users", "lock", "nobody", data_dir=tmp_path)
    assert missing.returncode == 1 and missing.stderr.strip() == "error: no account is named nobody"
    no_stdin = custodes("users", "add", "carol", "--role", "him", data_dir=tmp_path)
    assert no_stdin.returncode == 1 and "--password-stdin" in no_stdin.stderr


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_serve_and_login(tmp_path: Path) -> None:
    custodes(
        "users",
        "add",
        "alice",
        "--role",
        "clinician",
        "--password-stdin",
        data_dir=tmp_path,
        stdin=PASSWORD + "\n",
    )
    secret = json.loads(
        custodes("users", "totp-enroll", "alice", "--json", data_dir=tmp_path)
        .stdout.strip()
        .splitlines()[-1]
    )["secret"]
    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "custodes", "serve", "--port", str(port)],
        env=_env(tmp_path),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        for _ in range(200):
            try:
                httpx.get(base + "/auth/passkeys", timeout=0.5)
                break
            except httpx.TransportError:
                time.sleep(0.05)
        wrong = httpx.post(
            base + "/auth/login",
            json={"username": "alice", "password": "nope nope nope", "totp": "1"},
        )
        assert wrong.status_code == 401 and wrong.json() == {"detail": "invalid credentials"}
        right = httpx.post(
            base + "/auth/login",
            json={"username": "alice", "password": PASSWORD, "totp": pyotp.TOTP(secret).now()},
        )
        assert right.status_code == 200, right.text
        assert right.json()["token_type"] == "bearer"
        assert SESSION_COOKIE in right.headers["set-cookie"]
        me = httpx.get(
            base + "/auth/session",
            headers={"Authorization": f"Bearer {right.json()['access_token']}"},
        )
        assert me.json()["user"] == "alice"
    finally:
        server.terminate()
        server.wait(timeout=10)
