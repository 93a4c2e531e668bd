"""Alembic environment: runs online against the URL that ``db.migrate`` passes."""

from __future__ import annotations

from alembic import context

from license_store import models
from license_store.db import create_engine_for

target_metadata = models.SQLModel.metadata


def run_migrations_online() -> None:
    """Run the migrations on an engine made by ``create_engine_for``."""
    engine = create_engine_for(context.config.attributes["database_url"])
    try:
        with engine.connect() as connection:
            context.configure(
                connection=connection,
                target_metadata=target_metadata,
                render_as_batch=connection.dialect.name == "sqlite",
                compare_type=True,
            )
            with context.begin_transaction():
                context.run_migrations()
    finally:
        engine.dispose()


if context.is_offline_mode():
    raise SystemExit("offline migrations are not supported: pass a database URL")
run_migrations_online()
