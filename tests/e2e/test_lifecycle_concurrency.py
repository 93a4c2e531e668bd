"""Two clerks amend one license at once: one wins, the other gets 409.

Each clerk is a separate process with its own service context and app,
sending its request through the HTTP API after both reach a barrier. Runs
on SQLite and on PostgreSQL at 127.0.0.1:5432 (a database made and dropped
per test).
"""

from __future__ import annotations

import json
import multiprocessing
import os
import subprocess
import sys
import uuid
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pytest

from tests.e2e.conftest import PUBLIC_URL, REPO, SAMPLE

SPAWN = multiprocessing.get_context("spawn")
ADMIN_DSN = "host=127.0.0.1 port=5432 user=postgres dbname=postgres connect_timeout=3"

pytestmark = pytest.mark.slow


@pytest.fixture(
    params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
def database_url(request: pytest.FixtureRequest):
    if request.param == "sqlite":
        yield None
        return
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


def _environment(database_url: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ELICENSE_")}
    env["ELICENSE_PUBLIC_URL"] = PUBLIC_URL
    if database_url:
        env["ELICENSE_DATABASE_URL"] = database_url
    return env


def _cli(database_url: str | None, *args: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "elicense.cli", *args],
        capture_output=True,
        text=True,
        env=_environment(database_url),
        cwd=REPO,
    )
    assert result.returncode == 0, result.stderr


def amend_via_api(
    data_dir: str,
    database_url: str | None,
    api_key: str,
    elicense_id: str,
    clerk: str,
    barrier: object,
) -> tuple[int, dict]:
    """Build an app in this process and send one amend after the barrier."""
    if database_url:
        os.environ["ELICENSE_DATABASE_URL"] = database_url
    from fastapi.testclient import TestClient

    from elicense.context import ServiceContext
    from elicense.settings import Settings
    from elicense.web.app import create_app

    context = ServiceContext(Settings(data_dir=Path(data_dir), public_url=PUBLIC_URL))
    context.issuing  # load keys before the race starts
    with TestClient(create_app(context)) as client:
        barrier.wait(timeout=60)  # type: ignore[attr-defined]
        response = client.post(
            f"/api/v1/licenses/{elicense_id}/amend",
            json={
                "reason": f"{clerk}办理住所变更",
                "operator": clerk,
                "changes": {"domicile": f"内蒙古自治区呼和浩特市{clerk}路1号"},
            },
            headers={"X-API-Key": api_key},
        )
    return response.status_code, response.json()


def test_two_clerks_one_wins(database_url: str | None, tmp_path: Path) -> None:
    from elicense.context import ServiceContext
    from elicense.settings import Settings

    data_dir = tmp_path / "data"
    record = json.loads(SAMPLE.read_text(encoding="utf-8").splitlines()[0])
    source = tmp_path / "one.jsonl"
    source.write_text(json.dumps(record, ensure_ascii=False) + "\n", encoding="utf-8")
    _cli(database_url, "init", "--data-dir", str(data_dir))
    _cli(database_url, "issue", "--data-dir", str(data_dir), str(source))
    settings = Settings(
        data_dir=data_dir, public_url=PUBLIC_URL, database_url=database_url
    )
    context = ServiceContext(settings)
    key = context.create_api_client("登记系统", "bureau", record["authority_code"], [])
    license = context.repository.licenses_by_holder_code(record["uscc"]).items[0]
    elicense_id = context.repository.get_version(license.id, 1).elicense_id

    manager = SPAWN.Manager()
    barrier = manager.Barrier(2)
    try:
        with ProcessPoolExecutor(max_workers=2, mp_context=SPAWN) as pool:
            futures = [
                pool.submit(
                    amend_via_api,
                    str(data_dir),
                    database_url,
                    key,
                    elicense_id,
                    clerk,
                    barrier,
                )
                for clerk in ("甲", "乙")
            ]
            outcomes = sorted(future.result(timeout=180) for future in futures)
    finally:
        manager.shutdown()

    (won_status, won), (lost_status, lost) = outcomes
    assert won_status == 201, won
    assert won["version"] == 2
    assert lost_status == 409, lost
    assert lost["current_version"] == 2
    assert "基于版本 2 再提交" in lost["fix"]
    versions = context.repository.versions_of(license.id)
    assert [v.version for v in versions] == [1, 2]
    events = context.repository.events_of(license.id)
    assert [str(e.operation) for e in events] == ["issue", "amend"]
    context.engine.dispose()
