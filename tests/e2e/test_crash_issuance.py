"""SIGKILL during a batch of ~200 issues, then rerun: nothing half-issued or lost.

``elicense issue`` runs in a subprocess and is killed at random points
(the seed is printed on failure), then the same file is issued again until
it completes. The idempotency keys derived from each record make the reruns
safe. ``elicense fsck --delete-orphans`` must then report only orphan PDFs
of the killed runs, every license must be complete, and every stored PDF
must verify.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import random
import re
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.e2e.conftest import PUBLIC_URL, REPO, SAMPLE, run_cli

pytestmark = pytest.mark.slow

KILLS = 3
SEED = int(os.environ.get("ELICENSE_CRASH_SEED", time.time_ns() % 1_000_000))


def _start_issue(data_dir: Path, batch: Path) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ELICENSE_")}
    env["ELICENSE_PUBLIC_URL"] = PUBLIC_URL
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "elicense.cli",
            "issue",
            "--data-dir",
            str(data_dir),
            str(batch),
        ],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _kill_at(
    process: subprocess.Popen, data_dir: Path, target: int, jitter: float
) -> None:
    """Kill the process once ``target`` licenses exist, ``jitter`` seconds later.

    The jitter, shorter than one issue, lets the kill land at any step of
    the next issue: rendering, signing, writing the PDF or committing.
    """
    deadline = time.monotonic() + 120
    while process.poll() is None and time.monotonic() < deadline:
        if _license_count(data_dir) >= target:
            time.sleep(jitter)
            break
        time.sleep(0.02)
    if process.poll() is None:
        os.kill(process.pid, signal.SIGKILL)
    process.wait(timeout=30)


def test_killed_batch_resumes_cleanly(tmp_path: Path) -> None:
    rng = random.Random(SEED)
    data_dir = tmp_path / "data"
    batch, records = _issuable_batch(tmp_path)
    run_cli("init", data_dir=data_dir)
    targets = sorted(rng.randint(10, 180) for _ in range(KILLS))
    for target in targets:
        _kill_at(_start_issue(data_dir, batch), data_dir, target, rng.uniform(0.0, 0.3))
    issued_before = _license_count(data_dir)

    final = run_cli("issue", str(batch), data_dir=data_dir)
    fsck = run_cli(
        "fsck",
        "--delete-orphans",
        "--orphan-min-age",
        "0",
        data_dir=data_dir,
        check=False,
    )
    again = run_cli("fsck", "--skip-pdf-verify", data_dir=data_dir, check=False)
    log_check = run_cli("log", "verify", data_dir=data_dir, check=False)

    note = f"seed {SEED}, {issued_before} issued before the final run"
    assert issued_before < len(records), note
    issued, repeated = (int(n) for n in re.findall(r"(\d+) 张", final.stdout)[:2])
    assert "拒绝 0 条" in final.stdout, note
    assert issued + repeated == len(records), note
    assert fsck.returncode == 0, f"{note}\n{fsck.stdout}\n{fsck.stderr}"
    assert f"核对版本 {len(records)} 个" in fsck.stdout, note
    assert "不符 0 处" in fsck.stdout, note
    assert "孤立 PDF 0 份" in again.stdout, f"{note}\n{again.stdout}"
    assert log_check.returncode == 0, f"{note}\n{log_check.stderr}"
    _assert_each_record_once(data_dir, records, note)


def _license_count(data_dir: Path) -> int:
    connection = sqlite3.connect(data_dir / "elicense.db", timeout=30)
    try:
        return connection.execute("SELECT COUNT(*) FROM licenses").fetchone()[0]
    finally:
        connection.close()


def _issuable_batch(tmp_path: Path) -> tuple[Path, list[dict]]:
    """Write the sample records dated today or earlier; later ones cannot issue."""
    today = dt.date.today().isoformat()
    lines = SAMPLE.read_text(encoding="utf-8").splitlines()
    records = [r for r in map(json.loads, lines) if r["issued_on"] <= today]
    batch = tmp_path / "batch.jsonl"
    batch.write_text(
        "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records),
        encoding="utf-8",
    )
    return batch, records


def _assert_each_record_once(data_dir: Path, records: list[dict], note: str) -> None:
    from elicense.context import ServiceContext
    from elicense.settings import Settings

    context = ServiceContext(Settings(data_dir=data_dir, public_url=PUBLIC_URL))
    for number, record in enumerate(records, start=1):
        found = context.repository.licenses_by_holder_code(record["uscc"]).items
        of_type = [r for r in found if r.license_type == record["license_type"]]
        assert len(of_type) == 1, f"{note}: holder of record {number}"
        assert of_type[0].current_version == 1, note
    context.engine.dispose()
