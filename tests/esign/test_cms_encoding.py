"""CMS values encoded once: same DER as pyhanko's own classes, each node once."""

from __future__ import annotations

import asyncio
import hashlib

import pytest
from asn1crypto import algos, cms, core, keys
from conftest import PASSPHRASE, SIGNED_AT
from cryptography.hazmat.primitives import serialization
from pyhanko.sign import general
from pyhanko.sign.signers.pdf_cms import SimpleSigner
from pyhanko.sign.timestamps import DummyTimeStamper, api, dummy_client
from pyhanko_certvalidator.registry import SimpleCertificateStore

from esign.certificates import to_asn1
from esign.cms_encoding import SigningCertificateV2, encode_bottom_up, frozen
from esign.keystore import InMemorySigner, load_private_key
from esign.pki import ISSUING_CA, ROOT_CA, TSA, DevPki
from esign.timestamps import BuiltinTimeStamper

FIXED_NONCE = 0x1234_5678_9ABC_DEF0


@pytest.fixture
def fixed_nonces(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make request nonces and token serial numbers repeatable."""
    monkeypatch.setattr(api, "get_nonce", lambda: FIXED_NONCE)
    monkeypatch.setattr(dummy_client, "get_nonce", lambda: FIXED_NONCE)


def _signed_attributes(certificate) -> cms.CMSAttributes:
    """A nested value built in Python, as pyhanko builds signed attributes."""
    return cms.CMSAttributes(
        [
            general.simple_cms_attribute("content_type", "data"),
            general.simple_cms_attribute("message_digest", bytes(32)),
            general.simple_cms_attribute(
                "signing_certificate_v2",
                general.as_signing_certificate_v2(certificate),
            ),
        ]
    )


def _rsa_credentials(pki: DevPki):
    """The RSA key and certificate of the TSA, with the CA certificates."""
    key = load_private_key(pki.key_path(TSA), PASSPHRASE)
    certificate = to_asn1(pki.certificate(TSA))
    chain = [to_asn1(pki.certificate(name)) for name in (ISSUING_CA, ROOT_CA)]
    return key, certificate, chain


def _private_key_info(key) -> keys.PrivateKeyInfo:
    der = key.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return keys.PrivateKeyInfo.load(der)


def test_frozen_value_has_same_der(dev_pki):
    certificate = dev_pki.ca_certificates()[0]

    result = frozen(_signed_attributes(certificate))

    assert result.dump() == _signed_attributes(certificate).dump()
    assert isinstance(result, cms.CMSAttributes)


def test_frozen_value_is_parsed_lazily(dev_pki):
    result = frozen(_signed_attributes(dev_pki.ca_certificates()[0]))

    # A parsed value returns its stored encoding from dump().
    assert result.children is None


def _count_encodings(monkeypatch: pytest.MonkeyPatch) -> list[core.Asn1Value]:
    """Record every SEQUENCE and SET that asn1crypto encodes from its children.

    The list keeps each recorded value alive, so no two share an id.
    """
    encoded: list[core.Asn1Value] = []
    for cls in (core.Sequence, core.SequenceOf, core.SetOf):
        original = cls._set_contents

        def counting(self, force=False, _original=original):
            encoded.append(self)
            _original(self, force)

        monkeypatch.setattr(cls, "_set_contents", counting)
    return encoded


def _tree(value: core.Asn1Value) -> list[core.Asn1Value]:
    """Return ``value`` and every parsed value below it."""
    nodes = [value]
    if isinstance(value, core.Choice | core.Any):
        inner = value._parsed
        inner = inner[0] if isinstance(inner, tuple) else inner
        if inner is not None:
            nodes += _tree(inner)
    elif isinstance(value, core.Sequence | core.SequenceOf) and value.children:
        for child in value.children:
            if not isinstance(child, tuple):
                nodes += _tree(child)
    return nodes


def test_bottom_up_encodes_node_once(dev_pki, monkeypatch):
    value = _signed_attributes(dev_pki.ca_certificates()[0])
    tree = {id(node) for node in _tree(value)}
    encoded = _count_encodings(monkeypatch)

    encode_bottom_up(value)

    encoded_in_tree = [id(node) for node in encoded if id(node) in tree]
    assert encoded_in_tree
    assert len(encoded_in_tree) == len(set(encoded_in_tree))


def test_dump_after_encoding_reencodes_nothing(dev_pki, monkeypatch):
    value = _signed_attributes(dev_pki.ca_certificates()[0])
    encode_bottom_up(value)
    encoded = _count_encodings(monkeypatch)

    value.dump()

    assert encoded == []


def test_unmutated_value_keeps_its_encoding(dev_pki):
    certificate = dev_pki.ca_certificates()[0]
    der = certificate.dump()

    encode_bottom_up(certificate)

    assert certificate.dump() == der


def test_builtin_tsa_response_matches_pyhanko(dev_pki, fixed_nonces):
    key, certificate, chain = _rsa_credentials(dev_pki)
    builtin = BuiltinTimeStamper(certificate, key, chain, clock=lambda: SIGNED_AT)
    reference = DummyTimeStamper(
        certificate,
        _private_key_info(key),
        certs_to_embed=SimpleCertificateStore.from_certs(chain),
        fixed_dt=SIGNED_AT,
    )
    _nonce, request = builtin.request_cms(hashlib.sha256(b"a").digest(), "sha256")

    ours = builtin.request_tsa_response(request).dump()
    theirs = reference.request_tsa_response(request).dump()

    assert ours == theirs


def test_signer_cms_matches_pyhanko(dev_pki, fixed_nonces):
    key, certificate, chain = _rsa_credentials(dev_pki)
    timestamper = BuiltinTimeStamper(certificate, key, chain, clock=lambda: SIGNED_AT)
    ours = InMemorySigner(key, certificate, chain)
    theirs = SimpleSigner(
        signing_cert=certificate,
        signing_key=_private_key_info(key),
        cert_registry=SimpleCertificateStore.from_certs([certificate, *chain]),
        signature_mechanism=algos.SignedDigestAlgorithm({"algorithm": "sha256_rsa"}),
    )
    digest = hashlib.sha256(b"document").digest()

    def sign(signer) -> bytes:
        signed = asyncio.run(
            signer.async_sign(digest, "sha256", use_pades=True, timestamper=timestamper)
        )
        return signed.dump()

    assert sign(ours) == sign(theirs)


def test_cached_signing_certificate_not_shared(dev_pki):
    certificate = dev_pki.ca_certificates()[0]
    provider = SigningCertificateV2(certificate)

    first = asyncio.run(provider.build_attr_value())
    second = asyncio.run(provider.build_attr_value())

    assert first is not second
    assert first.dump() == general.as_signing_certificate_v2(certificate).dump()
    assert second.dump() == first.dump()
