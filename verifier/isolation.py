"""Run one verification in a forked worker process under a hard deadline.

NOTE: pyhanko parses and validates in pure Python with no way to interrupt
it, and a crafted file (deep object nesting, huge streams, cyclic
references) can keep it busy far longer than the time budget. Checking the
clock between steps cannot stop a step that never returns. So the whole
verification runs in a child process that is killed when the deadline
passes. The child's address space is capped, so a decompression bomb ends
in MemoryError instead of exhausting the host.

The child is forked, so it inherits the loaded modules and the trust list
without pickling them. It must not use the register's database
connections, so the caller looks register facts up before the fork.
Forking a process that runs other threads (the web server's thread pool)
can leave a lock held in the child; such a child hangs and is killed at
the deadline like any other.
"""

from __future__ import annotations

import logging
import multiprocessing
import resource
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Callable, Generic, TypeVar

logger = logging.getLogger(__name__)

T = TypeVar("T")
# Extra seconds to let a finished child hand its result over before killing it.
HANDOVER_SECONDS = 2.0


class WorkerFailed(Exception):
    """The worker exited without a result (crash, memory cap, killed)."""


@dataclass(frozen=True)
class Finished(Generic[T]):
    """A result the worker returned before the deadline."""

    value: T


def call_with_deadline(
    function: Callable[[], T], seconds: float, max_memory_bytes: int
) -> Finished[T] | None:
    """Return ``Finished(function())`` or None when ``seconds`` ran out.

    Raises WorkerFailed when the worker died without a result, and re-raises
    nothing from the worker: an exception there also ends as WorkerFailed.
    """
    context = multiprocessing.get_context("fork")
    receiver, sender = context.Pipe(duplex=False)
    worker = context.Process(
        target=_run_child, args=(function, sender, max_memory_bytes), daemon=True
    )
    worker.start()
    sender.close()
    try:
        if not receiver.poll(seconds):
            logger.warning(
                "verification worker pid=%s exceeded %.1f s, killed",
                worker.pid,
                seconds,
            )
            return None
        try:
            kind, payload = receiver.recv()
        except EOFError:
            raise WorkerFailed(f"exit code {worker.exitcode}") from None
    finally:
        _stop(worker)
        receiver.close()
    if kind != "ok":
        raise WorkerFailed(payload)
    return Finished(payload)


def _run_child(
    function: Callable[[], object], sender: Connection, max_memory_bytes: int
) -> None:
    resource.setrlimit(resource.RLIMIT_AS, (max_memory_bytes, max_memory_bytes))
    try:
        result: tuple[str, object] = ("ok", function())
    except BaseException as error:  # noqa: BLE001 - reported to the parent
        result = ("error", f"{type(error).__name__}: {error}"[:500])
    try:
        sender.send(result)
    except (MemoryError, OSError):
        pass
    sender.close()


def _stop(worker: multiprocessing.process.BaseProcess) -> None:
    worker.join(HANDOVER_SECONDS)
    if worker.is_alive():
        worker.kill()
        worker.join()
