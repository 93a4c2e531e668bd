"""A row edited directly in the database is found by ``elicense log verify``."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from tests.e2e.conftest import SAMPLE, run_cli


def _issue_three(data_dir: Path, tmp_path: Path) -> None:
    records = SAMPLE.read_text(encoding="utf-8").splitlines()[:3]
    source = tmp_path / "three.jsonl"
    source.write_text("\n".join(records) + "\n", encoding="utf-8")
    run_cli("init", data_dir=data_dir)
    run_cli("issue", str(source), data_dir=data_dir)
    run_cli("log", "checkpoint", data_dir=data_dir)


def test_edited_event_named(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    _issue_three(data_dir, tmp_path)
    clean = run_cli("log", "verify", data_dir=data_dir)
    with sqlite3.connect(data_dir / "elicense.db") as connection:
        connection.execute("DROP TRIGGER license_events_reject_update")
        connection.execute(
            "UPDATE license_events SET reason = '事后补写' WHERE log_index = 1"
        )

    tampered = run_cli("log", "verify", data_dir=data_dir, check=False)

    assert "事件日志完整" in clean.stdout
    assert tampered.returncode == 1
    assert "第一处不符：第 1 条" in tampered.stderr


def test_status_edited_directly_found(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    _issue_three(data_dir, tmp_path)
    with sqlite3.connect(data_dir / "elicense.db") as connection:
        connection.execute("UPDATE licenses SET status = '07' WHERE id = 2")

    tampered = run_cli("log", "verify", data_dir=data_dir, check=False)
    checkpoint = json.loads(run_cli("log", "checkpoint", data_dir=data_dir).stdout)

    assert tampered.returncode == 1
    assert "证照 2：状态为 07" in tampered.stderr
    assert checkpoint["tree_size"] == 3
