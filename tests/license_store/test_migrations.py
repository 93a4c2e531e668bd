"""Alembic migrations against the SQLModel tables, on both backends."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from common.errors import InputError
from license_store.db import (
    alembic_config,
    create_engine_for,
    default_sqlite_url,
    migrate,
    normalise_url,
)
from license_store.models import SQLModel


def test_migrations_match_models(empty_database_url: str) -> None:
    migrate(empty_database_url)
    engine = create_engine_for(empty_database_url)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(
                connection, opts={"compare_type": True}
            )
            differences = compare_metadata(context, SQLModel.metadata)
    finally:
        engine.dispose()

    assert differences == []


def test_migrate_twice_is_harmless(empty_database_url: str) -> None:
    migrate(empty_database_url)
    migrate(empty_database_url)


def test_downgrade_removes_tables(empty_database_url: str) -> None:
    migrate(empty_database_url)
    command.downgrade(alembic_config(empty_database_url), "base")
    engine = create_engine_for(empty_database_url)
    try:
        tables = set(sa.inspect(engine).get_table_names())
    finally:
        engine.dispose()

    assert tables == {"alembic_version"}


def test_sqlite_pragmas(tmp_path: Path) -> None:
    engine = create_engine_for(default_sqlite_url(tmp_path))
    try:
        with engine.connect() as connection:
            journal = connection.exec_driver_sql("PRAGMA journal_mode").scalar()
            foreign_keys = connection.exec_driver_sql("PRAGMA foreign_keys").scalar()
            busy = connection.exec_driver_sql("PRAGMA busy_timeout").scalar()
    finally:
        engine.dispose()

    assert journal == "wal"
    assert foreign_keys == 1
    assert busy >= 1000


def test_default_sqlite_url(tmp_path: Path) -> None:
    assert default_sqlite_url(tmp_path) == f"sqlite:///{tmp_path.resolve()}/elicense.db"


def test_plain_postgresql_url_uses_psycopg() -> None:
    assert normalise_url("postgresql://u@h/db") == "postgresql+psycopg://u@h/db"
    assert normalise_url("postgres://u@h/db") == "postgresql+psycopg://u@h/db"


@pytest.mark.parametrize(
    "url", ["mysql://u@h/db", "postgresql+psycopg2://u@h/db", "oracle://h/db"]
)
def test_unsupported_database_rejected(url: str) -> None:
    with pytest.raises(InputError) as caught:
        create_engine_for(url)

    assert caught.value.field == "database_url"


def test_upgrade_numbers_existing_events(empty_database_url: str) -> None:
    migrate(empty_database_url, "0002")
    engine = create_engine_for(empty_database_url)
    insert_license = sa.text(
        "INSERT INTO licenses (id, license_type, type_code, issuer_code, holder_code,"
        " holder_code_type, holder_name, serial, current_version, status, created_at)"
        " VALUES (1, 'business_license', 'T', 'I', 'H', '001', '甲', '1', 1, '01',"
        " CURRENT_TIMESTAMP)"
    )
    insert_event = sa.text(
        "INSERT INTO license_events (id, operation, license_id, version, operator,"
        " authority_code, detail, occurred_at, leaf_hash)"
        " VALUES (:id, 'issue', 1, 1, '测试员', 'I', '{}', CURRENT_TIMESTAMP, :hash)"
    )
    try:
        with engine.begin() as connection:
            connection.execute(insert_license)
            for event_id in (3, 7, 9):
                values = {"id": event_id, "hash": f"{event_id:064x}"}
                connection.execute(insert_event, values)
        migrate(empty_database_url)
        with engine.begin() as connection:
            numbered = connection.execute(
                sa.text("SELECT id, log_index FROM license_events ORDER BY id")
            ).all()
            with pytest.raises(sa.exc.DBAPIError):
                connection.execute(sa.text("UPDATE license_events SET operator = 'x'"))
    finally:
        engine.dispose()

    assert [tuple(row) for row in numbered] == [(3, 0), (7, 1), (9, 2)]
