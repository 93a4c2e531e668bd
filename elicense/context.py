"""The service context: every long-lived object the CLI and the web app use.

Built once per process. Verification objects are built at once; the issuing
stack (keys, signers, timestamper) only when something is issued, so a pure
verifier deployment never reads the key passphrase.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path
from typing import Any

from starlette.concurrency import run_in_threadpool

from common.errors import InputError, NotFoundError, PermissionDeniedError
from elicense.issuing import IssuingStack
from elicense.settings import Settings
from elicense.web.auth import ApiClientIdentity, RateLimiter, hash_api_key, new_api_key
from license_store.dbblobs import open_blob_store
from license_store.db import create_engine_for, migrate
from common.authority import AuthorityRegistry
from common.codes import validate_uscc
from license_store.models import AgencyQueryAuditCreate, ApiClientCreate, ClientKind
from license_store.repository import Repository
from templates import load_catalogue
from verifier.limits import VerificationLimits
from verifier.pdf_check import PdfVerifier
from verifier.qr_check import QrResult, QrVerifier, Signal
from verifier.register_lookup import RepositoryLookup
from verifier.trustlist import TRUST_LIST_FILE, TrustList
from verifier.verdict import LicenseFacts, Verdict

logger = logging.getLogger(__name__)


MAX_CA_NAME_CHARS = 64
SCOPE_PREFIXES = ("license_type:", "field:")
SCOPE_WORDS = ("id_numbers", "supervisor")
CITIZEN_ID_TYPE = "111"


class ServiceContext:
    """Register, blob store, catalogue, trust list and verifiers of one data dir."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.data_dir = settings.data_dir
        _require_initialised(self.data_dir)
        self.engine = create_engine_for(settings.resolved_database_url)
        self.repository = Repository(self.engine)
        self.blobs = open_blob_store(settings.blob_store, self.data_dir / "blobs", self.engine)
        self.catalogue = load_catalogue()
        self.trust = TrustList.load(
            self.data_dir / "trust", crl_dir=self.data_dir / "pki" / "crl"
        )
        titles = {name: self.catalogue.get(name).title for name in self.catalogue.types()}
        self.lookup = RepositoryLookup(self.repository, titles)
        limits = VerificationLimits(
            max_bytes=settings.max_upload_bytes,
            max_revisions=settings.max_pdf_revisions,
            max_objects=settings.max_pdf_objects,
            max_seconds=settings.verify_seconds_budget,
            isolate=settings.verify_in_worker,
        )
        self.pdf_verifier = PdfVerifier(self.trust, self.lookup, limits)
        self.offline_pdf_verifier = PdfVerifier(self.trust, None, limits)
        # Uploads come from anyone, so over HTTP each file is verified in a
        # worker process killed at the time budget, whatever the setting.
        self.upload_pdf_verifier = PdfVerifier(
            self.trust, self.lookup, replace(limits, isolate=True)
        )
        self.qr_verifier = QrVerifier(self.trust, self.lookup)
        self.rate_limiter = RateLimiter(settings.agency_requests_per_minute)
        self._issuing: IssuingStack | None = None

    # --- readiness ----------------------------------------------------------

    def check_ready(self) -> None:
        """Bring the schema up to date; raise when the register is unusable."""
        migrate(self.settings.resolved_database_url)

    @property
    def issuing(self) -> IssuingStack:
        if self._issuing is None:
            self._issuing = IssuingStack(self)
        return self._issuing

    # --- verification -------------------------------------------------------

    def verify_pdf_sync(self, data: bytes, *, offline: bool = False) -> Verdict:
        verifier = self.offline_pdf_verifier if offline else self.pdf_verifier
        return verifier.verify(data)

    async def verify_pdf(self, data: bytes) -> Verdict:
        # pyhanko's synchronous validation starts its own event loop, so it
        # runs in a worker thread rather than inside the server's loop.
        return await run_in_threadpool(self.upload_pdf_verifier.verify, data)

    def holder_code_type(self, facts: LicenseFacts | None) -> str:
        if facts is None or facts.license_type is None:
            return "001"
        return self.catalogue.get(facts.license_type).holder_code_type

    def status_page_result(self, elicense_id: str) -> QrResult:
        facts = self.lookup.facts_for_elicense_id(elicense_id)
        if facts is None:
            raise NotFoundError(f"登记库中没有电子证照标识 {elicense_id}")
        current = facts.register_status == "01" and facts.current_version == facts.version
        signal = Signal.GREEN if current else Signal.AMBER
        headline = "证照现行有效" if current else f"证照状态：{facts.register_status_label}"
        return QrResult(signal, headline, (), True, None, facts)

    # --- issuing ------------------------------------------------------------

    def issue_file(self, path: Path, *, out_dir: Path | None, operator: str):
        return self.issuing.issue_file(path, out_dir=out_dir, operator=operator)

    def issue_record(
        self,
        record: dict[str, Any],
        *,
        operator: str,
        idempotency_key: str | None,
        new_on_purpose: bool,
    ) -> dict[str, Any]:
        return self.issuing.issue_record(
            record,
            operator=operator,
            idempotency_key=idempotency_key,
            new_on_purpose=new_on_purpose,
        )

    def first_verify_url(self) -> str | None:
        return self.issuing.first_verify_url()

    # --- PKI endpoints ------------------------------------------------------

    def pki_file(self, kind: str, name: str) -> bytes:
        # CA file names are short ASCII words such as "issuing-ca".
        if len(name) > MAX_CA_NAME_CHARS or not name.replace("-", "").isascii() or not (
            name.replace("-", "").isalnum()
        ):
            raise NotFoundError(f"没有名为 {name[:40]} 的 CA")
        folder = {"crl": "crl", "cer": "ca"}[kind]
        path = self.data_dir / "pki" / folder / f"{name}.{kind}"
        if not path.is_file():
            raise NotFoundError(f"没有名为 {name} 的 CA 文件")
        return path.read_bytes()

    def answer_ocsp(self, body: bytes) -> bytes:
        return self.issuing.answer_ocsp(body)

    async def answer_timestamp(self, body: bytes) -> bytes | None:
        return await run_in_threadpool(self.issuing.answer_timestamp, body)

    # --- API clients and agency queries -------------------------------------

    def create_api_client(
        self, name: str, kind: str, authority: str | None, scopes: list[str]
    ) -> str:
        _check_client_request(name, kind, authority, scopes)
        known = self.catalogue.types()
        for scope in scopes:
            if scope.startswith("license_type:") and scope.split(":", 1)[1] not in known:
                raise InputError(
                    f"查询范围中的证照类型 {scope.split(':', 1)[1]} 不存在",
                    field="scope",
                    value=scope,
                    fix=f"可用的证照类型：{'、'.join(known)}",
                )
        if authority is not None:
            authority = AuthorityRegistry.load().get(validate_uscc(authority, "authority")).code
        key = new_api_key()
        self.repository.create_api_client(
            ApiClientCreate(
                name=name,
                kind=ClientKind(kind),
                authority_code=authority,
                scopes=scopes,
                api_key_hash=hash_api_key(key),
            )
        )
        logger.info("created API client name=%s kind=%s", name, kind)
        return key

    def find_client(self, key_hash: str) -> ApiClientIdentity | None:
        row = self.repository.find_api_client_by_key_hash(key_hash)
        if row is None or row.disabled:
            return None
        return identity_from_scopes(row.id, row.name, row.kind, row.authority_code, row.scopes)

    def query_licenses(
        self,
        client: ApiClientIdentity,
        holder_code: str,
        purpose: str,
        page: int,
        page_size: int,
    ) -> dict[str, Any]:
        from elicense.queries import query_by_holder_code

        return query_by_holder_code(self, client, holder_code, purpose, page, page_size)

    def license_metadata(self, client: ApiClientIdentity, elicense_id: str) -> dict[str, Any]:
        from elicense.queries import metadata_for

        return metadata_for(self, client, elicense_id)

    def license_pdf(self, client: ApiClientIdentity, elicense_id: str) -> bytes:
        version = self.repository.get_version_by_elicense_id(elicense_id)
        license = self.repository.get_license(version.license_id)
        if client.kind == "bureau" and client.authority_code != license.issuer_code:
            raise PermissionDeniedError("只能下载本机构签发的证照")
        if client.kind != "bureau":
            _check_agency_may_download(client, license.license_type, license.holder_code_type)
        data = self.blobs.get(version.pdf_sha256)
        if client.kind != "bureau":
            self._audit_download(client, version.elicense_id)
        return data

    def _audit_download(self, client: ApiClientIdentity, elicense_id: str) -> None:
        self.repository.add_audit(
            AgencyQueryAuditCreate(
                client_id=client.client_id,
                purpose="下载证照 PDF",
                query={"elicense_id": elicense_id, "operation": "pdf"},
                result_count=1,
            )
        )

    def search_audit(
        self, client: ApiClientIdentity, agency: str | None, page: int, page_size: int
    ) -> dict[str, Any]:
        from elicense.queries import search_audit

        return search_audit(self, client, agency, page, page_size)


def identity_from_scopes(
    client_id: int, name: str, kind: str, authority_code: str | None, scopes: list[str]
) -> ApiClientIdentity:
    """Read ``license_type:X``, ``field:Y``, ``id_numbers`` and ``supervisor``."""
    types = tuple(s.split(":", 1)[1] for s in scopes if s.startswith("license_type:"))
    fields = tuple(s.split(":", 1)[1] for s in scopes if s.startswith("field:"))
    return ApiClientIdentity(
        client_id=client_id,
        name=name,
        kind="supervisor" if "supervisor" in scopes else str(kind),
        authority_code=authority_code,
        license_types=types or ("*",),
        fields=fields or ("*",),
        may_see_id_numbers="id_numbers" in scopes,
    )


def _check_agency_may_download(
    client: ApiClientIdentity, license_type: str, holder_code_type: str
) -> None:
    if not client.may_see_type(license_type):
        raise PermissionDeniedError(f"查询范围不含证照类型 {license_type}")
    # The face of a person-held license prints the full citizen ID number.
    if holder_code_type == CITIZEN_ID_TYPE and not client.may_see_id_numbers:
        raise PermissionDeniedError(
            "该证照载有公民身份号码，查询范围不含 id_numbers，不能下载原件",
            fix="请改用元数据接口（号码已打码），或申请 id_numbers 查询范围",
        )


def _check_client_request(
    name: str, kind: str, authority: str | None, scopes: list[str]
) -> None:
    if not name.strip():
        raise InputError("客户端名称不能为空", field="name", value=name, fix="请用 --name 指定")
    if kind == "bureau" and not authority:
        raise InputError(
            "发证机关客户端必须指定机构代码", field="authority", fix="请加 --authority CODE"
        )
    if kind == "agency" and authority:
        raise InputError(
            "查询部门客户端不属于发证机关", field="authority", value=authority,
            fix="查询部门请不要加 --authority",
        )
    for scope in scopes:
        if scope not in SCOPE_WORDS and not scope.startswith(SCOPE_PREFIXES):
            raise InputError(
                f"未知的查询范围 {scope}",
                field="scope",
                value=scope,
                fix="可用 license_type:TYPE、field:NAME、id_numbers、supervisor",
            )


def _require_initialised(data_dir: Path) -> None:
    if not (data_dir / "trust" / TRUST_LIST_FILE).exists():
        raise NotFoundError(
            f"数据目录 {data_dir} 尚未初始化",
            fix=f"请先运行 elicense init --data-dir {data_dir}",
        )
