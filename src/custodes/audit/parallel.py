"""The chain check across processes: each span is checked against the stored hash of
the row before it, so spans are independent and the results combine by taking the
first bad position.

SHA-256 of a few hundred bytes does not release the GIL, so threads would not help;
processes forked after the columns are loaded share them copy-on-write, and nothing
is pickled but the span bounds and the answer.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor

from custodes.audit.chain import GENESIS, first_broken_link
from custodes.core.ports import AuditStore

#: Below this many entries one process is faster than starting others.
PARALLEL_FROM = 200_000

_columns: tuple[Sequence[int], Sequence[bytes], Sequence[bytes]] | None = None
_store: AuditStore | None = None


def _check_span(start: int, stop: int) -> int | None:
    assert _columns is not None
    positions, bodies, hashes = _columns
    previous = hashes[start - 1] if start else GENESIS
    if start and not isinstance(previous, bytes):
        return start - 1
    return first_broken_link(positions[start:stop], bodies[start:stop], hashes[start:stop],
                             start, previous)  # fmt: skip


def parallel_first_broken_link(
    positions: Sequence[int], bodies: Sequence[bytes], hashes: Sequence[bytes], workers: int = 2
) -> int | None:
    """``first_broken_link`` over ``workers`` forked processes (one when the log is small
    or ``fork`` is not available)."""
    global _columns
    n = len(hashes)
    if workers <= 1 or n < PARALLEL_FROM or "fork" not in multiprocessing.get_all_start_methods():
        return first_broken_link(positions, bodies, hashes)
    if not len(positions) == len(bodies) == n:
        raise ValueError("the columns differ in length")
    bounds = [(n * k // workers, n * (k + 1) // workers) for k in range(workers)]
    _columns = (positions, bodies, hashes)
    try:
        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork")) as pool:
            results = list(pool.map(_check_span, *zip(*bounds, strict=True)))
    finally:
        _columns = None
    bad = [r for r in results if r is not None]
    return min(bad) if bad else None


def _read_and_check_span(start: int, stop: int) -> tuple[int | None, bool, list[bytes]]:
    """Read one span (and the row before it) from the store, check it.

    Returns the first bad position in the span (None: none), whether that position is
    missing (rather than not matching), and the span's stored hashes.
    """
    assert _store is not None
    positions, bodies, hashes = _store.columns(max(start - 1, 0), stop)
    previous = GENESIS
    if start:
        if not positions or positions[0] != start - 1:
            return start - 1, True, []
        previous = hashes[0]
        positions, bodies, hashes = positions[1:], bodies[1:], hashes[1:]
        if not isinstance(previous, bytes):
            return start - 1, False, []
    bad = first_broken_link(positions, bodies, hashes, start, previous)
    if bad is None and len(hashes) < stop - start:
        bad = start + len(hashes)
    if bad is None:
        return None, False, hashes
    offset = bad - start
    missing = offset >= len(positions) or positions[offset] != bad
    return bad, missing, []


def check_store_in_spans(
    store: AuditStore, bound: int, workers: int
) -> tuple[int | None, bool, list[bytes]]:
    """Read and check positions ``[0, bound)`` of ``store`` in ``workers`` forked
    processes, each reading its own span: the database read, the larger half of the
    work, runs in parallel too.

    Returns the first bad position (None: none), whether it is missing, and every
    stored hash in position order when nothing is bad (for the checkpoint checks).
    """
    global _store
    bounds = [(bound * k // workers, bound * (k + 1) // workers) for k in range(workers)]
    _store = store
    try:
        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork")) as pool:
            results = list(pool.map(_read_and_check_span, *zip(*bounds, strict=True)))
    finally:
        _store = None
    bad = [(position, missing) for position, missing, _ in results if position is not None]
    if bad:
        position, missing = min(bad)
        return position, missing, []
    return None, False, [h for _, _, span in results for h in span]


def can_fork() -> bool:
    return "fork" in multiprocessing.get_all_start_methods()
