"""The case store on the real PostgreSQL: the same checks as on memory and SQLite."""

from __future__ import annotations

from datetime import timedelta

import pytest
from tests.unit.cases.alerts_table import T0
from tests.unit.cases.test_case_book import check_case_book, check_cases_grow_across_batches

from custodes.core.clock import FixedClock
from custodes.storage.database import create_engine, upgrade
from custodes.storage.sql_cases import SqlCaseStore

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("check", [check_case_book, check_cases_grow_across_batches])
def test_case_book_on_postgresql(postgres_url: str, check) -> None:
    engine = create_engine(postgres_url)
    upgrade(engine)
    try:
        check(SqlCaseStore(engine), FixedClock(T0 + timedelta(hours=2)))
    finally:
        engine.dispose()
