"""Every query of the license register.

Methods called inside ``with repository.transaction():`` share that
transaction, so a serial allocation, the license row, its first version and
the event commit together or not at all. Called outside it, a write method
runs in a transaction of its own and a read method in a read-only session.

Rows come back detached from the session, with their columns loaded.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, func, select

from common.codes import ElicenseIdentifier, normalize_code
from common.errors import ConflictError, InputError, NotFoundError, StorageError
from license_store.db import SQLITE_BEGIN_OPTION
from license_store.point_access import AuditAppender, PointReader, create_autocommit_engine
from license_store.eventlog import canonical_json, event_leaf_hash
from license_store.models import (
    NEW_VERSION_FROM,
    STATUS_CHANGES,
    AgencyQueryAudit,
    AgencyQueryAuditCreate,
    ApiClient,
    ApiClientCreate,
    IdempotencyKey,
    License,
    LicenseCreate,
    LicenseEvent,
    LicenseEventCreate,
    LicenseStatus,
    LicenseVersion,
    LicenseVersionCreate,
    LogCheckpoint,
    Operation,
    SerialCounter,
    utc_now,
)

log = logging.getLogger(__name__)

T = TypeVar("T")

MAX_SERIAL_COUNTER = 9_999_999  # 7 digits after the 4-digit year
MAX_VERSION = 999  # 3 digits in the e-license identifier
MAX_PAGE_SIZE = 200
# Advisory lock key that serialises appends to the event log on PostgreSQL.
LOG_LOCK_KEY = 0x454C_4943_4C4F_47  # "ELICLOG"


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of a longer result, with the total number of rows."""

    items: list[T]
    total: int
    page: int
    page_size: int


@dataclass(frozen=True)
class LicenseQuery:
    """Filters of a register search; unset filters match everything."""

    holder_code: str | None = None
    elicense_id: str | None = None
    holder_name: str | None = None
    issuer_code: str | None = None
    status: LicenseStatus | None = None
    issued_from: dt.date | None = None
    issued_to: dt.date | None = None


@dataclass(frozen=True)
class SearchPage:
    """One page of a search; ``next_after_id`` is None on the last page."""

    items: list[License]
    next_after_id: int | None


def format_serial(year: int, counter: int) -> str:
    """Return the serial: 4-digit year and 7-digit counter, e.g. 20250000001."""
    return f"{year:04d}{counter:07d}"


def elicense_id_for(license: License | LicenseCreate, serial: str, version: int) -> str:
    """Return the e-license identifier of one version of a license."""
    identifier = ElicenseIdentifier(
        license.type_code, license.issuer_code, serial, version
    )
    return str(identifier)


class StaleVersionError(ConflictError):
    """The change was based on a version that is no longer current."""

    def __init__(self, license_id: int | None, current: int, expected: int) -> None:
        self.current_version = current
        super().__init__(
            f"证照 {license_id} 的当前版本已是 {current}，请求基于版本 {expected}",
            fix=f"请重新读取证照，基于版本 {current} 再提交",
        )

    def as_dict(self) -> dict[str, Any]:
        detail: dict[str, Any] = dict(super().as_dict())
        detail["current_version"] = self.current_version
        return detail


def hash_request(payload: Any) -> str:
    """Return the SHA-256 hex digest of a request for idempotency checks."""
    return hashlib.sha256(canonical_json(payload)).hexdigest()


class Repository:
    """Queries of the register on one engine (SQLite or PostgreSQL)."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        self._read_engine = engine.execution_options(
            **{SQLITE_BEGIN_OPTION: "DEFERRED"}
        )
        self.point_reader = PointReader(create_autocommit_engine(engine, read_only=True))
        self._audit = AuditAppender(create_autocommit_engine(engine, read_only=False))
        self._active: ContextVar[Session | None] = ContextVar(
            f"repository_session_{id(self)}", default=None
        )

    # --- sessions -------------------------------------------------------

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """Open a write transaction, or join the one already open.

        On SQLite the write lock is taken at the start, so the transaction
        reads what it is about to change without another writer in between.
        """
        active = self._active.get()
        if active is not None:
            yield active
            return
        with Session(self.engine, expire_on_commit=False) as session:
            token = self._active.set(session)
            try:
                with session.begin():
                    yield session
            finally:
                self._active.reset(token)

    @contextmanager
    def _reading(self) -> Iterator[Session]:
        active = self._active.get()
        if active is not None:
            yield active
            return
        with Session(self._read_engine, expire_on_commit=False) as session:
            yield session

    # --- serials --------------------------------------------------------

    def next_serial(self, issuer_code: str, year: int) -> str:
        """Allocate the next serial of an authority for a year.

        Call it inside :meth:`transaction` together with the insert that uses
        the serial, so a rolled back issue returns the number.
        """
        with self.transaction() as session:
            value = self._increment_counter(session, issuer_code, year)
            if value is None:
                value = self._create_counter(session, issuer_code, year)
        if value > MAX_SERIAL_COUNTER:
            raise StorageError(
                f"颁发机构 {issuer_code} 在 {year} 年的流水号已用尽",
                fix="流水号计数超过 7 位，请联系系统管理员调整流水号格式",
            )
        return format_serial(year, value)

    def return_serial(self, issuer_code: str, year: int, serial: str) -> bool:
        """Hand back an unused serial if no later one was allocated; return whether.

        Called after an issue failed between allocation and insert, so that
        the common failure (signing, a duplicate) leaves no gap.
        """
        value = int(serial[4:])
        statement = (
            sa.update(SerialCounter)
            .where(
                SerialCounter.issuer_code == issuer_code,
                SerialCounter.year == year,
                SerialCounter.last_value == value,
            )
            .values(last_value=value - 1)
        )
        with self.transaction() as session:
            returned = session.execute(statement).rowcount == 1
        if returned:
            log.info("returned unused serial %s of %s", serial, issuer_code)
        return returned

    @staticmethod
    def _increment_counter(session: Session, issuer_code: str, year: int) -> int | None:
        statement = (
            sa.update(SerialCounter)
            .where(SerialCounter.issuer_code == issuer_code, SerialCounter.year == year)
            .values(last_value=SerialCounter.last_value + 1)
            .returning(SerialCounter.last_value)
        )
        return session.execute(statement).scalar_one_or_none()

    def _create_counter(self, session: Session, issuer_code: str, year: int) -> int:
        try:
            with session.begin_nested():
                session.add(
                    SerialCounter(issuer_code=issuer_code, year=year, last_value=1)
                )
            return 1
        except IntegrityError:
            # Another transaction created the counter first: count on from it.
            value = self._increment_counter(session, issuer_code, year)
            assert value is not None
            return value

    # --- licenses and versions ------------------------------------------

    def add_license(
        self,
        license: LicenseCreate,
        first_version: LicenseVersionCreate,
        *,
        serial: str,
    ) -> tuple[License, LicenseVersion]:
        """Insert a license with version 1, or raise ConflictError on a duplicate."""
        with self.transaction() as session:
            row = License(**license.model_dump(), serial=serial, current_version=1)
            session.add(row)
            self._flush(session, f"流水号 {serial}")
            version = self._new_version_row(row, first_version, 1)
            session.add(version)
            self._flush(session, f"电子证照标识 {version.elicense_id}")
        log.info("added license %s version 1 (%s)", row.id, version.elicense_id)
        return row, version

    def add_version(
        self,
        license_id: int,
        version: LicenseVersionCreate,
        *,
        expected_version: int,
    ) -> LicenseVersion:
        """Insert the next version of a license and make it current.

        ``expected_version`` is the version the caller based its change on.
        Raises ConflictError when another version was added meanwhile, when
        the status forbids a new version, or at version 999.
        """
        with self.transaction() as session:
            row = self._lock_license(session, license_id)
            self.check_new_version_allowed(row, expected_version)
            number = row.current_version + 1
            version_row = self._new_version_row(row, version, number)
            session.add(version_row)
            row.current_version = number
            row.status = LicenseStatus.VALID
            session.add(row)
            self._flush(session, f"证照 {license_id} 的版本 {number}")
        log.info("added license %s version %s", license_id, number)
        return version_row

    @staticmethod
    def check_new_version_allowed(row: License, expected_version: int) -> None:
        """Raise ConflictError unless a version may follow ``expected_version``."""
        if row.current_version != expected_version:
            raise StaleVersionError(row.id, row.current_version, expected_version)
        if row.status not in NEW_VERSION_FROM:
            status = LicenseStatus(row.status)
            raise ConflictError(
                f"证照 {row.id} 状态为 {status.value} {status.label}，不能生成新版本",
                fix="只有有效或失效的证照可以变更、延续或换发",
            )
        if row.current_version >= MAX_VERSION:
            raise ConflictError(
                f"证照 {row.id} 已有 {MAX_VERSION} 个版本，电子证照标识的版本号已用尽",
                fix="请注销该证照后重新颁发",
            )

    @staticmethod
    def _new_version_row(
        license: License, version: LicenseVersionCreate, number: int
    ) -> LicenseVersion:
        return LicenseVersion(
            **version.model_dump(),
            license_id=license.id,
            version=number,
            elicense_id=elicense_id_for(license, license.serial, number),
        )

    @staticmethod
    def _flush(session: Session, subject: str) -> None:
        try:
            session.flush()
        except IntegrityError as error:
            raise ConflictError(
                f"{subject} 已存在，登记簿未作改动",
                fix="请重新读取证照后再提交",
            ) from error

    @staticmethod
    def _lock_license(session: Session, license_id: int) -> License:
        statement = (
            select(License)
            .where(License.id == license_id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
        row = session.exec(statement).one_or_none()
        if row is None:
            raise _license_not_found(license_id)
        return row

    def lock_license(self, license_id: int) -> License:
        """Lock a license row until the surrounding transaction ends."""
        with self.transaction() as session:
            return self._lock_license(session, license_id)

    def lock_holder(self, holder_code: str, license_type: str) -> None:
        """Serialise issues for one holder and license type until commit.

        PostgreSQL takes a transaction advisory lock. SQLite needs nothing,
        because its write transactions already run one at a time.
        """
        with self.transaction() as session:
            if session.get_bind().dialect.name != "postgresql":
                return
            key = int.from_bytes(
                hashlib.sha256(f"{holder_code}|{license_type}".encode()).digest()[:8],
                "big",
                signed=True,
            )
            session.execute(sa.select(sa.func.pg_advisory_xact_lock(key)))

    def get_license(self, license_id: int) -> License:
        """Return a license, or raise NotFoundError when it does not exist."""
        with self._reading() as session:
            row = session.get(License, license_id)
        if row is None:
            raise _license_not_found(license_id)
        return row

    def get_version(self, license_id: int, version: int) -> LicenseVersion:
        """Return one version of a license, or raise NotFoundError."""
        statement = select(LicenseVersion).where(
            LicenseVersion.license_id == license_id, LicenseVersion.version == version
        )
        with self._reading() as session:
            row = session.exec(statement).one_or_none()
        if row is None:
            raise NotFoundError(
                f"证照 {license_id} 没有版本 {version}",
                fix="请核对版本号，或先查询该证照的版本列表",
            )
        return row

    def versions_of(self, license_id: int) -> list[LicenseVersion]:
        """Return all versions of a license, oldest first."""
        statement = (
            select(LicenseVersion)
            .where(LicenseVersion.license_id == license_id)
            .order_by(LicenseVersion.version)
        )
        with self._reading() as session:
            return list(session.exec(statement).all())

    def get_version_by_elicense_id(self, elicense_id: str) -> LicenseVersion:
        """Return the version with this identifier, or raise NotFoundError."""
        identifier = normalize_code(elicense_id)
        statement = select(LicenseVersion).where(
            LicenseVersion.elicense_id == identifier
        )
        with self._reading() as session:
            row = session.exec(statement).one_or_none()
        if row is None:
            raise NotFoundError(
                f"登记簿中没有电子证照标识 {identifier}",
                fix="请核对标识是否完整，或向颁发机构核实",
            )
        return row

    def find_version_by_pdf_sha256(self, sha256: str) -> LicenseVersion | None:
        """Return the version whose issued PDF has this SHA-256, if any."""
        statement = (
            select(LicenseVersion)
            .where(LicenseVersion.pdf_sha256 == sha256.lower())
            .order_by(LicenseVersion.id)
        )
        with self._reading() as session:
            return session.exec(statement).first()

    def licenses_by_holder_code(
        self, holder_code: str, page: int = 1, page_size: int = 20
    ) -> Page[License]:
        """Return the licenses of a holder, newest first, one page at a time."""
        _check_page(page, page_size)
        code = normalize_code(holder_code)
        condition = License.holder_code == code
        statement = (
            select(License)
            .where(condition)
            .order_by(License.id.desc())  # type: ignore[union-attr]
            .offset((page - 1) * page_size)
            .limit(page_size)
        )
        with self._reading() as session:
            total = session.exec(select(func.count()).where(condition)).one()
            items = list(session.exec(statement).all())
        return Page(items, total, page, page_size)

    def licenses_by_issuer(
        self,
        issuer_code: str,
        status: LicenseStatus | None = None,
        page: int = 1,
        page_size: int = 20,
    ) -> Page[License]:
        """Return an authority's licenses, newest first, optionally by status."""
        _check_page(page, page_size)
        conditions: list[Any] = [License.issuer_code == normalize_code(issuer_code)]
        if status is not None:
            conditions.append(License.status == LicenseStatus(status))
        statement = (
            select(License)
            .where(*conditions)
            .order_by(License.id.desc())  # type: ignore[union-attr]
            .offset((page - 1) * page_size)
            .limit(page_size)
        )
        with self._reading() as session:
            total = session.exec(
                select(func.count(License.id)).where(*conditions)
            ).one()
            items = list(session.exec(statement).all())
        return Page(items, total, page, page_size)

    def search_licenses(
        self, query: LicenseQuery, page_size: int = 20, after_id: int | None = None
    ) -> SearchPage:
        """Return licenses matching every given filter, newest first.

        Pages are keyed on the license id (pass ``next_after_id`` of a page
        as ``after_id``), so a deep page costs no more than the first. The
        holder-name filter is a substring match (an index scan with pg_trgm
        on PostgreSQL, a table scan on SQLite).
        """
        _check_page(1, page_size)
        statement = select(License).where(*_search_conditions(query))
        if query.issued_from is not None or query.issued_to is not None:
            statement = statement.join(
                LicenseVersion,
                sa.and_(
                    LicenseVersion.license_id == License.id,
                    LicenseVersion.version == License.current_version,
                ),
            ).where(*_issued_conditions(query))
        if after_id is not None:
            statement = statement.where(License.id < after_id)  # type: ignore[operator]
        statement = statement.order_by(
            License.id.desc()  # type: ignore[union-attr]
        ).limit(page_size + 1)
        with self._reading() as session:
            rows = list(session.exec(statement).all())
        more = len(rows) > page_size
        items = rows[:page_size]
        next_after = items[-1].id if more and items else None
        return SearchPage(items, next_after)

    def licenses_past_valid_to(self, today: dt.date, limit: int = 500) -> list[License]:
        """Return valid (有效) licenses whose current version ended before today.

        A job marks them 失效 with ``set_status`` and ``Operation.EXPIRE``.
        """
        statement = (
            select(License)
            .join(
                LicenseVersion,
                sa.and_(
                    LicenseVersion.license_id == License.id,
                    LicenseVersion.version == License.current_version,
                ),
            )
            .where(
                License.status == LicenseStatus.VALID,
                LicenseVersion.valid_to.is_not(None),  # type: ignore[union-attr]
                LicenseVersion.valid_to < today,  # type: ignore[operator]
            )
            .order_by(License.id)
            .limit(limit)
        )
        with self._reading() as session:
            return list(session.exec(statement).all())

    def current_license_of_holder(
        self, holder_code: str, license_type: str
    ) -> License | None:
        """Return the holder's current (有效 or 暂扣) license of a type, if any."""
        current = [status.value for status in LicenseStatus if status.is_current]
        statement = (
            select(License)
            .where(
                License.holder_code == normalize_code(holder_code),
                License.license_type == license_type,
                License.status.in_(current),  # type: ignore[attr-defined]
            )
            .order_by(License.id.desc())  # type: ignore[union-attr]
        )
        with self._reading() as session:
            return session.exec(statement).first()

    def iter_version_blobs(
        self, batch_size: int = 500
    ) -> Iterator[tuple[str, str, int]]:
        """Yield ``(elicense_id, pdf_sha256, pdf_size)`` of every version."""
        last_id = 0
        while True:
            statement = (
                select(
                    LicenseVersion.id,
                    LicenseVersion.elicense_id,
                    LicenseVersion.pdf_sha256,
                    LicenseVersion.pdf_size,
                )
                .where(LicenseVersion.id > last_id)
                .order_by(LicenseVersion.id)
                .limit(batch_size)
            )
            with self._reading() as session:
                rows = session.exec(statement).all()
            if not rows:
                return
            for row_id, elicense_id, sha256, size in rows:
                last_id = row_id
                yield elicense_id, sha256, size

    # --- status and events ----------------------------------------------

    def set_status(
        self,
        license_id: int,
        status: LicenseStatus,
        event: LicenseEventCreate,
    ) -> LicenseEvent:
        """Change a license's status and record the event in one transaction.

        ``event.operation`` must allow the change from the current status
        (see ``models.STATUS_CHANGES``); otherwise ConflictError names both.
        """
        with self.transaction() as session:
            row = self._lock_license(session, license_id)
            _check_status_change(row, event.operation, LicenseStatus(status))
            row.status = LicenseStatus(status)
            session.add(row)
            detail = {**event.detail, "status": LicenseStatus(status).value}
            recorded = self.record_event(
                event.model_copy(update={"license_id": row.id, "detail": detail})
            )
        log.info(
            "license %s status set to %s by %s", license_id, status, event.operation
        )
        return recorded

    def record_event(self, event: LicenseEventCreate) -> LicenseEvent:
        """Append an event as the next leaf of the log. Events are never updated.

        The log lock is held until the surrounding transaction commits, so
        leaves are numbered in commit order without gaps. Take it last, after
        any license or holder lock, so that two transactions never wait on
        each other.
        """
        occurred_at = utc_now()
        fields = event.model_dump()
        fields["operation"] = Operation(fields["operation"])
        leaf_hash = event_leaf_hash(**fields, occurred_at=occurred_at)
        with self.transaction() as session:
            self._lock_log(session)
            log_index = session.execute(
                sa.select(sa.func.coalesce(sa.func.max(LicenseEvent.log_index), -1) + 1)
            ).scalar_one()
            row = LicenseEvent(
                **fields,
                occurred_at=occurred_at,
                leaf_hash=leaf_hash,
                log_index=log_index,
            )
            session.add(row)
            self._flush(session, f"事件 {leaf_hash}")
        return row

    @staticmethod
    def _lock_log(session: Session) -> None:
        # SQLite write transactions already run one at a time.
        if session.get_bind().dialect.name == "postgresql":
            session.execute(sa.select(sa.func.pg_advisory_xact_lock(LOG_LOCK_KEY)))

    def events_of(self, license_id: int) -> list[LicenseEvent]:
        """Return a license's events in the order they were recorded."""
        statement = (
            select(LicenseEvent)
            .where(LicenseEvent.license_id == license_id)
            .order_by(LicenseEvent.id)
        )
        with self._reading() as session:
            return list(session.exec(statement).all())

    def events_after(self, last_id: int = 0, limit: int = 1000) -> list[LicenseEvent]:
        """Return events with an id above ``last_id`` in log order.

        The id order is the order of the leaves for a Merkle log.
        """
        statement = (
            select(LicenseEvent)
            .where(LicenseEvent.id > last_id)  # type: ignore[operator]
            .order_by(LicenseEvent.id)
            .limit(limit)
        )
        with self._reading() as session:
            return list(session.exec(statement).all())

    # --- event log --------------------------------------------------------

    def log_size(self) -> int:
        """Return the number of leaves (events) in the log."""
        with self._reading() as session:
            return session.exec(select(func.count(LicenseEvent.id))).one()

    def iter_log(
        self, size: int | None = None, batch_size: int = 2000
    ) -> Iterator[LicenseEvent]:
        """Yield the events in log order, the first ``size`` of them if given."""
        position = 0
        while size is None or position < size:
            limit = batch_size if size is None else min(batch_size, size - position)
            statement = (
                select(LicenseEvent)
                .where(LicenseEvent.log_index >= position)
                .order_by(LicenseEvent.log_index)
                .limit(limit)
            )
            with self._reading() as session:
                rows = list(session.exec(statement).all())
            if not rows:
                return
            yield from rows
            position = rows[-1].log_index + 1

    def iter_leaf_hashes(
        self, size: int | None = None, batch_size: int = 20_000
    ) -> Iterator[str]:
        """Yield the leaf hashes in log order, the first ``size`` of them if given."""
        position = 0
        while size is None or position < size:
            limit = batch_size if size is None else min(batch_size, size - position)
            statement = (
                sa.select(LicenseEvent.log_index, LicenseEvent.leaf_hash)
                .where(LicenseEvent.log_index >= position)
                .order_by(LicenseEvent.log_index)
                .limit(limit)
            )
            with self._reading() as session:
                rows = session.execute(statement).all()
            if not rows:
                return
            for _index, leaf_hash in rows:
                yield leaf_hash
            position = rows[-1][0] + 1

    def version_event(self, license_id: int, version: int) -> LicenseEvent:
        """Return the event that issued a version, or raise NotFoundError."""
        operations = [
            Operation.ISSUE,
            Operation.AMEND,
            Operation.RENEW,
            Operation.REPLACE,
        ]
        statement = (
            select(LicenseEvent)
            .where(
                LicenseEvent.license_id == license_id,
                LicenseEvent.version == version,
                LicenseEvent.operation.in_(operations),  # type: ignore[attr-defined]
            )
            .order_by(LicenseEvent.log_index)
        )
        with self._reading() as session:
            row = session.exec(statement).first()
        if row is None:
            raise NotFoundError(
                f"事件日志中没有证照 {license_id} 版本 {version} 的签发记录",
                fix="请核对证照编号和版本号",
            )
        return row

    def add_checkpoint(self, checkpoint: LogCheckpoint) -> LogCheckpoint:
        """Store a signed checkpoint. Checkpoints are never updated."""
        with self.transaction() as session:
            session.add(checkpoint)
            session.flush()
        log.info("stored log checkpoint at size %s", checkpoint.tree_size)
        return checkpoint

    def latest_checkpoint(self) -> LogCheckpoint | None:
        statement = select(LogCheckpoint).order_by(
            LogCheckpoint.tree_size.desc(),  # type: ignore[attr-defined]
            LogCheckpoint.id.desc(),  # type: ignore[union-attr]
        )
        with self._reading() as session:
            return session.exec(statement).first()

    def checkpoint_at(self, tree_size: int) -> LogCheckpoint | None:
        """Return the first checkpoint stored for a tree size, if any."""
        statement = (
            select(LogCheckpoint)
            .where(LogCheckpoint.tree_size == tree_size)
            .order_by(LogCheckpoint.id)
        )
        with self._reading() as session:
            return session.exec(statement).first()

    def checkpoints(self) -> list[LogCheckpoint]:
        """Return every checkpoint, smallest tree first."""
        statement = select(LogCheckpoint).order_by(
            LogCheckpoint.tree_size, LogCheckpoint.id
        )
        with self._reading() as session:
            return list(session.exec(statement).all())

    def iter_licenses(self, batch_size: int = 1000) -> Iterator[License]:
        """Yield every license in id order."""
        last_id = 0
        while True:
            statement = (
                select(License)
                .where(License.id > last_id)  # type: ignore[operator]
                .order_by(License.id)
                .limit(batch_size)
            )
            with self._reading() as session:
                rows = list(session.exec(statement).all())
            if not rows:
                return
            yield from rows
            last_id = rows[-1].id  # type: ignore[assignment]

    # --- idempotency ----------------------------------------------------

    def find_idempotency_key(
        self, key: str, authority_code: str, request_hash: str
    ) -> IdempotencyKey | None:
        """Return the stored result for a key, or None for a new key.

        Raises ConflictError when the key was used for a different request.
        """
        with self._reading() as session:
            row = session.get(IdempotencyKey, (key, authority_code))
        if row is not None and row.request_hash != request_hash:
            raise ConflictError(
                f"幂等键 {key} 已用于另一个不同内容的请求",
                fix="重试同一请求时请原样提交；新请求请使用新的幂等键",
            )
        return row

    def store_idempotency_key(
        self,
        key: str,
        authority_code: str,
        request_hash: str,
        license_id: int,
        version: int,
    ) -> IdempotencyKey:
        """Store the result of a request, or raise ConflictError if the key exists."""
        row = IdempotencyKey(
            key=key,
            authority_code=authority_code,
            request_hash=request_hash,
            license_id=license_id,
            version=version,
        )
        with self.transaction() as session:
            session.add(row)
            self._flush(session, f"幂等键 {key}")
        return row

    # --- API clients and audit ------------------------------------------

    def create_api_client(self, client: ApiClientCreate) -> ApiClient:
        """Insert an API client, or raise ConflictError when the key hash exists."""
        row = ApiClient(**client.model_dump())
        with self.transaction() as session:
            session.add(row)
            self._flush(session, "该 API 密钥")
        log.info("created API client %s (%s)", row.id, row.kind)
        return row

    def find_api_client_by_key_hash(self, api_key_hash: str) -> ApiClient | None:
        """Return the enabled client with this key hash, or None."""
        return self.point_reader.enabled_api_client(api_key_hash)

    def disable_api_client(self, client_id: int) -> None:
        """Disable a client so its key no longer authenticates."""
        with self.transaction() as session:
            row = session.get(ApiClient, client_id)
            if row is None:
                raise NotFoundError(f"API 客户端 {client_id} 不存在")
            row.disabled = True
            session.add(row)
        log.info("disabled API client %s", client_id)

    def add_audit(
        self, entry: AgencyQueryAuditCreate, *, wait: bool = True
    ) -> AgencyQueryAudit:
        """Record one agency query with its purpose and result count.

        Inside an open transaction the row joins it; otherwise it is one
        autocommit insert, which keeps the busy query path short. With
        ``wait=False`` that insert raises WriteLockBusy instead of waiting
        for another process's write lock.
        """
        row = AgencyQueryAudit(**entry.model_dump())
        if self._active.get() is None:
            row.id = self._audit.append(row, wait=wait)
            return row
        with self.transaction() as session:
            session.add(row)
            session.flush()
        return row

    def search_audit(
        self,
        *,
        client_id: int | None = None,
        since: dt.datetime | None = None,
        until: dt.datetime | None = None,
        page: int = 1,
        page_size: int = 50,
    ) -> Page[AgencyQueryAudit]:
        """Return audit rows, newest first, filtered by client and time."""
        _check_page(page, page_size)
        conditions: list[Any] = []
        if client_id is not None:
            conditions.append(AgencyQueryAudit.client_id == client_id)
        if since is not None:
            conditions.append(AgencyQueryAudit.queried_at >= since)
        if until is not None:
            conditions.append(AgencyQueryAudit.queried_at < until)
        statement = (
            select(AgencyQueryAudit)
            .where(*conditions)
            .order_by(AgencyQueryAudit.id.desc())  # type: ignore[union-attr]
            .offset((page - 1) * page_size)
            .limit(page_size)
        )
        with self._reading() as session:
            total = session.exec(
                select(func.count(AgencyQueryAudit.id)).where(*conditions)
            ).one()
            items = list(session.exec(statement).all())
        return Page(items, total, page, page_size)


def _check_status_change(
    row: License, operation: Operation, status: LicenseStatus
) -> None:
    sources, targets = STATUS_CHANGES.get(
        Operation(operation), (frozenset(), frozenset())
    )
    current = LicenseStatus(row.status)
    if current.value in sources and status.value in targets:
        return
    raise ConflictError(
        f"证照 {row.id} 状态为 {current.value} {current.label}，"
        f"操作 {operation} 不能将其改为 {status.value} {status.label}",
        fix="请先查询证照当前状态，再选择适用的操作",
    )


def _search_conditions(query: LicenseQuery) -> list[Any]:
    conditions: list[Any] = []
    if query.holder_code:
        conditions.append(License.holder_code == normalize_code(query.holder_code))
    if query.issuer_code:
        conditions.append(License.issuer_code == normalize_code(query.issuer_code))
    if query.status is not None:
        conditions.append(License.status == LicenseStatus(query.status))
    if query.holder_name:
        pattern = "%" + _escape_like(query.holder_name.strip()) + "%"
        holder_name: Any = License.holder_name
        conditions.append(holder_name.ilike(pattern, escape="\\"))
    if query.elicense_id:
        versions = select(LicenseVersion.license_id).where(
            LicenseVersion.elicense_id == normalize_code(query.elicense_id)
        )
        conditions.append(License.id.in_(versions))  # type: ignore[union-attr]
    return conditions


def _issued_conditions(query: LicenseQuery) -> list[Any]:
    conditions: list[Any] = []
    if query.issued_from is not None:
        conditions.append(LicenseVersion.issued_on >= query.issued_from)
    if query.issued_to is not None:
        conditions.append(LicenseVersion.issued_on <= query.issued_to)
    return conditions


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _check_page(page: int, page_size: int) -> None:
    if page < 1:
        raise InputError(
            "页码应从 1 开始", field="page", value=page, fix="请传入 page ≥ 1"
        )
    if not 1 <= page_size <= MAX_PAGE_SIZE:
        raise InputError(
            f"每页条数应在 1 至 {MAX_PAGE_SIZE} 之间",
            field="page_size",
            value=page_size,
            fix=f"请传入 1 至 {MAX_PAGE_SIZE} 之间的 page_size",
        )


def _license_not_found(license_id: int) -> NotFoundError:
    return NotFoundError(
        f"登记簿中没有编号为 {license_id} 的证照",
        fix="请核对证照编号",
    )
