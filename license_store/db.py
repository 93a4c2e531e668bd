"""Database engines and schema migrations for the register.

SQLite runs in WAL mode with foreign keys on. Every transaction on an engine
from :func:`create_engine_for` starts with ``BEGIN IMMEDIATE`` on SQLite unless
the ``sqlite_begin`` execution option asks for ``DEFERRED``, so a
writer holds the write lock before it reads, and two processes updating the
same license run one after the other instead of both reading the old version.
PostgreSQL is reached through psycopg 3.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config

from common.errors import InputError

log = logging.getLogger(__name__)

SQLITE_BUSY_TIMEOUT_SECONDS = 30
MIGRATIONS_DIR = Path(__file__).parent / "migrations"

# Execution option naming the SQLite BEGIN mode. Readers pass "DEFERRED" so
# that they do not wait for a writer's lock (WAL lets them read meanwhile).
SQLITE_BEGIN_OPTION = "sqlite_begin"


def default_sqlite_url(data_dir: str | Path) -> str:
    """Return the URL of the SQLite register inside a data directory."""
    return f"sqlite:///{Path(data_dir).resolve() / 'elicense.db'}"


def normalise_url(database_url: str) -> str:
    """Select psycopg 3 for PostgreSQL URLs that name no driver."""
    for prefix in ("postgresql://", "postgres://"):
        if database_url.startswith(prefix):
            return "postgresql+psycopg://" + database_url[len(prefix) :]
    return database_url


def create_engine_for(database_url: str, **kwargs: Any) -> sa.Engine:
    """Create an engine for a SQLite or PostgreSQL register.

    Raises InputError for any other database, because the migrations and the
    locking are written for these two only.
    """
    url = sa.make_url(normalise_url(database_url))
    if url.get_backend_name() == "sqlite":
        return _sqlite_engine(url, **kwargs)
    if url.get_backend_name() == "postgresql":
        if url.drivername != "postgresql+psycopg":
            raise InputError(
                f"不支持的 PostgreSQL 驱动 {url.drivername}",
                field="database_url",
                value=url.render_as_string(hide_password=True),
                fix="请使用 postgresql+psycopg:// 开头的地址（psycopg 3）",
            )
        return sa.create_engine(url, pool_pre_ping=True, **kwargs)
    raise InputError(
        f"不支持的数据库 {url.get_backend_name()}",
        field="database_url",
        value=url.render_as_string(hide_password=True),
        fix="请使用 sqlite:/// 或 postgresql+psycopg:// 开头的地址",
    )


def _sqlite_engine(url: sa.URL, **kwargs: Any) -> sa.Engine:
    if url.database and url.database != ":memory:":
        Path(url.database).parent.mkdir(parents=True, exist_ok=True)
    # NOTE: each session opens its own connection. With a pool, a service
    # running for a long time kept reading an old WAL snapshot and missed
    # rows that other processes (the CLI) had committed. The likely cause is
    # a file copy in the process dropping SQLite's POSIX locks, which the
    # busy read paths detect (license_store.point_access). A fresh
    # connection costs about 1 ms per session.
    kwargs.setdefault("poolclass", sa.pool.NullPool)
    engine = sa.create_engine(
        url,
        connect_args={"timeout": SQLITE_BUSY_TIMEOUT_SECONDS},
        **kwargs,
    )
    sa.event.listen(engine, "connect", _configure_sqlite_connection)
    sa.event.listen(engine, "begin", _begin_immediate)
    return engine


def _configure_sqlite_connection(dbapi_connection: Any, _record: Any) -> None:
    # Hand transaction control to SQLAlchemy's "begin" event: pysqlite would
    # otherwise send a deferred BEGIN only before the first write.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_SECONDS * 1000}")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _begin_immediate(connection: sa.Connection) -> None:
    mode = connection.get_execution_options().get(SQLITE_BEGIN_OPTION, "IMMEDIATE")
    if mode not in ("IMMEDIATE", "DEFERRED"):
        raise ValueError(
            f"{SQLITE_BEGIN_OPTION} must be IMMEDIATE or DEFERRED: {mode!r}"
        )
    connection.exec_driver_sql(f"BEGIN {mode}")


def alembic_config(database_url: str) -> Config:
    """Build the Alembic configuration without an ini file."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["database_url"] = normalise_url(database_url)
    return config


def migrate(database_url: str, revision: str = "head") -> None:
    """Upgrade the register schema to ``revision`` (the newest by default)."""
    log.info("migrating register schema to %s", revision)
    command.upgrade(alembic_config(database_url), revision)
