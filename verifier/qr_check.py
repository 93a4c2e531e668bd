"""Verify the token inside a license QR code, then ask the register.

The token signature is checked against the token signer certificates that
the trust list publishes, so a forged or altered token is caught without
the register. The register then supplies the current status.
"""

from __future__ import annotations

import enum
import logging
from dataclasses import asdict, dataclass
from datetime import datetime, timezone

from asn1crypto import x509

from common.errors import ElicenseError, InputError
from esign.qrtoken import TokenClaims, key_id, read_token, verify_token
from verifier.register import RegisterLookup
from verifier.trustlist import RecognisedCA, TrustList
from verifier.verdict import LicenseFacts

logger = logging.getLogger(__name__)

# Verified tokens kept per process: a few hundred kilobytes at most.
MAX_REMEMBERED_TOKENS = 4096


class Signal(enum.StrEnum):
    """Colour of the result shown to counter staff."""

    GREEN = "green"
    AMBER = "amber"
    RED = "red"


@dataclass(frozen=True)
class QrResult:
    """Result shown on the verify page for one scanned token."""

    signal: Signal
    headline: str
    reasons: tuple[str, ...]
    token_authentic: bool
    claims: TokenClaims | None = None
    license: LicenseFacts | None = None

    def to_json(self) -> dict:
        data = asdict(self)
        if self.claims is not None:
            data["claims"] = {
                key: (value.isoformat() if hasattr(value, "isoformat") else value)
                for key, value in asdict(self.claims).items()
            }
        return data


class QrVerifier:
    """Check QR tokens against the trust list and the register."""

    def __init__(self, trust: TrustList, register: RegisterLookup | None) -> None:
        self.trust = trust
        self.register = register
        # Token -> (claims, signer certificate SHA-256) of tokens whose
        # signature verified. A token's bytes do not change, so it is decoded
        # and its ECDSA signature checked once. At every later scan the
        # signer must still be on the trust list and its CA recognised.
        self._authentic: dict[str, tuple[TokenClaims, bytes]] = {}

    def verify(self, token: str, now: datetime | None = None) -> QrResult:
        """Verify one token; never raise on bad input.

        Steps:
        1. decode the token and check its signature against the token signer
           certificates of the trust list;
        2. check that the CA vouching for the signer is recognised now;
        3. look the version up in the register and report its status.
        """
        now = now or datetime.now(timezone.utc)

        # Step 1: signature, without the register.
        try:
            claims, signer = self._authentic_claims(token)
        except InputError as error:
            return _red("二维码内容无法识别", f"二维码数据格式错误：{error.message}")
        except ElicenseError as error:
            return _red("二维码签名无效，证照可能是伪造的", error.message)

        # Step 2: the CA behind the token signer is recognised.
        ca = self.trust.ca_for_certificate(signer)
        refusal = _ca_refusal(ca, now)
        if refusal:
            return _red("二维码签发方不受信任", refusal, claims=claims)
        if ca is not None and ca.imported_from is not None:
            return _foreign_result(ca, claims)

        # Step 3: register status.
        if self.register is None:
            return QrResult(
                Signal.AMBER,
                "二维码签名有效，未能查询证照状态",
                ("登记库不可用，仅完成离线校验",),
                True,
                claims,
            )
        facts = self.register.facts_for_elicense_id(claims.elicense_id)
        if facts is None:
            return _red(
                "登记库中没有这张证照",
                f"电子证照标识 {claims.elicense_id} 未登记",
                claims=claims,
            )
        return _status_result(claims, facts)

    def _authentic_claims(self, token: str) -> tuple[TokenClaims, x509.Certificate]:
        """Return the claims and signer of a token whose signature verifies.

        Raises InputError for a malformed token and another ElicenseError
        when no listed signer certificate verifies it.
        """
        signers = self.trust.token_certificates()
        known = self._authentic.get(token)
        if known is not None:
            claims, fingerprint = known
            for cert in signers:
                if cert.sha256 == fingerprint:
                    return claims, cert
        claims = verify_token(token, signers)
        kid = read_token(token).kid
        signer = next(cert for cert in signers if key_id(cert) == kid)
        if len(self._authentic) >= MAX_REMEMBERED_TOKENS:
            self._authentic.pop(next(iter(self._authentic)))
        self._authentic[token] = (claims, signer.sha256)
        return claims, signer


def _ca_refusal(ca: RecognisedCA | None, now: datetime) -> str | None:
    if ca is None:
        return "信任列表中没有该二维码的签名证书"
    status = ca.status_at(now)
    if status is not None and status.status == "recognised":
        return None
    return f"签发二维码的 CA「{ca.name}」当前不在互认范围内"


def _foreign_result(ca: RecognisedCA, claims: TokenClaims) -> QrResult:
    """Report a token of an imported CA: authentic, status kept elsewhere.

    The local register is not consulted, because another deployment's
    identifiers may coincide with local ones for a different document.
    """
    return QrResult(
        Signal.GREEN,
        "证照二维码真实有效（互认地区签发）",
        (
            f"二维码由互认 CA「{ca.name}」的签名证书签发",
            "本地登记库不含外地证照，现行状态请向颁发机构确认",
        ),
        True,
        claims,
    )


def _red(headline: str, reason: str, *, claims: TokenClaims | None = None) -> QrResult:
    return QrResult(Signal.RED, headline, (reason,), claims is not None, claims)


def _status_result(claims: TokenClaims, facts: LicenseFacts) -> QrResult:
    status = facts.register_status
    label = facts.register_status_label or status or "未知"
    current = facts.current_version
    if status == "01" and current == claims.version:
        return QrResult(
            Signal.GREEN,
            "证照真实有效",
            (f"现行版本 {current:03d}",),
            True,
            claims,
            facts,
        )
    if status == "01":
        return QrResult(
            Signal.AMBER,
            f"此版本已被第 {current:03d} 版取代",
            (f"现行版本的证照标识：{facts.current_elicense_id}",),
            True,
            claims,
            facts,
        )
    when = facts.status_changed_at or "未知时间"
    signal = Signal.AMBER if status == "02" else Signal.RED
    return QrResult(
        signal,
        f"证照已{label}",
        (f"状态：{label}，时间：{when}",),
        True,
        claims,
        facts,
    )
