"""Fixtures: a migrated register on SQLite and on PostgreSQL.

PostgreSQL runs at 127.0.0.1:5432 (user postgres, trust authentication).
Each test gets its own schema in the ``test`` database, dropped afterwards.
When the server cannot be reached the PostgreSQL cases are skipped with the
reason, unless ELICENSE_REQUIRE_POSTGRES=1 makes them fail instead.
"""

from __future__ import annotations

import datetime as dt
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest
import sqlalchemy as sa
from standins import (
    StandInCheckpointSigner,
    StandInSigner,
    render_stand_in,
    self_signed_certificate,
)

from common.authority import AuthorityRegistry
from esign.qrtoken import TokenSigner, sign_token
from license_store.blobs import FileBlobStore
from license_store.db import create_engine_for, default_sqlite_url, migrate
from license_store.issuance import IssuanceService
from license_store.lifecycle import LifecycleService
from license_store.repository import Repository
from license_store.translog import EventLog
from templates.catalogue import Catalogue, load_catalogue

PG_ADMIN_DSN = "host=127.0.0.1 port=5432 user=postgres dbname=test connect_timeout=3"
PG_URL_TEMPLATE = (
    "postgresql+psycopg://postgres@127.0.0.1:5432/test?options=-csearch_path%3D{schema}"
)
BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]


def _postgres_unavailable_reason() -> str | None:
    try:
        with psycopg.connect(PG_ADMIN_DSN):
            return None
    except psycopg.OperationalError as error:
        return f"PostgreSQL unreachable: {error}".strip()


def _require_postgres() -> None:
    reason = _postgres_unavailable_reason()
    if reason is None:
        return
    if os.environ.get("ELICENSE_REQUIRE_POSTGRES") == "1":
        pytest.fail(f"{reason} (ELICENSE_REQUIRE_POSTGRES=1)")
    pytest.skip(reason)


@contextmanager
def _postgres_schema() -> Iterator[str]:
    """Create a uniquely named schema in the ``test`` database, drop it after.

    The URL sets ``search_path`` so that the migrations, the repository and
    child processes all work inside the schema.
    """
    _require_postgres()
    name = f"elicense_test_{uuid.uuid4().hex[:16]}"
    with psycopg.connect(PG_ADMIN_DSN, autocommit=True) as connection:
        connection.execute(f'CREATE SCHEMA "{name}"')
    try:
        yield PG_URL_TEMPLATE.format(schema=name)
    finally:
        with psycopg.connect(PG_ADMIN_DSN, autocommit=True) as connection:
            connection.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')


@pytest.fixture
def empty_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """URL of an empty database on the backend named by the parameter."""
    if request.param == "sqlite":
        yield default_sqlite_url(tmp_path / "data")
        return
    with _postgres_schema() as url:
        yield url


@pytest.fixture
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """URL of a database migrated to the newest schema."""
    if request.param == "sqlite":
        url = default_sqlite_url(tmp_path / "data")
        migrate(url)
        yield url
        return
    with _postgres_schema() as url:
        migrate(url)
        yield url


@pytest.fixture
def engine(database_url: str) -> Iterator[sa.Engine]:
    engine = create_engine_for(database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def repository(engine: sa.Engine) -> Repository:
    return Repository(engine)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    # Every test that reaches the register runs once per backend.
    for name in ("database_url", "empty_database_url"):
        if name in metafunc.fixturenames:
            metafunc.parametrize(name, BACKENDS, indirect=True)
            return


# --- issuance -----------------------------------------------------------

TODAY = dt.date(2025, 3, 1)


@pytest.fixture(scope="session")
def seal_signer() -> StandInSigner:
    return StandInSigner()


@pytest.fixture(scope="session")
def token_signer() -> TokenSigner:
    key, certificate = self_signed_certificate("测试二维码签名")
    return TokenSigner(certificate=certificate, key=key)


@pytest.fixture(scope="session")
def catalogue() -> Catalogue:
    return load_catalogue()


@pytest.fixture
def blobs(tmp_path: Path) -> FileBlobStore:
    return FileBlobStore(tmp_path / "blobs")


@pytest.fixture
def service(
    repository: Repository,
    blobs: FileBlobStore,
    catalogue: Catalogue,
    seal_signer: StandInSigner,
    token_signer: TokenSigner,
) -> Iterator[IssuanceService]:
    seal_signer.fail_with = None
    yield IssuanceService(
        repository,
        blobs,
        catalogue=catalogue,
        authorities=AuthorityRegistry.load(),
        signer_for=lambda authority_code: seal_signer,
        make_qr_text=lambda claims: sign_token(claims, token_signer),
        render=render_stand_in,
        today=lambda: TODAY,
    )
    seal_signer.fail_with = None


@pytest.fixture(scope="session")
def checkpoint_signer() -> StandInCheckpointSigner:
    return StandInCheckpointSigner()


@pytest.fixture
def event_log(
    repository: Repository, checkpoint_signer: StandInCheckpointSigner
) -> EventLog:
    return EventLog(repository, checkpoint_signer)


@pytest.fixture
def lifecycle(service: IssuanceService, event_log: EventLog) -> LifecycleService:
    return LifecycleService(service, event_log)
