"""Shared fixtures: real services for integration tests, sample data, fixtures folder.

Integration tests talk to the real PostgreSQL and NATS servers of this machine. Under
``CI=true`` a missing service fails the run; elsewhere the test skips and says how to
start the service.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

FIXTURES = Path(__file__).parent / "fixtures"
SYNTHEA_DIR = Path(__file__).resolve().parents[2] / "shared" / "data" / "synthea-r4"
#: Four of those bundles, shipped, so the vault's tests never depend on the folder above.
SYNTHEA_FIXTURES = FIXTURES / "synthea-r4"

POSTGRES_URL = os.environ.get(
    "CUSTODES_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
NATS_URL = os.environ.get("CUSTODES_TEST_NATS_URL", "nats://127.0.0.1:4222")

HOW_TO_START = {
    "PostgreSQL": "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start",
    "NATS": "start-stop-daemon --start --oknodo --background --exec /usr/sbin/nats-server "
    "-- -a 127.0.0.1 -p 4222 -js -sd /var/lib/nats-server",
}


def _reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1.0):
            return True
    except OSError:
        return False


def require_service(name: str, host: str, port: int) -> None:
    """Fail under CI, skip elsewhere, when a real service does not answer."""
    if _reachable(host, port):
        return
    message = f"{name} is not running on {host}:{port}; start it with: {HOW_TO_START[name]}"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message)
    pytest.skip(message)


def _host_port(url: str, default_port: int) -> tuple[str, int]:
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    return parts.hostname or "127.0.0.1", parts.port or default_port


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh, empty schema in the real PostgreSQL ``test`` database."""
    require_service("PostgreSQL", *_host_port(POSTGRES_URL, 5432))
    import sqlalchemy as sa

    schema = f"t_{uuid.uuid4().hex[:12]}"
    engine = sa.create_engine(POSTGRES_URL)
    with engine.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield f"{POSTGRES_URL}?options=-csearch_path%3D{schema}"
    finally:
        with engine.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        engine.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.integration)])
def engine(request, tmp_path: Path):
    """A migrated store: embedded SQLite, and the real PostgreSQL (an integration test)."""
    from custodes.storage.database import create_engine, upgrade

    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'custodes.db'}"
    else:
        url = request.getfixturevalue("postgres_url")
    engine = create_engine(url)
    upgrade(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def nats_url() -> str:
    require_service("NATS", *_host_port(NATS_URL, 4222))
    return NATS_URL


@pytest.fixture
def synthea_dir() -> Path:
    if not SYNTHEA_DIR.is_dir():
        pytest.skip(f"the Synthea sample is not at {SYNTHEA_DIR}")
    return SYNTHEA_DIR


@pytest.fixture
def synthea_bundles() -> list[Path]:
    """Four shipped Synthea transaction Bundles (gzip JSON)."""
    return sorted(SYNTHEA_FIXTURES.glob("*.json.gz"))
