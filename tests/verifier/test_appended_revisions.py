"""A registered license with timestamps appended later still matches the register.

An archive renewal appends a document timestamp (and validation data) as
incremental updates, so the file's SHA-256 no longer equals the register's.
The verifier then matches the registered PDF as the file's prefix. An
appended revision that changes content must still be rejected.
"""

from __future__ import annotations

import io

import pytest
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.signers import PdfTimeStamper
from pyhanko_certvalidator import ValidationContext

from elicense.context import ServiceContext
from tests.e2e import attacks
from verifier.verdict import Outcome, StepStatus, Verdict


@pytest.fixture(scope="module")
def timestamped(context: ServiceContext, issued: tuple[str, bytes]) -> bytes:
    return add_document_timestamp(context, issued[1])


def add_document_timestamp(context: ServiceContext, pdf: bytes) -> bytes:
    """Append a document timestamp from the product's own TSA."""
    stamper = PdfTimeStamper(context.issuing.pki.load_timestamper())
    output = io.BytesIO()
    writer = IncrementalPdfFileWriter(io.BytesIO(pdf), strict=False)
    stamper.timestamp_pdf(writer, "sha256", output=output)
    return output.getvalue()


def renew_archive_timestamp(context: ServiceContext, pdf: bytes) -> bytes:
    """Append the TSA's validation data (DSS) and a new document timestamp."""
    stamper = PdfTimeStamper(context.issuing.pki.load_timestamper())
    validation_context = ValidationContext(
        trust_roots=context.trust.anchor_certificates(),
        other_certs=context.trust.intermediate_certificates(),
        crls=context.trust.current_crls(),
        allow_fetching=False,
    )
    output = io.BytesIO()
    stamper.update_archival_timestamp_chain(
        PdfFileReader(io.BytesIO(pdf), strict=False),
        validation_context,
        in_place=False,
        output=output,
    )
    return output.getvalue()


def register_step(verdict: Verdict):
    step = verdict.step("register")
    assert step is not None
    return step


def test_timestamped_license_is_valid(context, issued, timestamped):
    elicense_id, pdf = issued
    assert timestamped.startswith(pdf)
    assert len(timestamped) > len(pdf)

    verdict = context.verify_pdf_sync(timestamped)

    assert verdict.outcome == Outcome.VALID, verdict.to_json()
    assert verdict.license is not None
    assert verdict.license.elicense_id == elicense_id


def test_timestamped_license_matches_register(context, issued, timestamped):
    _, pdf = issued

    step = register_step(context.verify_pdf_sync(timestamped))

    assert step.status == StepStatus.PASSED
    assert step.reasons[0] == "与登记版本 001 一致"
    assert f"追加了 {len(timestamped) - len(pdf)} 字节" in step.reasons[-1]


def test_timestamped_license_valid_in_worker(context, timestamped):
    verdict = context.upload_pdf_verifier.verify(timestamped)

    assert verdict.outcome == Outcome.VALID, verdict.to_json()
    assert register_step(verdict).status == StepStatus.PASSED


def test_renewed_archive_timestamp_is_valid(context, timestamped):
    renewed = renew_archive_timestamp(context, timestamped)
    assert renewed.startswith(timestamped)

    verdict = context.verify_pdf_sync(renewed)

    assert verdict.outcome == Outcome.VALID, verdict.to_json()
    assert register_step(verdict).status == StepStatus.PASSED
    assert len(PdfFileReader(io.BytesIO(renewed)).embedded_timestamp_signatures) == 2


def test_content_change_after_timestamp_rejected(context, timestamped):
    changed = attacks.isa_page_content_with_xref(timestamped)

    verdict = context.verify_pdf_sync(changed)

    assert verdict.outcome == Outcome.INVALID
    assert verdict.step("changes").status == StepStatus.FAILED
    assert register_step(verdict).status == StepStatus.FAILED


def test_content_change_then_timestamp_rejected(context, issued):
    content_changed = attacks.isa_page_content_with_xref(issued[1])
    changed = add_document_timestamp(context, content_changed)

    verdict = context.verify_pdf_sync(changed)

    assert verdict.outcome == Outcome.INVALID
    assert verdict.step("changes").status == StepStatus.FAILED
    assert register_step(verdict).status == StepStatus.FAILED


def test_changed_signed_bytes_rejected(context, issued, timestamped):
    # A byte inside the signed page content, before the appended timestamp.
    pdf = issued[1]
    position = pdf.index(b"stream") + 20
    changed = bytearray(timestamped)
    changed[position] ^= 0x01

    verdict = context.verify_pdf_sync(bytes(changed))

    assert verdict.outcome == Outcome.INVALID
    assert verdict.step("integrity").status == StepStatus.FAILED


def rewrite_keywords(pdf: bytes, old: str, new: str) -> bytes:
    """Append a revision whose /Info /Keywords replace ``old`` with ``new``."""
    writer = IncrementalPdfFileWriter(io.BytesIO(pdf), strict=False)
    info = writer.trailer["/Info"].get_object()
    keywords = str(info["/Keywords"])
    assert old in keywords
    info[generic.NameObject("/Keywords")] = generic.TextStringObject(
        keywords.replace(old, new)
    )
    writer.update_container(info)
    output = io.BytesIO()
    writer.write(output)
    return output.getvalue()


def test_identifier_read_from_signed_revision(context, issued):
    elicense_id, pdf = issued
    other_id = elicense_id[:-1] + ("1" if elicense_id[-1] != "1" else "2")
    relabelled = add_document_timestamp(
        context, rewrite_keywords(pdf, elicense_id, other_id)
    )

    verdict = context.verify_pdf_sync(relabelled)

    assert verdict.license is not None
    assert verdict.license.elicense_id == elicense_id
    assert register_step(verdict).status == StepStatus.PASSED


def test_offline_facts_read_from_signed_revision(context, issued):
    # pyhanko's modification analysis accepts an /Info update, so the
    # license type used for the CA scope check must come from the signed
    # revision, not from the appended one.
    relabelled = rewrite_keywords(
        issued[1],
        "license_type=business_license",
        "license_type=food_business_license",
    )

    verdict = context.verify_pdf_sync(relabelled, offline=True)

    assert verdict.license is not None
    assert verdict.license.license_type == "business_license"
