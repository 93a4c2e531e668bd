"""Issue a file of records on several cores.

Rendering and signing are CPU-bound and reportlab's font subsetting is not
thread-safe, so the work is spread over processes, not threads. Each worker
builds its own service context (keys parsed once per process) and issues a
shard of the lines; the register serialises the short insert transactions.
"""

from __future__ import annotations

import logging
import multiprocessing
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from common.errors import InputError
from elicense.issuing import FileSummary
from elicense.settings import Settings
from license_store.issuance import Rejection
from license_store.records import RecordLine, read_records

logger = logging.getLogger(__name__)

_worker_context: Any = None


@dataclass(frozen=True)
class _ShardResult:
    issued_count: int
    repeated_count: int
    rejected: list[Rejection]
    first_elicense_id: tuple[int, str] | None


def issue_file(
    settings: Settings,
    path: Path,
    *,
    out_dir: Path | None,
    operator: str,
    workers: int,
) -> FileSummary:
    """Issue every record of ``path`` with ``workers`` processes."""
    from elicense.context import ServiceContext

    if workers <= 1:
        return ServiceContext(settings).issue_file(path, out_dir=out_dir, operator=operator)

    started = time.monotonic()
    summary = FileSummary()
    good: list[tuple[int, dict[str, Any]]] = []
    for line in read_records(path):
        if line.raw is None:
            summary.rejected.append(_rejection(line))
        else:
            good.append((line.line_no, line.raw))
    shards = [good[index::workers] for index in range(workers)]
    spawn = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(
        workers,
        mp_context=spawn,
        initializer=_init_worker,
        initargs=(settings.model_dump(mode="json"),),
    ) as pool:
        results = list(pool.map(_issue_shard, shards, [out_dir] * workers, [operator] * workers))
    first: tuple[int, str] | None = None
    for result in results:
        summary.issued_count += result.issued_count
        summary.repeated_count += result.repeated_count
        summary.rejected.extend(result.rejected)
        if result.first_elicense_id and (first is None or result.first_elicense_id < first):
            first = result.first_elicense_id
    summary.rejected.sort(key=lambda rejection: rejection.line_no)
    if first is not None:
        summary.first_verify_url = ServiceContext(settings).issuing.verify_url_of(first[1])
    summary.elapsed_seconds = time.monotonic() - started
    logger.info(
        "parallel issue: %d issued, %d rejected, %d workers, %.1f s",
        summary.issued_count,
        len(summary.rejected),
        workers,
        summary.elapsed_seconds,
    )
    return summary


def _init_worker(settings_json: dict[str, Any]) -> None:
    global _worker_context
    from elicense.context import ServiceContext

    _worker_context = ServiceContext(Settings(**settings_json))


def _issue_shard(
    items: list[tuple[int, dict[str, Any]]], out_dir: Path | None, operator: str
) -> _ShardResult:
    lines = [RecordLine(line_no=line_no, raw=raw) for line_no, raw in items]
    result = _worker_context.issuing.issue_lines(lines, out_dir=out_dir, operator=operator)
    first = None
    if result.first_elicense_id is not None:
        rejected = {rejection.line_no for rejection in result.rejected}
        first = (_first_issued_line(items, rejected), result.first_elicense_id)
    return _ShardResult(
        issued_count=result.issued_count,
        repeated_count=result.repeated_count,
        rejected=result.rejected,
        first_elicense_id=first,
    )


def _first_issued_line(items: list[tuple[int, dict[str, Any]]], rejected: set[int]) -> int:
    # A shard issues its lines in order, so its first issued line is the
    # first one that was not rejected.
    return next(line_no for line_no, _raw in items if line_no not in rejected)


def _rejection(line: RecordLine) -> Rejection:
    error = line.error or InputError("空记录")
    value = error.as_dict().get("value") if error.field is not None else None
    return Rejection(line.line_no, error.field, value, str(error))
