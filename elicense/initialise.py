"""Create or update a data directory: PKI, register schema and trust list."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from common.authority import AuthorityRegistry
from elicense.secrets import load_passphrase
from elicense.settings import Settings
from esign.pki import ISSUING_CA, ROOT_CA, TOKEN_SIGNER, DevPki, ensure_dev_pki
from esign.certificates import to_asn1
from license_store.db import migrate
from verifier.trustlist import TRUST_LIST_FILE, RecognisedCA, StatusChange, TrustList

logger = logging.getLogger(__name__)

LOCAL_CA_ID = "local-dev"
LOCAL_CA_NAME = "内蒙古自治区电子证照CA（开发）"
LOCAL_REGION = "150000"


@dataclass(frozen=True)
class InitReport:
    data_dir: Path
    root_certificate: Path
    trust_list: Path
    seals: int
    database_url: str


def initialise(settings: Settings, registry: AuthorityRegistry | None = None) -> InitReport:
    """Create what is missing; running it again keeps keys and certificates."""
    data_dir = settings.data_dir
    data_dir.mkdir(parents=True, exist_ok=True)
    passphrase = load_passphrase(settings, create=True)
    authorities = registry or AuthorityRegistry.load()
    pki = ensure_dev_pki(
        data_dir, authorities, base_url=settings.public_url, passphrase=passphrase
    )
    migrate(settings.resolved_database_url)
    trust_path = _ensure_trust_list(pki, data_dir / "trust")
    logger.info("data directory ready: %s (%d seals)", data_dir, len(pki.seal_codes()))
    return InitReport(
        data_dir=data_dir,
        root_certificate=pki.trust_root_path,
        trust_list=trust_path,
        seals=len(pki.seal_codes()),
        database_url=_redacted(settings.resolved_database_url),
    )


def _ensure_trust_list(pki: DevPki, trust_dir: Path) -> Path:
    """Add the local CA to the trust list, keeping entries imported before."""
    trust_dir.mkdir(parents=True, exist_ok=True)
    if (trust_dir / TRUST_LIST_FILE).exists():
        trust = TrustList.load(trust_dir)
    else:
        trust = TrustList()
    certificates = tuple(to_asn1(pki.certificate(name)) for name in (ROOT_CA, ISSUING_CA))
    history = _existing_history(trust) or (
        StatusChange("recognised", certificates[0].not_valid_before, "本地开发 CA"),
    )
    trust.add_or_replace(
        RecognisedCA(
            id=LOCAL_CA_ID,
            name=LOCAL_CA_NAME,
            region=LOCAL_REGION,
            department="市场监督管理",
            certificates=certificates,
            token_signers=(to_asn1(pki.certificate(TOKEN_SIGNER)),),
            history=history,
        )
    )
    return trust.save(trust_dir)


def _existing_history(trust: TrustList) -> tuple[StatusChange, ...]:
    for ca in trust.cas:
        if ca.id == LOCAL_CA_ID:
            return ca.history
    return ()


def _redacted(url: str) -> str:
    if "@" not in url:
        return url
    scheme, rest = url.split("://", 1)
    return f"{scheme}://***@{rest.split('@', 1)[1]}"
