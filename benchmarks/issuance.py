"""Issuance: the straightforward pyhanko pipeline against the product's.

The baseline renders the same template, then signs each document with a
new signer loaded from the key file, pyhanko's default signature sizing (a
trial signature), the same B-LT level and timestamp authority, and writes
the PDF to a file. The product issues through ``elicense issue --workers``.
"""

from __future__ import annotations

import io
import os
import time
from dataclasses import dataclass
from pathlib import Path

from asn1crypto import crl as asn1_crl
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.sign import fields, signers
from pyhanko_certvalidator import ValidationContext

from benchmarks.records import write_jsonl
from common.authority import AuthorityRegistry
from elicense.batch import issue_file
from elicense.secrets import load_passphrase
from elicense.settings import Settings
from esign.pki import ISSUING_CA, ROOT_CA, DevPki
from esign.qrtoken import TokenClaims, sign_token
from esign.seal_artwork import VectorSeal
from templates import FaceContext, load_catalogue, render_license


@dataclass(frozen=True)
class IssuanceRun:
    count: int
    seconds: float
    total_pdf_bytes: int

    @property
    def per_second(self) -> float:
        return self.count / self.seconds

    @property
    def mean_pdf_bytes(self) -> float:
        return self.total_pdf_bytes / self.count


def product_issuance(settings: Settings, records: list[dict], workers: int) -> IssuanceRun:
    path = write_jsonl(records, settings.data_dir / f"bench-{time.monotonic_ns()}.jsonl")
    started = time.perf_counter()
    summary = issue_file(settings, path, out_dir=None, operator="bench", workers=workers)
    seconds = time.perf_counter() - started
    if summary.rejected:
        raise RuntimeError(f"benchmark records rejected: {summary.rejected[:3]}")
    blobs = list((settings.data_dir / "blobs").rglob("*"))
    total = sum(blob.stat().st_size for blob in blobs if blob.is_file())
    count = summary.issued_count
    return IssuanceRun(count, seconds, total)


def baseline_issuance(settings: Settings, records: list[dict], out_dir: Path) -> IssuanceRun:
    out_dir.mkdir(parents=True, exist_ok=True)
    passphrase = load_passphrase(settings)
    pki = DevPki(settings.data_dir, passphrase, settings.public_url)
    catalogue = load_catalogue()
    registry = AuthorityRegistry.load()
    token_signer = pki.load_token_signer()
    total = 0
    started = time.perf_counter()
    for number, raw in enumerate(records, start=1):
        pdf = _render_baseline(catalogue, registry, token_signer, raw, number, settings)
        signed = _sign_baseline(pki, passphrase, raw["authority_code"], pdf)
        (out_dir / f"{number:06d}.pdf").write_bytes(signed)
        total += len(signed)
    return IssuanceRun(len(records), time.perf_counter() - started, total)


def _render_baseline(catalogue, registry, token_signer, raw, number, settings) -> bytes:
    template = catalogue.get(raw["license_type"])
    record = template.validate(raw)
    authority = registry.get(record["authority_code"])
    elicense_id = (
        f"1.2.156.3005.2.{template.catalogue_code}.{authority.code}.2026{number:07d}.001.0"
    )
    claims = TokenClaims(elicense_id, record["uscc"], record["issued_on"], None, 1)
    qr_text = f"{settings.public_url.upper()}/V/{sign_token(claims, token_signer)}"
    face = FaceContext(
        elicense_id=elicense_id,
        version=1,
        qr_text=qr_text,
        authority_name=authority.name,
        authority_code=authority.code,
        authority_region=authority.region_code,
        issued_on=record["issued_on"],
        seal=VectorSeal(authority.name, None, "证照专用章", authority.code),
    )
    return render_license(template, record, face).pdf


def _sign_baseline(pki: DevPki, passphrase: bytes, authority_code: str, pdf: bytes) -> bytes:
    seal_dir = pki.seal_dir(authority_code)
    signer = signers.SimpleSigner.load(
        str(seal_dir / "seal.key.p8"),
        str(seal_dir / "seal.pem"),
        ca_chain_files=(
            str(pki.certificate_path(ISSUING_CA)),
            str(pki.certificate_path(ROOT_CA)),
        ),
        key_passphrase=passphrase,
    )
    context = ValidationContext(
        trust_roots=pki.trust_roots(),
        other_certs=pki.ca_certificates(),
        crls=[
            asn1_crl.CertificateList.load(pki.crl_path(name).read_bytes())
            for name in (ROOT_CA, ISSUING_CA)
        ],
        allow_fetching=False,
    )
    metadata = signers.PdfSignatureMetadata(
        field_name="Signature",
        subfilter=fields.SigSeedSubFilter.PADES,
        certify=True,
        docmdp_permissions=fields.MDPPerm.NO_CHANGES,
        embed_validation_info=True,
        validation_context=context,
    )
    output = io.BytesIO()
    signers.sign_pdf(
        IncrementalPdfFileWriter(io.BytesIO(pdf)),
        metadata,
        signer=signer,
        timestamper=pki.load_timestamper(),
        output=output,
    )
    return output.getvalue()


def cpu_count() -> int:
    return len(os.sched_getaffinity(0))
