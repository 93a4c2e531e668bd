"""Check a CMS SignedData document against a configured anchor.

Exported trust lists and verification receipts are CMS SignedData
(RFC 5652) with the JSON text encapsulated. A document is accepted only when
its signature is intact and the signer's certificate chains to one of the
anchors given by the caller. The certificates inside the document only help
to build that path.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime

from asn1crypto import cms, x509
from pyhanko.sign.general import extract_certificate_info
from pyhanko.sign.validation.generic_cms import async_validate_cms_signature
from pyhanko_certvalidator import ValidationContext

from common.errors import TrustError

logger = logging.getLogger(__name__)

MAX_SIGNED_DOCUMENT_BYTES = 16 * 1024 * 1024


@dataclass(frozen=True)
class SignedContent:
    """The verified content of a signed document and who signed it."""

    content: bytes
    signer_subject: str
    signer_sha256: str
    signing_time: datetime | None


def verify_signed_document(
    data: bytes,
    anchors: list[x509.Certificate],
    *,
    document_name: str,
    moment: datetime | None = None,
) -> SignedContent:
    """Return the content of ``data`` once its signature chains to an anchor.

    ``document_name`` (for example 信任列表) names the document in messages.
    Raises TrustError naming the problem when the file is not SignedData,
    the signature is broken or the signer does not chain to an anchor.
    """
    signed_data = _parse(data, document_name)
    content = signed_data["encap_content_info"]["content"].native
    if not isinstance(content, bytes) or not content:
        raise TrustError(
            f"{document_name}文件中没有签名的内容", fix="请使用对方导出的原始文件"
        )
    context = ValidationContext(
        trust_roots=anchors,
        other_certs=list(extract_certificate_info(signed_data).other_certs),
        allow_fetching=False,
        revocation_mode="soft-fail",
        **({"moment": moment} if moment else {}),
    )
    status = asyncio.run(
        async_validate_cms_signature(signed_data, validation_context=context)
    )
    if not (status.intact and status.valid):
        raise TrustError(
            f"{document_name}的签名无效：内容在签名后被修改或签名值错误",
            fix="请向对方重新索取文件",
        )
    if not status.trusted:
        raise TrustError(
            f"{document_name}的签名证书「{status.signing_cert.subject.human_friendly}」"
            "不能链接到指定的根证书",
            fix="请确认 --anchor 指定的是对方部署的根证书（trust/root-ca.pem）",
        )
    logger.info(
        "verified signed %s signer=%s",
        document_name,
        status.signing_cert.sha256.hex()[:16],
    )
    return SignedContent(
        content=content,
        signer_subject=status.signing_cert.subject.human_friendly,
        signer_sha256=status.signing_cert.sha256.hex(),
        signing_time=_signing_time(signed_data),
    )


def _parse(data: bytes, document_name: str) -> cms.SignedData:
    if len(data) > MAX_SIGNED_DOCUMENT_BYTES:
        raise TrustError(
            f"{document_name}文件 {len(data)} 字节超过上限 "
            f"{MAX_SIGNED_DOCUMENT_BYTES} 字节"
        )
    try:
        info = cms.ContentInfo.load(data)
        if info["content_type"].native != "signed_data":
            raise ValueError(info["content_type"].native)
        signed_data = info["content"]
        _ = signed_data.native  # parse everything now, not lazily later
    except (ValueError, TypeError, KeyError, OverflowError) as error:
        raise TrustError(
            f"{document_name}文件不是 CMS 签名数据（{type(error).__name__}）",
            fix="请使用 elicense trust export 导出的 .p7m 文件",
        ) from error
    if len(signed_data["signer_infos"]) != 1:
        raise TrustError(
            f"{document_name}文件应有一个签名者，实际有 "
            f"{len(signed_data['signer_infos'])} 个"
        )
    return signed_data


def _signing_time(signed_data: cms.SignedData) -> datetime | None:
    attributes = signed_data["signer_infos"][0]["signed_attrs"]
    if not isinstance(attributes, cms.CMSAttributes):
        return None
    for attribute in attributes:
        if attribute["type"].native == "signing_time":
            return attribute["values"][0].native
    return None
