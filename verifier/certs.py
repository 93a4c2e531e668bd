"""Read the facts that a seal certificate carries about its authority."""

from __future__ import annotations

from asn1crypto import x509

from common.codes import normalize_code

# organizationIdentifier, ITU-T X.520 (2.5.4.97).
ORGANIZATION_IDENTIFIER = "2.5.4.97"


def organization_code_of(cert: x509.Certificate) -> str | None:
    """Return the unified social credit code named in the certificate subject.

    Seal certificates carry it as organizationIdentifier; some CAs write it
    into serialNumber instead, so both are read, in that order.
    """
    for rdn in cert.subject.chosen:
        for attribute in rdn:
            oid = attribute["type"].dotted
            if oid == ORGANIZATION_IDENTIFIER:
                return _code_from(attribute["value"].native)
    serial = cert.subject.native.get("serial_number")
    return _code_from(serial) if serial else None


def _code_from(value: object) -> str:
    text = normalize_code(str(value))
    # ETSI EN 319 412-1 semantics identifiers prefix the code with a scheme.
    for prefix in ("USCC", "NTRCN-", "NTRCN+"):
        if text.startswith(prefix):
            text = text[len(prefix):].lstrip("-+:")
    return text
