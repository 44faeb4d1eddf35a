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

#: Below this many entries one process is faster than starting others.
PARALLEL_FROM = 200_000

_columns: tuple[Sequence[int], Sequence[bytes], Sequence[bytes]] | None = None


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
