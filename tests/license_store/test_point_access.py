"""Point reads see every commit at once, from this engine or another one."""

from __future__ import annotations

import hashlib
import logging
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa
from factories import HOLDER, ISSUER, OTHER_HOLDER, license_create, version_create

from license_store.db import create_engine_for
from license_store.models import LicenseStatus
from license_store.repository import Repository


def _issue(repository: Repository, holder: str = HOLDER, content: bytes = b"%PDF v1"):
    with repository.transaction():
        serial = repository.next_serial(ISSUER, 2025)
        return repository.add_license(
            license_create(holder_code=holder), version_create(content), serial=serial
        )


def test_version_joined_with_current_version(repository: Repository) -> None:
    license, first = _issue(repository)
    second = repository.add_version(
        license.id, version_create(b"%PDF v2"), expected_version=1
    )

    facts = repository.point_reader.version_by_elicense_id(first.elicense_id)

    assert facts is not None
    assert (facts.version, facts.current_version) == (1, 2)
    assert facts.current_elicense_id == second.elicense_id
    assert facts.holder_code == HOLDER
    assert facts.status == LicenseStatus.VALID


def test_lookup_by_pdf_hash(repository: Repository) -> None:
    _license, version = _issue(repository, content=b"%PDF by hash")
    digest = hashlib.sha256(b"%PDF by hash").hexdigest().upper()

    facts = repository.point_reader.version_by_pdf_sha256(digest)

    assert facts is not None and facts.elicense_id == version.elicense_id
    assert repository.point_reader.version_by_pdf_sha256("00" * 32) is None


def test_sees_commits_of_another_engine(
    database_url: str, repository: Repository
) -> None:
    # A service keeps its pooled reader for days while the CLI, another
    # process with its own engine, issues and revokes licenses.
    reader = repository.point_reader
    assert reader.current_versions_of_holder(OTHER_HOLDER, 10) == []

    other_engine = create_engine_for(database_url)
    try:
        other = Repository(other_engine)
        license, version = _issue(other, holder=OTHER_HOLDER)
        assert [row.elicense_id for row in reader.current_versions_of_holder(OTHER_HOLDER, 10)] == [
            version.elicense_id
        ]
        with other_engine.begin() as connection:
            connection.execute(
                sa.text("UPDATE licenses SET status = :status WHERE id = :id"),
                {"status": LicenseStatus.REVOKED.value, "id": license.id},
            )
    finally:
        other_engine.dispose()

    facts = reader.version_by_elicense_id(version.elicense_id)
    assert facts is not None and facts.status == LicenseStatus.REVOKED


def test_holder_licenses_newest_first(repository: Repository) -> None:
    first, _ = _issue(repository, content=b"%PDF a")
    second, _ = _issue(repository, content=b"%PDF b")
    repository.add_version(first.id, version_create(b"%PDF a2"), expected_version=1)

    rows = repository.point_reader.current_versions_of_holder(HOLDER, 10)

    assert [(row.license_id, row.version) for row in rows] == [(second.id, 1), (first.id, 2)]
    assert len(repository.point_reader.current_versions_of_holder(HOLDER, 1)) == 1


def test_reader_cannot_write(repository: Repository) -> None:
    if repository.engine.dialect.name != "sqlite":
        pytest.skip("query_only is a SQLite connection setting")
    with repository.point_reader.engine.connect() as connection:
        try:
            connection.execute(sa.text("DELETE FROM licenses"))
        except sa.exc.OperationalError as error:
            assert "readonly" in str(error).lower() or "read-only" in str(error).lower()
        else:
            raise AssertionError("the point reader deleted rows")


def test_reconnects_after_file_copy_drops_locks(
    database_url: str, repository: Repository, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # Copying the database files inside the service process, as a copy of
    # the data directory does, releases SQLite's POSIX locks on them. Another
    # process closing its last connection then deletes the WAL index, and a
    # pooled connection still mapping it must be replaced.
    if repository.engine.dialect.name != "sqlite":
        pytest.skip("the WAL index file exists on SQLite only")
    reader = repository.point_reader
    assert reader.current_versions_of_holder(OTHER_HOLDER, 10) == []
    database = str(repository.engine.url.database)
    for suffix in ("", "-wal", "-shm"):
        shutil.copyfile(database + suffix, tmp_path / f"copy.db{suffix}")

    child = (
        "import sys\n"
        "sys.path.insert(0, sys.argv[2])\n"
        "from factories import OTHER_HOLDER\n"
        "from test_point_access import _issue\n"
        "from license_store.db import create_engine_for\n"
        "from license_store.repository import Repository\n"
        "engine = create_engine_for(sys.argv[1])\n"
        "print(_issue(Repository(engine), holder=OTHER_HOLDER)[1].elicense_id)\n"
        "engine.dispose()\n"
    )
    issued = subprocess.run(
        [sys.executable, "-c", child, database_url, str(Path(__file__).parent)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    with caplog.at_level(logging.WARNING, logger="license_store.point_access"):
        rows = reader.current_versions_of_holder(OTHER_HOLDER, 10)

    assert [row.elicense_id for row in rows] == [issued]
    assert "reconnecting" in caplog.text
