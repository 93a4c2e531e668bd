"""A data directory with one license issued in process, for verifier tests."""

from __future__ import annotations

import pytest

from benchmarks.records import business_records
from elicense.context import ServiceContext
from elicense.initialise import initialise
from elicense.settings import Settings


@pytest.fixture(scope="session")
def context(tmp_path_factory: pytest.TempPathFactory) -> ServiceContext:
    settings = Settings(
        data_dir=tmp_path_factory.mktemp("verifier") / "data",
        public_url="http://127.0.0.1:8765",
    )
    initialise(settings)
    return ServiceContext(settings)


@pytest.fixture(scope="session")
def issued(context: ServiceContext) -> tuple[str, bytes]:
    """The e-license identifier and the registered PDF of one license."""
    result = context.issue_record(
        business_records(1)[0],
        operator="测试员",
        idempotency_key=None,
        new_on_purpose=False,
    )
    return result["elicense_id"], context.blobs.get(result["pdf_sha256"])
