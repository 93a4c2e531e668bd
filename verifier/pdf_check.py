"""Verify a license PDF in seven numbered steps.

The steps run in a fixed order and each one records what it found. A step
that cannot run because an earlier one failed is recorded as skipped, so a
caller always sees the whole procedure.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import datetime

from asn1crypto import cms, tsp, x509
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.misc import PdfError
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.diff_analysis import ModificationLevel
from pyhanko.sign.fields import MDPPerm
from pyhanko.sign.validation import (
    EmbeddedPdfSignature,
    SignatureCoverageLevel,
    validate_pdf_signature,
)
from pyhanko.sign.validation.errors import SignatureValidationError
from pyhanko.sign.validation.generic_cms import extract_message_digest
from pyhanko.sign.validation.status import PdfSignatureStatus

from verifier import pdf_hex
from verifier.certs import organization_code_of
from verifier.isolation import WorkerFailed, call_with_deadline
from verifier.limits import VerificationLimits
from verifier.prechecks import precheck_problem
from verifier.register import RegisterLookup
from verifier.register_match import (
    RegisterMatch,
    match_registered_prefix,
    match_whole_file,
    prefetch,
)
from verifier.trustlist import TrustList
from verifier.validation_data import read_validation_data
from verifier.verdict import (
    LicenseFacts,
    Outcome,
    SignerFacts,
    StepResult,
    StepStatus,
    Verdict,
    bottom_line,
)

logger = logging.getLogger(__name__)

# pyhanko reads the signature's /Contents hex string one byte per Python
# call. Readers opened on FastHexBytesIO read it with the same result in a
# few C calls instead.
pdf_hex.install()

STEP_TITLES = {
    "parse": "安全解析文件",
    "signatures": "查找签名和文档时间戳",
    "integrity": "签名完整性",
    "trust": "证书链、吊销状态和时间戳",
    "changes": "签名后的修改",
    "seal": "印章与颁发机构",
    "register": "登记库比对和证照状态",
}
STEP_NUMBERS = {name: number for number, name in enumerate(STEP_TITLES, start=1)}

# Exceptions that pyhanko and asn1crypto raise on malformed or hostile input.
MALFORMED_INPUT_ERRORS = (
    PdfError,
    SignatureValidationError,
    ValueError,
    KeyError,
    TypeError,
    IndexError,
    AttributeError,
    OverflowError,
    RecursionError,
)


@dataclass
class _Run:
    """Mutable state of one verification while its steps run."""

    data: bytes
    started: float
    steps: list[StepResult]
    reader: PdfFileReader | None = None
    signature: EmbeddedPdfSignature | None = None
    status: PdfSignatureStatus | None = None
    signer: SignerFacts | None = None
    facts: LicenseFacts | None = None
    # Generation time of the signature timestamp token, read in step 3.
    timestamp_time: datetime | None = None
    # License facts in the signed revision's document information.
    document_facts: LicenseFacts | None = None
    document_read: bool = False
    # The register version, looked up once for steps 6 and 7.
    register_match: RegisterMatch | None = None
    register_checked: bool = False

    def record(self, name: str, status: StepStatus, *reasons: str) -> None:
        self.steps.append(
            StepResult(STEP_NUMBERS[name], name, STEP_TITLES[name], status, reasons)
        )

    def passed(self, name: str) -> bool:
        return any(
            step.name == name and step.status == StepStatus.PASSED
            for step in self.steps
        )


class PdfVerifier:
    """Verify license PDFs against a trust list and, optionally, the register."""

    def __init__(
        self,
        trust: TrustList,
        register: RegisterLookup | None = None,
        limits: VerificationLimits | None = None,
        *,
        fetch_revocation: bool = False,
    ) -> None:
        self.trust = trust
        self.register = register
        self.limits = limits or VerificationLimits()
        # Online mode: fetch a CA's CRL from its distribution point when the
        # embedded validation data and the locally known CRLs do not settle
        # revocation. Fetching runs inside the worker, under the deadline.
        self.fetch_revocation = fetch_revocation

    def verify(self, data: bytes) -> Verdict:
        """Verify one document and return the verdict; never raise on bad input.

        Steps:
        1. parse the file within the size, revision and object limits;
        2. find every signature and document timestamp;
        3. check the integrity of each signature;
        4. build the certificate path to a recognised CA, check revocation
           (embedded validation data first) and the signature timestamp;
        5. reject any change after signing other than validation data and
           document timestamps;
        6. check that the signing seal belongs to the authority named on the
           license and that the authority may issue this license type;
        7. find the registered version that this document is, or that it
           starts with when only validation data or document timestamps were
           appended later, and its status.
        """
        problem = precheck_problem(data, self.limits)
        if problem is not None:
            return _rejected_verdict(problem)
        lookup = prefetch(self.register, data, self.limits.max_revisions)
        checker = PdfVerifier(
            self.trust, lookup, self.limits, fetch_revocation=self.fetch_revocation
        )
        if not self.limits.isolate:
            return checker.verify_steps(data)
        try:
            finished = call_with_deadline(
                checker.verify_steps,
                (data,),
                self.limits.max_seconds,
                self.limits.max_worker_memory_bytes,
            )
        except WorkerFailed as error:
            logger.warning("verification worker failed: %s", error)
            return _rejected_verdict("文件无法处理：解析时耗尽资源或出现异常")
        if finished is None:
            return _timed_out_verdict(self.limits.max_seconds)
        return finished.value

    def verify_steps(self, data: bytes) -> Verdict:
        """Run the seven steps in this process, with no hard deadline."""
        run = _Run(data=data, started=time.monotonic(), steps=[])
        phases = (
            self._parse,
            self._find_signatures,
            self._check_integrity,
            self._check_trust,
            self._check_changes,
            self._check_seal,
            self._check_register,
        )
        for name, phase in zip(STEP_TITLES, phases):
            blocked = self._blocked(run, name)
            if blocked is not None:
                run.record(name, *blocked)
                continue
            try:
                phase(run)
            except MALFORMED_INPUT_ERRORS as error:
                logger.info("verification step %s rejected input: %r", name, error)
                run.record(name, StepStatus.FAILED, f"文件结构异常，无法处理：{error}")
            except Exception:  # noqa: BLE001 - hostile files reach library corners
                logger.exception("verification step %s failed unexpectedly", name)
                run.record(name, StepStatus.FAILED, "文件无法按 PDF 签名规范处理")
        if run.signer is None and run.passed("integrity"):
            run.signer = _signer_facts_if_readable(run)
        outcome = bottom_line(run.steps)
        return Verdict(outcome, tuple(run.steps), run.facts, run.signer)

    def _blocked(self, run: _Run, name: str) -> tuple[StepStatus, str] | None:
        if any(step.status == StepStatus.FAILED for step in run.steps[:3]):
            return StepStatus.SKIPPED, "前序步骤未通过，本步骤未执行"
        if time.monotonic() - run.started > self.limits.max_seconds:
            budget = self.limits.max_seconds
            reason = f"验证超过时间预算 {budget} 秒，本步骤未执行"
            return StepStatus.INDETERMINATE, reason
        # Steps 5 and 6 read pyhanko's status, which step 4 did not produce
        # when pyhanko raised on the file. Step 4 then failed already.
        if name in ("changes", "seal") and run.status is None:
            return StepStatus.SKIPPED, "签名验证未完成，本步骤未执行"
        return None

    # Step 1
    def _parse(self, run: _Run) -> None:
        limits = self.limits
        problem = precheck_problem(run.data, limits)
        if problem is not None:
            run.record("parse", StepStatus.FAILED, problem)
            return
        reader = PdfFileReader(pdf_hex.FastHexBytesIO(run.data), strict=False)
        if reader.encrypted:
            run.record("parse", StepStatus.FAILED, "文件已加密，证照文件不得加密")
            return
        try:
            object_count = int(reader.trailer["/Size"])
        except KeyError:
            object_count = 0
        if object_count > limits.max_objects:
            run.record(
                "parse",
                StepStatus.FAILED,
                f"对象数 {object_count} 超过上限 {limits.max_objects}",
            )
            return
        run.reader = reader
        run.record(
            "parse",
            StepStatus.PASSED,
            f"{reader.xrefs.total_revisions} 个修订版本，{object_count} 个对象",
        )

    # Step 2
    def _find_signatures(self, run: _Run) -> None:
        assert run.reader is not None
        signatures = run.reader.embedded_regular_signatures
        timestamps = run.reader.embedded_timestamp_signatures
        if not signatures:
            run.record("signatures", StepStatus.FAILED, "文件中没有电子签名")
            return
        if len(signatures) > 1:
            run.record(
                "signatures",
                StepStatus.FAILED,
                f"证照只应有一个签章，文件中有 {len(signatures)} 个",
            )
            return
        run.signature = signatures[0]
        if run.signature.docmdp_level is None:
            run.record("signatures", StepStatus.FAILED, "签名不是证照要求的认证签名（DocMDP）")
            return
        run.record(
            "signatures",
            StepStatus.PASSED,
            f"1 个认证签名，{len(timestamps)} 个文档时间戳",
        )

    # Step 3
    def _check_integrity(self, run: _Run) -> None:
        assert run.signature is not None
        signature = run.signature
        digest_ok = signature.compute_digest() == extract_message_digest(
            signature.signer_info
        )
        if not digest_ok:
            run.record("integrity", StepStatus.FAILED, "签名覆盖的内容已被修改（摘要不符）")
            return
        if signature.evaluate_signature_coverage() < SignatureCoverageLevel.ENTIRE_REVISION:
            run.record(
                "integrity",
                StepStatus.FAILED,
                "签名的字节范围（/ByteRange）未完整覆盖所在修订版本",
            )
            return
        run.timestamp_time = _signature_timestamp_time(signature)
        run.record("integrity", StepStatus.PASSED, "签名覆盖的内容未被修改")

    # Step 4
    def _check_trust(self, run: _Run) -> None:
        assert run.reader is not None and run.signature is not None
        timestamp_time = run.timestamp_time
        # The signature is validated at its timestamp's time, the timestamp
        # token at the present time. Both contexts come from one reading of
        # the trust list and the document's DSS. pyhanko reuses the digest
        # computed in step 3 (EmbeddedPdfSignature caches it).
        validation_data = read_validation_data(
            run.reader, self.trust, allow_fetching=self.fetch_revocation
        )
        status = validate_pdf_signature(
            run.signature,
            signer_validation_context=validation_data.context(timestamp_time),
            ts_validation_context=validation_data.context(None),
        )
        # The signer certificate as pyhanko identified it. Reading it from the
        # signature in step 3 would repeat pyhanko's certificate matching
        # (measured at about 3 ms per license on the 2-core development VM).
        run.signer = _signer_facts(status.signing_cert, run.signature, timestamp_time)
        run.status = status
        reasons: list[str] = []
        if not status.intact or not status.valid:
            run.record("trust", StepStatus.FAILED, "签名值与签名证书不符")
            return
        if status.revoked:
            run.record("trust", StepStatus.FAILED, "签名证书在签名时间之前已被吊销")
            return
        if not status.trusted:
            detail = _path_error(status)
            run.record(
                "trust",
                StepStatus.FAILED,
                f"签名证书不能链接到受信任的 CA：{detail}",
            )
            return
        if timestamp_time is None or status.timestamp_validity is None:
            run.record("trust", StepStatus.INDETERMINATE, "签名没有可信时间戳，无法确定签名时间")
            return
        if not (status.timestamp_validity.intact and status.timestamp_validity.trusted):
            run.record("trust", StepStatus.FAILED, "签名时间戳无效或不受信任")
            return
        withdrawn = self.trust.withdrawal_before(status.validation_path, timestamp_time)
        if withdrawn:
            run.record("trust", StepStatus.FAILED, withdrawn)
            return
        reasons.append(f"受信任的 CA：{self.trust.ca_name_for(status.validation_path)}")
        reasons.append(f"签名时间（时间戳）：{timestamp_time.isoformat()}")
        run.record("trust", StepStatus.PASSED, *reasons)

    # Step 5
    def _check_changes(self, run: _Run) -> None:
        assert run.status is not None
        status = run.status
        level = status.modification_level
        if status.coverage == SignatureCoverageLevel.ENTIRE_FILE:
            run.record("changes", StepStatus.PASSED, "签名覆盖整个文件，签名后无修改")
            return
        if level is not None and level <= ModificationLevel.LTA_UPDATES:
            run.record(
                "changes",
                StepStatus.PASSED,
                "签名后仅追加了验证数据或文档时间戳",
            )
            return
        permitted = run.signature.docmdp_level if run.signature else None
        reason = "签名后文件被修改（追加的修订改变了页面、注释或表单）"
        if permitted == MDPPerm.NO_CHANGES:
            reason += "；认证签名不允许任何修改"
        run.record("changes", StepStatus.FAILED, reason)

    # Step 6
    def _check_seal(self, run: _Run) -> None:
        assert run.signer is not None and run.status is not None
        facts = self._license_facts(run)
        run.facts = facts
        if facts is None or facts.authority_code is None:
            run.record(
                "seal",
                StepStatus.INDETERMINATE,
                "无法确定证照上的颁发机构，不能核对印章归属",
            )
            return
        if run.signer.organization_code != facts.authority_code:
            run.record(
                "seal",
                StepStatus.FAILED,
                f"签章单位代码 {run.signer.organization_code} 与证照颁发机构代码 "
                f"{facts.authority_code} 不一致",
            )
            return
        refusal = self.trust.scope_refusal(
            run.status.validation_path, facts.license_type, facts.authority_code
        )
        if refusal:
            run.record("seal", StepStatus.FAILED, refusal)
            return
        run.record(
            "seal",
            StepStatus.PASSED,
            f"印章属于颁发机构 {facts.authority_name or facts.authority_code}",
        )

    def _license_facts(self, run: _Run) -> LicenseFacts | None:
        match = self._register_match(run)
        if match is not None:
            return match.facts
        return _document_facts(run)

    def _register_match(self, run: _Run) -> RegisterMatch | None:
        """Look the document up in the register once, for steps 6 and 7.

        A file that is not registered as a whole may be a registered license
        with validation data or timestamps appended later, see
        ``match_registered_prefix`` for the rule.
        """
        if run.register_checked or self.register is None:
            return run.register_match
        assert run.signature is not None
        run.register_checked = True
        run.register_match = match_whole_file(self.register, run.data)
        if run.register_match is not None:
            return run.register_match
        document = _document_facts(run)
        _, _, second_start, second_length = run.signature.byte_range
        run.register_match = match_registered_prefix(
            self.register,
            run.data,
            signed_end=int(second_start) + int(second_length),
            elicense_id=document.elicense_id if document else None,
            only_validation_data_appended=run.passed("changes"),
            max_revisions=self.limits.max_revisions,
        )
        return run.register_match

    # Step 7
    def _check_register(self, run: _Run) -> None:
        if self.register is None:
            run.record("register", StepStatus.SKIPPED, "未连接证照登记库，未比对登记版本")
            return
        match = self._register_match(run)
        foreign = self._foreign_ca_name(run)
        if match is None and foreign is not None:
            run.record(
                "register",
                StepStatus.WARNING,
                f"证照由互认 CA「{foreign}」签发，本地登记库不含外地证照",
                "证照的现行状态请向颁发机构或其核验服务确认",
            )
            return
        if match is None:
            run.record(
                "register",
                StepStatus.FAILED,
                "文件与登记库中的任何证照版本都不一致",
            )
            return
        run.facts = match.facts
        status, reasons = _register_status_step(match.facts)
        appended = len(run.data) - match.registered_bytes
        if appended:
            reasons += (
                f"登记版本之后追加了 {appended} 字节的修订，"
                "仅含验证数据、文档时间戳或文档元数据",
            )
        run.record("register", status, *reasons)

    def _foreign_ca_name(self, run: _Run) -> str | None:
        path = run.status.validation_path if run.status is not None else None
        ca = self.trust.ca_of_path(path)
        return ca.name if ca is not None and ca.imported_from else None


def _register_status_step(facts: LicenseFacts) -> tuple[StepStatus, tuple[str, ...]]:
    label = facts.register_status_label or facts.register_status or "未知"
    base = f"与登记版本 {facts.version:03d} 一致" if facts.version else "与登记版本一致"
    if facts.register_status == "01" and facts.current_version == facts.version:
        return StepStatus.PASSED, (base, f"证照状态：{label}（现行版本）")
    if facts.register_status == "01":
        return StepStatus.FAILED, (
            base,
            f"该版本已被第 {facts.current_version:03d} 版取代",
        )
    when = f"，变更时间 {facts.status_changed_at}" if facts.status_changed_at else ""
    return StepStatus.FAILED, (base, f"证照状态：{label}{when}")


def _signer_facts(
    cert: x509.Certificate,
    signature: EmbeddedPdfSignature,
    timestamp_time: datetime | None,
) -> SignerFacts:
    self_reported = signature.self_reported_timestamp
    return SignerFacts(
        subject=cert.subject.human_friendly,
        organization_code=organization_code_of(cert),
        issuer=cert.issuer.human_friendly,
        serial_number=format(cert.serial_number, "x"),
        sha256_fingerprint=cert.sha256.hex(),
        signing_time=self_reported.isoformat() if self_reported else None,
        timestamp_time=_isoformat(timestamp_time),
    )


def _signer_facts_if_readable(run: _Run) -> SignerFacts | None:
    """Name the signer when step 4 did not, for a verdict that stopped early."""
    assert run.signature is not None
    try:
        cert = run.signature.signer_cert
        return _signer_facts(cert, run.signature, run.timestamp_time)
    except MALFORMED_INPUT_ERRORS as error:
        logger.info("signer certificate unreadable: %r", error)
        return None


def _isoformat(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def _signature_timestamp_time(signature: EmbeddedPdfSignature) -> datetime | None:
    """Read the generation time of the signature timestamp token, unverified.

    The time only chooses the validation moment; pyhanko checks the token
    itself in step 4.
    """
    unsigned = signature.signer_info["unsigned_attrs"]
    if not isinstance(unsigned, cms.CMSAttributes):
        return None
    for attribute in unsigned:
        if attribute["type"].native != "signature_time_stamp_token":
            continue
        token = attribute["values"][0]
        content = token["content"]["encap_content_info"]["content"]
        info = content.parsed
        if isinstance(info, tsp.TSTInfo):
            return info["gen_time"].native
    return None


def _path_error(status: PdfSignatureStatus) -> str:
    if status.trust_problem_indic is not None:
        return f"{status.trust_problem_indic.name}（未找到通往信任列表中任何 CA 的有效路径）"
    return "未找到通往信任列表中任何 CA 的证书路径"


def _document_facts(run: _Run) -> LicenseFacts | None:
    """Read the signed revision's license facts once per verification."""
    if not run.document_read:
        assert run.reader is not None and run.signature is not None
        run.document_facts = _facts_from_document_info(run.reader, run.signature)
        run.document_read = True
    return run.document_facts


def _facts_from_document_info(
    reader: PdfFileReader, signature: EmbeddedPdfSignature
) -> LicenseFacts | None:
    """Read the license metadata that the signed revision carries.

    The renderer writes the identifier and the issuing authority into the
    document information dictionary as ``key=value`` lines of /Keywords. Only
    the signed revision is read, so a later revision cannot change them.
    """
    historical = reader.get_historical_resolver(signature.signed_revision)
    try:
        info_entry = historical.trailer_view.raw_get("/Info")
    except KeyError:
        return None
    # The trailer's /Info reference belongs to the current reader and would
    # resolve to the latest version of the dictionary, which an appended
    # revision can rewrite without failing step 5. The historical resolver
    # returns the version in the signed revision.
    if isinstance(info_entry, generic.IndirectObject):
        info = historical.get_object(info_entry.reference)
    else:
        info = info_entry
    if not isinstance(info, generic.DictionaryObject):
        return None
    keywords = str(info.get("/Keywords", ""))
    fields = dict(
        line.split("=", 1) for line in keywords.splitlines() if "=" in line
    )
    if "authority_code" not in fields:
        return None
    return LicenseFacts(
        elicense_id=fields.get("elicense_id"),
        license_type=fields.get("license_type"),
        holder_code=fields.get("holder_code"),
        authority_code=fields.get("authority_code"),
        authority_name=fields.get("authority_name"),
    )


def _rejected_verdict(reason: str) -> Verdict:
    return _verdict_from_first_step(StepStatus.FAILED, reason)


def _timed_out_verdict(seconds: float) -> Verdict:
    reason = f"验证超过时间预算 {seconds} 秒，已中止；文件可能经过特殊构造"
    return _verdict_from_first_step(StepStatus.INDETERMINATE, reason)


def _verdict_from_first_step(status: StepStatus, reason: str) -> Verdict:
    steps = [StepResult(1, "parse", STEP_TITLES["parse"], status, (reason,))]
    for name in list(STEP_TITLES)[1:]:
        steps.append(
            StepResult(
                STEP_NUMBERS[name],
                name,
                STEP_TITLES[name],
                StepStatus.SKIPPED,
                ("前序步骤未通过，本步骤未执行",),
            )
        )
    return Verdict(bottom_line(steps), tuple(steps))


__all__ = ["PdfVerifier", "Outcome", "STEP_TITLES"]
