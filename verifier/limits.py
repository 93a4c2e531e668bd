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
    # Enforced by killing the worker process that runs the verification.
    max_seconds: float = 10.0
    # Address-space cap of that worker process.
    max_worker_memory_bytes: int = 2 * 1024 * 1024 * 1024
    # False runs the steps in the calling process, without the hard deadline.
    isolate: bool = True
