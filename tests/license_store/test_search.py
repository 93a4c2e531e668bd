"""Register search by code, identifier, name, authority, status and date."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
import sqlalchemy as sa

from license_store.issuance import IssuanceService
from license_store.models import LicenseEventCreate, LicenseStatus, Operation
from license_store.repository import LicenseQuery, Repository

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
SAMPLE = [json.loads(line) for line in (EXAMPLES / "licenses-sample.jsonl").open()]
RECORDS = SAMPLE[:8]


@pytest.fixture
def issued_ids(service: IssuanceService) -> list[int]:
    return [service.issue(r, operator="测试员").license_id for r in RECORDS]


def _ids(repository: Repository, **filters: object) -> list[int]:
    page = repository.search_licenses(LicenseQuery(**filters), page_size=50)
    return [row.id for row in page.items]


def test_search_by_holder_code(repository: Repository, issued_ids: list[int]) -> None:
    assert _ids(repository, holder_code=RECORDS[3]["uscc"].lower()) == [issued_ids[3]]


def test_search_by_elicense_id(repository: Repository, issued_ids: list[int]) -> None:
    version = repository.get_version(issued_ids[2], 1)

    assert _ids(repository, elicense_id=version.elicense_id) == [issued_ids[2]]


def test_search_by_name_substring(
    repository: Repository, issued_ids: list[int]
) -> None:
    name = RECORDS[1]["name"]
    expected = [
        license_id
        for license_id, record in zip(issued_ids, RECORDS)
        if name[2:6] in record["name"]
    ]

    assert sorted(_ids(repository, holder_name=name[2:6])) == sorted(expected)
    assert issued_ids[1] in expected


def test_search_name_wildcards_literal(
    repository: Repository, issued_ids: list[int]
) -> None:
    assert _ids(repository, holder_name="%") == []
    assert _ids(repository, holder_name="_") == []


def test_search_by_authority_and_status(
    repository: Repository, issued_ids: list[int]
) -> None:
    authority = RECORDS[0]["authority_code"]
    repository.set_status(
        issued_ids[0],
        LicenseStatus.SUSPENDED,
        LicenseEventCreate(
            operation=Operation.SUSPEND,
            license_id=issued_ids[0],
            version=1,
            operator="测试员",
            authority_code=authority,
        ),
    )

    of_authority = _ids(repository, issuer_code=authority)
    suspended = _ids(repository, issuer_code=authority, status=LicenseStatus.SUSPENDED)

    assert issued_ids[0] in of_authority
    assert suspended == [issued_ids[0]]


def test_search_by_issue_date(repository: Repository, issued_ids: list[int]) -> None:
    day = dt.date.fromisoformat(RECORDS[4]["issued_on"])
    expected = [
        license_id
        for license_id, record in zip(issued_ids, RECORDS)
        if record["issued_on"] == RECORDS[4]["issued_on"]
    ]

    found = _ids(repository, issued_from=day, issued_to=day)

    assert sorted(found) == sorted(expected)


def test_search_pages_by_cursor(repository: Repository, issued_ids: list[int]) -> None:
    seen: list[int] = []
    after = None
    while True:
        page = repository.search_licenses(LicenseQuery(), page_size=3, after_id=after)
        seen.extend(row.id for row in page.items)
        if page.next_after_id is None:
            break
        after = page.next_after_id

    assert seen == sorted(issued_ids, reverse=True)


def test_name_search_uses_index_on_postgresql(
    repository: Repository, issued_ids: list[int]
) -> None:
    if repository.engine.dialect.name != "postgresql":
        pytest.skip("SQLite cannot use an index for a substring match")
    with repository.engine.connect() as connection:
        method = connection.exec_driver_sql(
            "SELECT am.amname FROM pg_class AS c JOIN pg_am AS am"
            " ON am.oid = c.relam WHERE c.relname = 'ix_licenses_holder_name_trgm'"
            " AND c.relnamespace = current_schema()::regnamespace"
        ).scalar()
    if method != "gin":
        pytest.skip("pg_trgm belongs to another schema of the test database")
    with repository.engine.connect() as connection:
        connection.exec_driver_sql("SET enable_seqscan = off")
        plan = "\n".join(
            connection.execute(
                sa.text(
                    "EXPLAIN SELECT id FROM licenses WHERE holder_name ILIKE :pattern"
                ),
                {"pattern": "%草原%"},
            ).scalars()
        )

    assert "ix_licenses_holder_name_trgm" in plan
