"""The case store on the real PostgreSQL: the same checks as on memory and SQLite."""

from __future__ import annotations

import pytest
from tests.unit.cases.alerts_table import T0
from tests.unit.cases.test_case_book import check_case_book

from custodes.core.clock import FixedClock
from custodes.storage.database import create_engine, upgrade
from custodes.storage.sql_cases import SqlCaseStore

pytestmark = pytest.mark.integration


def test_case_book_on_postgresql(postgres_url: str) -> None:
    from datetime import timedelta

    engine = create_engine(postgres_url)
    upgrade(engine)
    try:
        check_case_book(SqlCaseStore(engine), FixedClock(T0 + timedelta(hours=2)))
    finally:
        engine.dispose()
