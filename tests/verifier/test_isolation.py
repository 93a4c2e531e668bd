"""The worker process that runs a verification under a hard deadline."""

from __future__ import annotations

import os
import time

import pytest

from verifier.isolation import WorkerFailed, call_with_deadline

MEMORY = 1024 * 1024 * 1024


def _answer() -> dict[str, int]:
    return {"answer": 42}


def _sleep_forever() -> None:
    time.sleep(60)


def _crash() -> None:
    os._exit(3)


def _raise() -> None:
    raise RecursionError("deep nesting")


def _allocate() -> bytes:
    return b"x" * (4 * MEMORY)


def test_result_comes_back():
    finished = call_with_deadline(_answer, (), 5, MEMORY)
    assert finished is not None
    assert finished.value == {"answer": 42}


def test_deadline_kills_worker():
    started = time.monotonic()
    assert call_with_deadline(_sleep_forever, (), 0.5, MEMORY) is None
    assert time.monotonic() - started < 5


def test_crashed_worker_reported():
    with pytest.raises(WorkerFailed):
        call_with_deadline(_crash, (), 5, MEMORY)


def test_exception_in_worker_reported():
    with pytest.raises(WorkerFailed, match="RecursionError"):
        call_with_deadline(_raise, (), 5, MEMORY)


def test_memory_cap_stops_allocation():
    with pytest.raises(WorkerFailed, match="MemoryError"):
        call_with_deadline(_allocate, (), 10, MEMORY)
