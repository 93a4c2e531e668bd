"""The main job on PostgreSQL: init, issue and verify with a database URL."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid

import pytest

from tests.e2e.conftest import REPO, PUBLIC_URL, sample_subset

ADMIN_DSN = "host=127.0.0.1 port=5432 user=postgres dbname=postgres connect_timeout=3"


@pytest.fixture
def database_url():
    psycopg = pytest.importorskip("psycopg")
    name = f"elicense_e2e_{uuid.uuid4().hex[:10]}"
    try:
        with psycopg.connect(ADMIN_DSN, autocommit=True) as connection:
            connection.execute(f'CREATE DATABASE "{name}"')
    except psycopg.OperationalError as error:
        reason = f"PostgreSQL at 127.0.0.1:5432 is not reachable: {error}"
        if os.environ.get("ELICENSE_REQUIRE_POSTGRES") == "1":
            pytest.fail(reason)
        pytest.skip(reason)
    yield f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    with psycopg.connect(ADMIN_DSN, autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def run(args: list[str], database_url: str) -> subprocess.CompletedProcess:
    env = {key: value for key, value in os.environ.items() if not key.startswith("ELICENSE_")}
    env.update(ELICENSE_DATABASE_URL=database_url, ELICENSE_PUBLIC_URL=PUBLIC_URL)
    return subprocess.run(
        [sys.executable, "-m", "elicense.cli", *args],
        capture_output=True, text=True, env=env, cwd=REPO,
    )


def test_issue_and_verify_on_postgres(database_url, tmp_path):
    data_dir = tmp_path / "data"
    records = tmp_path / "records.jsonl"
    chosen = sample_subset()[:3]
    records.write_text(
        "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in chosen), encoding="utf-8"
    )
    init = run(["init", "--data-dir", str(data_dir)], database_url)
    assert init.returncode == 0, init.stderr
    assert "postgresql+psycopg://" in init.stdout
    assert not (data_dir / "elicense.db").exists()

    issue = run(
        ["issue", "--data-dir", str(data_dir), str(records), "--out", str(tmp_path / "out")],
        database_url,
    )
    assert issue.returncode == 0, issue.stderr
    assert f"签发 {len(chosen)} 张" in issue.stdout

    pdf = next((tmp_path / "out").glob("*.pdf"))
    verify = run(["verify", "--data-dir", str(data_dir), str(pdf)], database_url)
    verdict = json.loads(verify.stdout)
    assert verify.returncode == 0, verify.stdout
    assert verdict["license"]["register_status"] == "01"
