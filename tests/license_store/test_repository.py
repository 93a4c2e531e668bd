"""Repository queries, each run on SQLite and on PostgreSQL."""

from __future__ import annotations

import datetime as dt
import time

import pytest
import sqlalchemy as sa
from factories import (
    HOLDER,
    ISSUER,
    OTHER_HOLDER,
    OTHER_ISSUER,
    license_create,
    version_create,
)

from common.codes import parse_elicense_id
from common.errors import ConflictError, InputError, NotFoundError
from license_store.apikeys import generate_api_key, hash_api_key
from license_store.db import create_engine_for
from license_store.eventlog import event_leaf_hash
from license_store.models import (
    AgencyQueryAuditCreate,
    ApiClientCreate,
    ClientKind,
    LicenseEventCreate,
    LicenseStatus,
    LicenseVersionPublic,
    Operation,
)
from license_store.repository import Repository, hash_request


def add_one(repository: Repository, holder: str = HOLDER, issuer: str = ISSUER):
    with repository.transaction():
        serial = repository.next_serial(issuer, 2025)
        return repository.add_license(
            license_create(holder, issuer),
            version_create(holder.encode()),
            serial=serial,
        )


def event(
    license_id: int, operation: Operation, version: int = 1
) -> LicenseEventCreate:
    return LicenseEventCreate(
        operation=operation,
        license_id=license_id,
        version=version,
        operator="张三",
        authority_code=ISSUER,
        reason="测试",
        legal_basis="《市场主体登记管理条例》第四十条",
        detail={"note": "测试"},
    )


def test_serials_count_per_issuer_and_year(repository: Repository) -> None:
    first = repository.next_serial(ISSUER, 2025)
    second = repository.next_serial(ISSUER, 2025)
    other_issuer = repository.next_serial(OTHER_ISSUER, 2025)
    next_year = repository.next_serial(ISSUER, 2026)

    assert first == "20250000001"
    assert second == "20250000002"
    assert other_issuer == "20250000001"
    assert next_year == "20260000001"


def test_serial_returns_on_rollback(repository: Repository) -> None:
    with pytest.raises(RuntimeError), repository.transaction():
        repository.next_serial(ISSUER, 2025)
        raise RuntimeError("issue failed after allocating the serial")

    assert repository.next_serial(ISSUER, 2025) == "20250000001"


def test_add_license_builds_identifier(repository: Repository) -> None:
    license, version = add_one(repository)

    parsed = parse_elicense_id(version.elicense_id)
    assert parsed.check_char_matches
    assert parsed.identifier.serial == "20250000001"
    assert parsed.identifier.version == 1
    assert parsed.identifier.issuer_code == ISSUER
    assert license.current_version == 1
    assert license.status == LicenseStatus.VALID
    assert repository.get_version_by_elicense_id(version.elicense_id).id == version.id


def test_version_row_round_trips(repository: Repository) -> None:
    license, _ = add_one(repository)

    stored = repository.get_version(license.id, 1)

    assert stored.record == {"name": "呼和浩特市草原乳业有限公司", "term_to": None}
    assert stored.valid_to is None
    assert stored.valid_from == dt.date(2025, 1, 2)
    assert stored.pdf_size == len(HOLDER.encode())


def test_add_version_increments(repository: Repository) -> None:
    license, _ = add_one(repository)

    second = repository.add_version(
        license.id, version_create(b"v2"), expected_version=1
    )
    third = repository.add_version(
        license.id, version_create(b"v3"), expected_version=2
    )

    assert second.version == 2
    assert third.version == 3
    assert parse_elicense_id(third.elicense_id).identifier.version == 3
    assert repository.get_license(license.id).current_version == 3
    assert [v.version for v in repository.versions_of(license.id)] == [1, 2, 3]


def test_stale_version_conflicts(repository: Repository) -> None:
    license, _ = add_one(repository)
    repository.add_version(license.id, version_create(b"v2"), expected_version=1)

    with pytest.raises(ConflictError) as caught:
        repository.add_version(license.id, version_create(b"v3"), expected_version=1)

    assert "当前版本已是 2" in caught.value.message
    assert repository.get_license(license.id).current_version == 2


def test_new_version_rejected_when_revoked(repository: Repository) -> None:
    license, _ = add_one(repository)
    repository.set_status(
        license.id, LicenseStatus.REVOKED, event(license.id, Operation.REVOKE)
    )

    with pytest.raises(ConflictError, match="07 吊销"):
        repository.add_version(license.id, version_create(b"v2"), expected_version=1)


def test_missing_rows_raise_not_found(repository: Repository) -> None:
    with pytest.raises(NotFoundError):
        repository.get_license(999)
    with pytest.raises(NotFoundError):
        repository.get_version(999, 1)
    with pytest.raises(NotFoundError):
        repository.get_version_by_elicense_id("1.2.156.3005.2.X.Y.Z.001.A")
    with pytest.raises(NotFoundError):
        repository.add_version(999, version_create(), expected_version=1)


def test_find_version_by_pdf_sha256(repository: Repository) -> None:
    _, version = add_one(repository)

    found = repository.find_version_by_pdf_sha256(version.pdf_sha256.upper())

    assert found is not None
    assert found.elicense_id == version.elicense_id
    assert repository.find_version_by_pdf_sha256("0" * 64) is None


def test_licenses_by_holder_code_pages(repository: Repository) -> None:
    for issuer in (ISSUER, OTHER_ISSUER, ISSUER):
        add_one(repository, HOLDER, issuer)
    add_one(repository, OTHER_HOLDER)

    first = repository.licenses_by_holder_code(HOLDER.lower(), page=1, page_size=2)
    second = repository.licenses_by_holder_code(HOLDER, page=2, page_size=2)

    assert first.total == 3
    assert len(first.items) == 2
    assert len(second.items) == 1
    assert first.items[0].id > first.items[1].id > second.items[0].id


def test_page_arguments_are_checked(repository: Repository) -> None:
    with pytest.raises(InputError):
        repository.licenses_by_holder_code(HOLDER, page=0)
    with pytest.raises(InputError):
        repository.licenses_by_holder_code(HOLDER, page_size=1000)


def test_current_license_of_holder(repository: Repository) -> None:
    license, _ = add_one(repository)

    assert (
        repository.current_license_of_holder(HOLDER, "business_license").id
        == license.id
    )
    assert repository.current_license_of_holder(HOLDER, "food_business_license") is None

    repository.set_status(
        license.id, LicenseStatus.SUSPENDED, event(license.id, Operation.SUSPEND)
    )
    assert repository.current_license_of_holder(HOLDER, "business_license") is not None

    repository.set_status(
        license.id, LicenseStatus.CANCELLED, event(license.id, Operation.CANCEL)
    )
    assert repository.current_license_of_holder(HOLDER, "business_license") is None


def test_status_changes_follow_rules(repository: Repository) -> None:
    license, _ = add_one(repository)

    with pytest.raises(ConflictError, match="01 有效"):
        repository.set_status(
            license.id, LicenseStatus.VALID, event(license.id, Operation.LIFT)
        )
    with pytest.raises(ConflictError):
        repository.set_status(
            license.id, LicenseStatus.CANCELLED, event(license.id, Operation.REVOKE)
        )

    repository.set_status(
        license.id, LicenseStatus.SUSPENDED, event(license.id, Operation.SUSPEND)
    )
    repository.set_status(
        license.id, LicenseStatus.VALID, event(license.id, Operation.LIFT)
    )

    assert repository.get_license(license.id).status == LicenseStatus.VALID
    operations = [e.operation for e in repository.events_of(license.id)]
    assert operations == [Operation.SUSPEND, Operation.LIFT]


def test_event_leaf_hash_recomputes(repository: Repository) -> None:
    license, _ = add_one(repository)
    recorded = repository.record_event(event(license.id, Operation.ISSUE))

    stored = repository.events_of(license.id)[0]
    recomputed = event_leaf_hash(
        operation=stored.operation,
        license_id=stored.license_id,
        version=stored.version,
        operator=stored.operator,
        authority_code=stored.authority_code,
        reason=stored.reason,
        legal_basis=stored.legal_basis,
        occurred_at=stored.occurred_at,
        detail=stored.detail,
    )

    assert stored.leaf_hash == recorded.leaf_hash
    assert recomputed == stored.leaf_hash


def test_idempotency_key_round_trip(repository: Repository) -> None:
    license, _ = add_one(repository)
    request_hash = hash_request({"uscc": HOLDER})

    assert repository.find_idempotency_key("k1", ISSUER, request_hash) is None
    repository.store_idempotency_key("k1", ISSUER, request_hash, license.id, 1)
    found = repository.find_idempotency_key("k1", ISSUER, request_hash)

    assert found is not None
    assert (found.license_id, found.version) == (license.id, 1)
    assert repository.find_idempotency_key("k1", OTHER_ISSUER, request_hash) is None


def test_idempotency_key_reused_differently(repository: Repository) -> None:
    license, _ = add_one(repository)
    repository.store_idempotency_key(
        "k1", ISSUER, hash_request({"a": 1}), license.id, 1
    )

    with pytest.raises(ConflictError, match="幂等键 k1"):
        repository.find_idempotency_key("k1", ISSUER, hash_request({"a": 2}))
    with pytest.raises(ConflictError):
        repository.store_idempotency_key(
            "k1", ISSUER, hash_request({"a": 2}), license.id, 1
        )


def test_api_client_found_by_key_hash(repository: Repository) -> None:
    created = repository.create_api_client(
        ApiClientCreate(
            name="自治区数据共享平台",
            kind=ClientKind.AGENCY,
            scopes=["licenses:read"],
            api_key_hash="a" * 64,
        )
    )

    found = repository.find_api_client_by_key_hash("a" * 64)
    assert found is not None
    assert found.id == created.id
    assert found.scopes == ["licenses:read"]
    assert found.kind == ClientKind.AGENCY

    repository.disable_api_client(created.id)
    assert repository.find_api_client_by_key_hash("a" * 64) is None


def test_api_key_hash_unique(repository: Repository) -> None:
    client = ApiClientCreate(
        name="呼和浩特市局",
        kind=ClientKind.BUREAU,
        authority_code=ISSUER,
        api_key_hash="b" * 64,
    )
    repository.create_api_client(client)

    with pytest.raises(ConflictError):
        repository.create_api_client(client)


def test_audit_search_filters(repository: Repository) -> None:
    clients = [
        repository.create_api_client(
            ApiClientCreate(
                name=f"机构{i}", kind=ClientKind.AGENCY, api_key_hash=f"{i}" * 64
            )
        )
        for i in range(2)
    ]
    for client in clients + clients[:1]:
        repository.add_audit(
            AgencyQueryAuditCreate(
                client_id=client.id,
                purpose="企业开办核验",
                query={"holder_code": HOLDER},
                result_count=1,
            )
        )

    all_rows = repository.search_audit()
    first_client = repository.search_audit(client_id=clients[0].id)
    future = repository.search_audit(
        since=dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)
    )

    assert all_rows.total == 3
    assert first_client.total == 2
    assert first_client.items[0].query == {"holder_code": HOLDER}
    assert future.total == 0


def test_event_for_missing_license_rejected(repository: Repository) -> None:
    with pytest.raises(ConflictError):
        repository.record_event(event(999, Operation.ISSUE))


def test_reader_not_blocked_by_writer(
    repository: Repository, database_url: str
) -> None:
    license, _ = add_one(repository)
    other_engine = create_engine_for(database_url)
    try:
        reader = Repository(other_engine)
        with repository.transaction():
            repository.lock_license(license.id)
            started = time.monotonic()
            seen = reader.get_license(license.id)
            waited = time.monotonic() - started
    finally:
        other_engine.dispose()

    assert seen.id == license.id
    assert waited < 5


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE license_versions SET pdf_size = 1",
        "DELETE FROM license_versions",
        "UPDATE license_events SET operator = 'x'",
        "DELETE FROM license_events",
    ],
)
def test_versions_and_events_immutable(repository: Repository, statement: str) -> None:
    license, _ = add_one(repository)
    repository.record_event(event(license.id, Operation.ISSUE))

    with (
        pytest.raises(sa.exc.IntegrityError, match="immutable"),
        repository.engine.begin() as connection,
    ):
        connection.exec_driver_sql(statement)

    assert repository.get_version(license.id, 1).pdf_size == len(HOLDER.encode())
    assert len(repository.events_of(license.id)) == 1


def test_api_key_hash_finds_client(repository: Repository) -> None:
    api_key = generate_api_key()
    repository.create_api_client(
        ApiClientCreate(
            name="包头市局",
            kind=ClientKind.BUREAU,
            authority_code=OTHER_ISSUER,
            api_key_hash=hash_api_key(api_key),
        )
    )

    found = repository.find_api_client_by_key_hash(hash_api_key(api_key))

    assert found is not None
    assert found.authority_code == OTHER_ISSUER
    assert api_key not in found.model_dump_json()
    assert repository.find_api_client_by_key_hash(hash_api_key(api_key + "x")) is None


def test_public_version_leaves_out_record(repository: Repository) -> None:
    _, version = add_one(repository)

    public = LicenseVersionPublic.model_validate(version)

    assert "record" not in public.model_dump()
    assert public.elicense_id == version.elicense_id


def test_renew_after_expiry_sets_valid(repository: Repository) -> None:
    license, _ = add_one(repository)
    repository.set_status(
        license.id, LicenseStatus.EXPIRED, event(license.id, Operation.EXPIRE)
    )

    repository.add_version(license.id, version_create(b"v2"), expected_version=1)

    assert repository.get_license(license.id).status == LicenseStatus.VALID


def test_version_999_is_the_last(repository: Repository) -> None:
    license, _ = add_one(repository)
    with repository.transaction() as session:
        row = repository.lock_license(license.id)
        row.current_version = 999
        session.add(row)

    with pytest.raises(ConflictError, match="版本号已用尽"):
        repository.add_version(
            license.id, version_create(b"v1000"), expected_version=999
        )


def test_licenses_by_issuer_filters_status(repository: Repository) -> None:
    first, _ = add_one(repository, HOLDER, ISSUER)
    add_one(repository, OTHER_HOLDER, ISSUER)
    add_one(repository, HOLDER, OTHER_ISSUER)
    repository.set_status(
        first.id, LicenseStatus.SUSPENDED, event(first.id, Operation.SUSPEND)
    )

    everything = repository.licenses_by_issuer(ISSUER)
    suspended = repository.licenses_by_issuer(ISSUER, status=LicenseStatus.SUSPENDED)

    assert everything.total == 2
    assert suspended.total == 1
    assert suspended.items[0].id == first.id


def test_licenses_past_valid_to(repository: Repository) -> None:
    ended, _ = add_one(repository, HOLDER)
    repository.add_version(
        ended.id,
        version_create(b"v2", valid_to=dt.date(2025, 6, 30)),
        expected_version=1,
    )
    add_one(repository, OTHER_HOLDER)  # open-ended (长期)

    before = repository.licenses_past_valid_to(dt.date(2025, 6, 30))
    after = repository.licenses_past_valid_to(dt.date(2025, 7, 1))

    assert before == []
    assert [license.id for license in after] == [ended.id]


def test_events_after_in_log_order(repository: Repository) -> None:
    license, _ = add_one(repository)
    recorded = [
        repository.record_event(event(license.id, operation))
        for operation in (Operation.ISSUE, Operation.SUSPEND, Operation.LIFT)
    ]

    all_events = repository.events_after()
    later = repository.events_after(recorded[0].id)

    assert [e.leaf_hash for e in all_events] == [e.leaf_hash for e in recorded]
    assert [e.id for e in later] == [recorded[1].id, recorded[2].id]
    assert repository.events_after(recorded[0].id, limit=1)[0].id == recorded[1].id
