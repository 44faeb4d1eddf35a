"""Engines and migrations for the relational store (SQLite embedded, PostgreSQL)."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import OperationalError

from custodes.core.errors import ConfigurationError, ServiceUnavailableError

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def redacted(url: str) -> str:
    """The URL without its password, for messages.

    >>> redacted("postgresql+psycopg://app:s3cret@db:5432/custodes")
    'postgresql+psycopg://app:***@db:5432/custodes'
    """
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # a URL too broken to parse is shown only by its scheme
        return url.split(":", 1)[0] + "://…"


def create_engine(url: str) -> Engine:
    """An engine for ``url``; SQLite gets foreign keys and WAL for concurrent readers."""
    try:
        parsed = make_url(url)
    except sa.exc.ArgumentError as err:
        raise ConfigurationError(f"database URL {redacted(url)} is not valid") from err
    if parsed.drivername == "postgresql":  # the driver Custodes ships, not psycopg2
        url = parsed.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)
    # A pool as wide as the API's thread pool is busy: connections beyond the pool are
    # opened and closed per use, and each new SQLite connection repeats the pragmas.
    engine = sa.create_engine(url, future=True, pool_size=10, max_overflow=30)
    if engine.dialect.name == "sqlite":

        @sa.event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection, _record) -> None:  # pragma: no cover - trivial
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()

    return engine


def reader(engine: Engine) -> Engine:
    """The engine for single statements: on PostgreSQL autocommit, so a lookup is one
    round trip rather than BEGIN, SELECT and ROLLBACK (same pool). SQLite keeps its
    default: switching its connections to autocommit and back costs more than it saves."""
    if engine.dialect.name == "postgresql":
        return engine.execution_options(isolation_level="AUTOCOMMIT")
    return engine


def _alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return config


def upgrade(engine: Engine, revision: str = "head") -> str:
    """Bring the schema up to ``revision``; return the revision the database is at."""
    config = _alembic_config()
    try:
        with engine.begin() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, revision)
    except OperationalError as err:
        raise ServiceUnavailableError(
            f"cannot reach the database at {redacted(str(engine.url.render_as_string(hide_password=False)))}: "
            f"{str(err.orig).splitlines()[0] if err.orig else err}"
        ) from err
    return current_revision(engine) or "base"


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def head_revision() -> str | None:
    return ScriptDirectory.from_config(_alembic_config()).get_current_head()


def ensure_schema(engine: Engine) -> None:
    """Upgrade when the database is behind; cheap when it is current."""
    try:
        if current_revision(engine) == head_revision():
            return
    except OperationalError as err:
        raise ServiceUnavailableError(
            f"cannot reach the database at {redacted(engine.url.render_as_string(hide_password=False))}"
        ) from err
    upgrade(engine)
