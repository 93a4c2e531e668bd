"""Application factory for uvicorn workers: settings come from the environment."""

from __future__ import annotations

from fastapi import FastAPI

from elicense.context import ServiceContext
from elicense.settings import Settings
from elicense.web.app import create_app


def app_from_environment() -> FastAPI:
    return create_app(ServiceContext(Settings()))
