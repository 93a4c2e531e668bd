"""Small real stand-ins for the renderer and the seal signer.

The renderer draws the identifier and the QR text with reportlab; the signer
makes a PAdES signature with pyhanko over a throwaway self-signed P-256
certificate. Both are real, so the stored PDFs can be parsed and verified.
"""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from asn1crypto import keys as asn1_keys
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.sign import signers
from pyhanko_certvalidator.registry import SimpleCertificateStore
from reportlab.pdfgen import canvas

from license_store.issuance import FaceInfo


@dataclass(frozen=True)
class RenderedStandIn:
    pdf: bytes
    seal_box: Any = None


def render_stand_in(
    template: Any, record: Mapping[str, object], face: FaceInfo
) -> RenderedStandIn:
    """Draw a one-page PDF naming the identifier, version and QR text."""
    buffer = io.BytesIO()
    page = canvas.Canvas(buffer, pagesize=(595, 842), invariant=True)
    page.setTitle(face.elicense_id)
    page.drawString(40, 800, f"type {template.license_type} version {face.version}")
    page.drawString(40, 780, face.elicense_id)
    page.drawString(40, 760, face.qr_text[:90])
    page.drawString(40, 740, f"holder {record[template.holder_code_field]}")
    page.showPage()
    page.save()
    return RenderedStandIn(buffer.getvalue())


def self_signed_certificate(
    common_name: str,
) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=True,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(key, hashes.SHA256())
    )
    return key, certificate


class StandInSigner:
    """PAdES B-B signer over a self-signed certificate; counts its calls."""

    def __init__(self) -> None:
        key, certificate = self_signed_certificate("测试印章")
        self.certificate = asn1_x509.Certificate.load(
            certificate.public_bytes(serialization.Encoding.DER)
        )
        key_info = asn1_keys.PrivateKeyInfo.load(
            key.private_bytes(
                serialization.Encoding.DER,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        self._signer = signers.SimpleSigner(
            signing_cert=self.certificate,
            signing_key=key_info,
            cert_registry=SimpleCertificateStore.from_certs([self.certificate]),
        )
        self.calls = 0
        self.fail_with: Exception | None = None

    def sign(self, pdf: bytes, *, seal_box: Any = None) -> bytes:
        self.calls += 1
        if self.fail_with is not None:
            raise self.fail_with
        writer = IncrementalPdfFileWriter(io.BytesIO(pdf))
        metadata = signers.PdfSignatureMetadata(field_name="LicenseSeal")
        output = signers.sign_pdf(writer, metadata, signer=self._signer)
        return output.getvalue()


class StandInCheckpointSigner:
    """ECDSA P-256 checkpoint signer over a throwaway key."""

    def __init__(self, key_id: str = "test-key") -> None:
        self.key_id = key_id
        self._key = ec.generate_private_key(ec.SECP256R1())

    def sign(self, data: bytes) -> bytes:
        return self._key.sign(data, ec.ECDSA(hashes.SHA256()))

    def verify(self, data: bytes, signature: bytes) -> bool:
        from cryptography.exceptions import InvalidSignature

        try:
            self._key.public_key().verify(signature, data, ec.ECDSA(hashes.SHA256()))
        except InvalidSignature:
            return False
        return True
