"""Limits that bound the work spent on one untrusted document."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class VerificationLimits:
    """Upper bounds for one verification; a document over any of them fails.

    A license has one or two revisions at B-LT and three at B-LTA, so
    ``max_revisions`` leaves room for archive timestamps added over decades.
    """

    max_bytes: int = 10 * 1024 * 1024
    max_revisions: int = 32
    max_objects: int = 20_000
    # With ``isolate`` the worker process is killed at this deadline. Without
    # it the clock is checked between steps, which cannot stop a step that
    # never returns.
    max_seconds: float = 10.0
    # Address-space cap of the worker process.
    max_worker_memory_bytes: int = 2 * 1024 * 1024 * 1024
    # NOTE: off by default because a worker per document costs far more than
    # the verification itself; the HTTP upload endpoint always turns it on,
    # the CLI and fsck turn it on with ELICENSE_VERIFY_IN_WORKER=true.
    isolate: bool = False
