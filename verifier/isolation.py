"""Run one verification in a worker process under a hard deadline.

NOTE: pyhanko parses and validates in pure Python with no way to interrupt
it, and a crafted file (deep object nesting, huge streams, cyclic
references) can keep it busy far longer than the time budget. Checking the
clock between steps cannot stop a step that never returns. So the whole
verification runs in a child process that is killed when the deadline
passes. The child's address space is capped, so a decompression bomb ends
in MemoryError instead of exhausting the host.

Workers come from a forkserver that has imported pyhanko once, so a
worker starts in milliseconds. A worker forked from the service itself
would inherit its SQLite connections, and SQLite forbids using or closing
those in a child: a child that closed one removed the WAL files of the
parent's register ("disk I/O error"). Forking from a threaded server can
also leave a lock held in the child. The forkserver is a clean,
single-threaded process, so the verifier and its arguments are pickled to
the worker instead.
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
_CONTEXT = multiprocessing.get_context("forkserver")
_CONTEXT.set_forkserver_preload(["verifier.pdf_check"])
# Extra seconds to let a finished child hand its result over before killing it.
HANDOVER_SECONDS = 2.0


class WorkerFailed(Exception):
    """The worker exited without a result (crash, memory cap, killed)."""


@dataclass(frozen=True)
class Finished(Generic[T]):
    """A result the worker returned before the deadline."""

    value: T


def call_with_deadline(
    function: Callable[..., T],
    arguments: tuple[object, ...],
    seconds: float,
    max_memory_bytes: int,
) -> Finished[T] | None:
    """Return ``Finished(function(*arguments))`` or None when ``seconds`` ran out.

    ``function`` and ``arguments`` must pickle: a module-level function or a
    bound method of a picklable object. Raises WorkerFailed when the worker
    died without a result; an exception in the worker also ends as
    WorkerFailed.
    """
    receiver, sender = _CONTEXT.Pipe(duplex=False)
    worker = _CONTEXT.Process(
        target=_run_child,
        args=(function, arguments, sender, max_memory_bytes),
        daemon=True,
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
    function: Callable[..., object],
    arguments: tuple[object, ...],
    sender: Connection,
    max_memory_bytes: int,
) -> None:
    resource.setrlimit(resource.RLIMIT_AS, (max_memory_bytes, max_memory_bytes))
    try:
        result: tuple[str, object] = ("ok", function(*arguments))
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
