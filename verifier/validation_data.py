"""Certificates and revocation data for validating one document.

The verifier validates a signature at its timestamp time and the signature
timestamp at the present time, so it needs two pyhanko ValidationContexts
per document. A ValidationContext keeps per-validation state (registered
certificates, revocation results, soft-fail errors), so each verification
builds new ones. What they are built from is read once per document:

- the document's own validation data (DSS), parsed once and shared by both
  contexts instead of being parsed again for each;
- the trust list's certificates and CRLs, which are the same parsed objects
  across verifications, so asn1crypto's parse caches stay warm.

A DSS entry whose DER bytes equal a trust-list certificate or a local CRL
is replaced by the trust-list object, or dropped for a CRL that is already
in the list. Equal bytes give equal results, so this changes no outcome. It
avoids checking the same CRL twice: issued licenses embed the CRLs that the
local CA folder also holds.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from asn1crypto import crl, ocsp, x509
from pyhanko.pdf_utils.decode_limits import DecodePurpose
from pyhanko.pdf_utils.generic import StreamObject
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.validation import DocumentSecurityStore
from pyhanko.sign.validation.errors import NoDSSFoundError
from pyhanko_certvalidator import ValidationContext

from verifier.trustlist import TrustList


@dataclass(frozen=True)
class ValidationData:
    """Inputs of the validation contexts for one document."""

    trust_roots: tuple[x509.Certificate, ...]
    other_certs: tuple[x509.Certificate, ...]
    crls: tuple[crl.CertificateList, ...]
    ocsps: tuple[ocsp.OCSPResponse, ...]
    allow_fetching: bool

    def context(self, moment: datetime | None) -> ValidationContext:
        """Build a new context that validates at ``moment`` (None: now).

        Revocation is hard-fail: when a certificate names a CRL or OCSP
        source and its status cannot be checked, validation fails.
        Revocation data count regardless of when they were issued
        (``retroactive_revinfo``), so the CRLs of today settle a signature
        made years ago.
        """
        kwargs: dict = {
            "trust_roots": list(self.trust_roots),
            "other_certs": list(self.other_certs),
            "crls": list(self.crls),
            "ocsps": list(self.ocsps),
            "allow_fetching": self.allow_fetching,
            "revocation_mode": "hard-fail",
            "retroactive_revinfo": True,
        }
        if moment is not None:
            kwargs["moment"] = moment
        return ValidationContext(**kwargs)


def read_validation_data(
    reader: PdfFileReader, trust: TrustList, *, allow_fetching: bool
) -> ValidationData:
    """Collect the trust list's data and the document's DSS, each read once.

    The DSS certificates come first and the trust list's intermediates
    after them, in the order that pyhanko's
    ``DocumentSecurityStore.as_validation_context`` uses.
    """
    intermediates = trust.intermediate_certificates()
    local_crls = trust.current_crls()
    known_certs = {cert.dump(): cert for cert in trust.anchor_certificates()}
    known_certs.update((cert.dump(), cert) for cert in intermediates)
    known_crls = {crl_object.dump() for crl_object in local_crls}
    try:
        dss = DocumentSecurityStore.read_dss(reader)
    except NoDSSFoundError:
        dss = None
    dss_certs: list[x509.Certificate] = []
    dss_crls: list[crl.CertificateList] = []
    dss_ocsps: list[ocsp.OCSPResponse] = []
    if dss is not None:
        for der in _stream_contents(dss.certs.values(), DecodePurpose.CERTIFICATE):
            dss_certs.append(known_certs.get(der) or x509.Certificate.load(der))
        for der in _stream_contents(dss.crls, DecodePurpose.CRL):
            if der not in known_crls:
                dss_crls.append(crl.CertificateList.load(der))
        for der in _stream_contents(dss.ocsps, DecodePurpose.OCSP_RESPONSE):
            dss_ocsps.append(ocsp.OCSPResponse.load(der))
    return ValidationData(
        trust_roots=tuple(trust.anchor_certificates()),
        other_certs=tuple(dss_certs + intermediates),
        crls=tuple(local_crls + dss_crls),
        ocsps=tuple(dss_ocsps),
        allow_fetching=allow_fetching,
    )


def _stream_contents(references, purpose: DecodePurpose) -> list[bytes]:
    """Decode the DSS streams that ``references`` point to."""
    contents = []
    for reference in references:
        stream = reference.get_object()
        if not isinstance(stream, StreamObject):
            raise ValueError(
                f"/DSS 中的条目 {reference} 不是数据流（stream），文件结构无效"
            )
        contents.append(stream.read_data(purpose))
    return contents
