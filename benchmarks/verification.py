"""PDF verification: all seven steps against pyhanko's own validation call."""

from __future__ import annotations

import io
import statistics
import time
from collections.abc import Callable

from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.validation import validate_pdf_signature
from pyhanko_certvalidator import ValidationContext

from elicense.context import ServiceContext


def median_ms(action: Callable[[], object], repeats: int) -> float:
    timings = []
    for _ in range(repeats):
        started = time.perf_counter()
        action()
        timings.append((time.perf_counter() - started) * 1000)
    return statistics.median(timings)


def product_verify(context: ServiceContext, pdf: bytes) -> None:
    verdict = context.verify_pdf_sync(pdf)
    if verdict.outcome.value != "valid":
        raise RuntimeError(f"benchmark license did not verify: {verdict.reasons}")


def pyhanko_verify(context: ServiceContext, pdf: bytes) -> None:
    reader = PdfFileReader(io.BytesIO(pdf))
    signature = reader.embedded_regular_signatures[0]
    validation_context = ValidationContext(
        trust_roots=context.trust.anchor_certificates(),
        other_certs=context.trust.intermediate_certificates(),
        crls=context.trust.current_crls(),
        allow_fetching=False,
    )
    status = validate_pdf_signature(signature, validation_context)
    if not status.bottom_line:
        raise RuntimeError("pyhanko rejected the benchmark license")
