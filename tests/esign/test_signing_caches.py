"""Data reused between signatures: parsed certificates, seal records, checks."""

from __future__ import annotations

from datetime import timedelta

import pytest
from conftest import PASSPHRASE, PKI_CREATED_AT
from cryptography.exceptions import InvalidSignature
from pyhanko_certvalidator.sig_validate import DefaultSignatureValidator

from esign.pki import ISSUING_CA, ROOT_CA, DevPki
from esign.seal_lifecycle import SealManager
from esign.seals import SealStatus
from esign.signing import RememberingSignatureValidator


def _certificate_signature(pki: DevPki):
    """The issuing CA certificate's signature and the root key that made it."""
    issuing = pki.ca_certificates()[0]
    root = pki.trust_roots()[0]
    return (
        issuing["signature_value"].native,
        issuing["tbs_certificate"].dump(),
        root.public_key,
        issuing["signature_algorithm"],
    )


def _count_checks(monkeypatch) -> list[tuple]:
    """Record each signature check that reaches pyhanko's own validator."""
    checks: list[tuple] = []
    original = DefaultSignatureValidator.validate_signature

    def counting(self, *args, **kwargs):
        checks.append(args)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(DefaultSignatureValidator, "validate_signature", counting)
    return checks


def test_validator_remembers_valid_signature(dev_pki, monkeypatch):
    signature, data, key, algorithm = _certificate_signature(dev_pki)
    validator = RememberingSignatureValidator()
    checks = _count_checks(monkeypatch)

    validator.validate_signature(signature, data, key, algorithm)
    validator.validate_signature(signature, data, key, algorithm)

    assert len(checks) == 1


def test_validator_rejects_invalid_signature_every_time(dev_pki):
    signature, data, key, algorithm = _certificate_signature(dev_pki)
    validator = RememberingSignatureValidator()
    validator.validate_signature(signature, data, key, algorithm)
    altered = data[:-1] + bytes([data[-1] ^ 1])

    for _attempt in range(2):
        with pytest.raises(InvalidSignature):
            validator.validate_signature(signature, altered, key, algorithm)


def test_validator_forgets_oldest_beyond_limit(dev_pki, monkeypatch):
    signature, data, key, algorithm = _certificate_signature(dev_pki)
    validator = RememberingSignatureValidator(max_entries=1)
    root = dev_pki.trust_roots()[0]
    checks = _count_checks(monkeypatch)
    root_signature = (
        root["signature_value"].native,
        root["tbs_certificate"].dump(),
        root.public_key,
        root["signature_algorithm"],
    )

    validator.validate_signature(signature, data, key, algorithm)
    validator.validate_signature(*root_signature)
    validator.validate_signature(signature, data, key, algorithm)

    assert len(checks) == 3


def test_ca_certificates_parsed_once(dev_pki):
    first = dev_pki.ca_certificates()
    second = dev_pki.ca_certificates()

    assert [a is b for a, b in zip(first, second, strict=True)] == [True, True]
    assert dev_pki.trust_roots()[0] is dev_pki.trust_roots()[0]


def test_replaced_certificate_file_read_again(pki_copy):
    before = pki_copy.ca_certificates()[0]
    issuing_path = pki_copy.certificate_path(ISSUING_CA)
    root_pem = pki_copy.certificate_path(ROOT_CA).read_bytes()

    issuing_path.write_bytes(root_pem)

    after = pki_copy.ca_certificates()[0]
    assert after is not before
    assert after.subject == pki_copy.trust_roots()[0].subject


def test_seal_record_parsed_once(pki_copy, authorities):
    registry = SealManager(pki_copy, PASSPHRASE).registry
    code = registry.find(authorities[0].code)[0].code

    assert registry.get(code) is registry.get(code)


def test_changed_seal_record_read_again(pki_copy, authorities):
    manager = SealManager(
        pki_copy, PASSPHRASE, clock=lambda: PKI_CREATED_AT + timedelta(minutes=5)
    )
    code = manager.registry.find(authorities[0].code)[0].code
    before = manager.registry.get(code)

    manager.suspend(code, operator="王五", reason="调岗")

    after = manager.registry.get(code)
    assert before.status is SealStatus.ACTIVE
    assert after.status is SealStatus.SUSPENDED
