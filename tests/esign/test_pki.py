"""Development PKI: layout, certificate profiles, idempotence."""

from __future__ import annotations

from datetime import timedelta

import pytest
from conftest import PASSPHRASE, PKI_CREATED_AT
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from common.authority import Authority
from common.errors import NotFoundError
from esign.certificates import uscc_from_subject
from esign.pki import ensure_dev_pki
from esign.revocation import CRL_VALIDITY


def _extension(certificate: x509.Certificate, kind: type) -> x509.Extension:
    return certificate.extensions.get_extension_for_class(kind)


def test_layout(dev_pki, authorities):
    pki_dir = dev_pki.pki_dir
    expected = [
        "root-ca.key.p8",
        "root-ca.pem",
        "issuing-ca.key.p8",
        "issuing-ca.pem",
        "tsa.key.p8",
        "tsa.pem",
        "token-signer.key.p8",
        "token-signer.pem",
        "crl/root-ca.crl",
        "crl/issuing-ca.crl",
        "ca/root-ca.cer",
        "ca/issuing-ca.cer",
    ]
    for name in expected:
        assert (pki_dir / name).is_file(), name
    for authority in authorities:
        assert (dev_pki.seal_dir(authority.code) / "seal.key.p8").is_file()
        assert (dev_pki.seal_dir(authority.code) / "seal.pem").is_file()
    assert dev_pki.trust_root_path == dev_pki.data_dir / "trust" / "root-ca.pem"
    owners = [dev_pki.seals.get(code).authority.code for code in dev_pki.seal_codes()]
    assert sorted(owners) == sorted(authority.code for authority in authorities)


def test_every_key_file_encrypted(dev_pki):
    for path in dev_pki.pki_dir.rglob("*.key.p8"):
        assert path.read_bytes().startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----")


def test_root_is_regional_p256(dev_pki):
    root = dev_pki.certificate("root-ca")

    assert root.subject == root.issuer
    assert "内蒙古自治区电子证照根CA (开发)" in root.subject.rfc4514_string()
    assert isinstance(root.public_key(), ec.EllipticCurvePublicKey)
    assert root.public_key().curve.name == "secp256r1"
    assert _extension(root, x509.BasicConstraints).value.ca


def test_trust_root_file_is_root(dev_pki):
    trusted = x509.load_pem_x509_certificate(dev_pki.trust_root_path.read_bytes())

    assert trusted == dev_pki.certificate("root-ca")


def test_seal_subject_carries_name_and_uscc(dev_pki, authorities):
    for authority in authorities:
        seal = dev_pki.load_seal(authority.code)
        subject = x509.load_der_x509_certificate(seal.certificate.dump()).subject

        assert (
            subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
            == authority.name
        )
        assert subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == (
            authority.name
        )
        assert subject.get_attributes_for_oid(NameOID.ORGANIZATION_IDENTIFIER)[
            0
        ].value == (f"NTRCN-{authority.code}")
        assert uscc_from_subject(seal.certificate) == authority.code


def test_seal_key_usage_and_chain(dev_pki, authorities):
    seal = dev_pki.load_seal(authorities[0].code)
    certificate = x509.load_der_x509_certificate(seal.certificate.dump())

    usage = _extension(certificate, x509.KeyUsage)
    assert usage.critical
    assert usage.value.digital_signature
    assert usage.value.content_commitment
    assert not usage.value.key_cert_sign
    assert not _extension(certificate, x509.BasicConstraints).value.ca
    assert (
        ExtendedKeyUsageOID.EMAIL_PROTECTION
        in _extension(certificate, x509.ExtendedKeyUsage).value
    )
    assert certificate.issuer == dev_pki.certificate("issuing-ca").subject
    assert [c.subject for c in seal.chain] == [
        c.subject for c in dev_pki.ca_certificates()
    ]


def test_urls_under_base_url(dev_pki, authorities, pki_server):
    base = pki_server.base_url
    seal = x509.load_der_x509_certificate(
        dev_pki.load_seal(authorities[0].code).certificate.dump()
    )

    points = _extension(seal, x509.CRLDistributionPoints).value
    assert points[0].full_name[0].value == f"{base}/pki/crl/issuing-ca.crl"
    access = {
        item.access_method._name: item.access_location.value
        for item in _extension(seal, x509.AuthorityInformationAccess).value
    }
    assert access == {
        "OCSP": f"{base}/pki/ocsp",
        "caIssuers": f"{base}/pki/ca/issuing-ca.cer",
    }
    issuing = dev_pki.certificate("issuing-ca")
    issuing_points = _extension(issuing, x509.CRLDistributionPoints).value
    assert issuing_points[0].full_name[0].value == f"{base}/pki/crl/root-ca.crl"


def test_tsa_profile(dev_pki):
    tsa = dev_pki.certificate("tsa")

    assert isinstance(tsa.public_key(), rsa.RSAPublicKey)
    assert tsa.public_key().key_size == 2048
    usage = _extension(tsa, x509.ExtendedKeyUsage)
    assert usage.critical
    assert list(usage.value) == [ExtendedKeyUsageOID.TIME_STAMPING]


def test_token_signer_profile(dev_pki):
    signer = dev_pki.certificate("token-signer")

    assert signer.public_key().curve.name == "secp256r1"
    assert signer.issuer == dev_pki.certificate("issuing-ca").subject
    assert _extension(signer, x509.KeyUsage).value.digital_signature


def test_crls_signed_by_their_ca(dev_pki):
    for name in ("root-ca", "issuing-ca"):
        crl = x509.load_der_x509_crl(dev_pki.crl_path(name).read_bytes())
        ca = dev_pki.certificate(name)

        assert crl.issuer == ca.subject
        assert crl.is_signature_valid(ca.public_key())
        assert crl.next_update_utc - crl.last_update_utc == CRL_VALIDITY


def test_second_run_keeps_existing_and_adds_seal(pki_copy, authorities):
    before = {
        path.relative_to(pki_copy.pki_dir): path.read_bytes()
        for path in pki_copy.pki_dir.rglob("*")
        if path.is_file() and path.suffix in (".pem", ".p8")
    }
    newcomer = Authority(
        code="11152500MA0Q9X3N1X", name="锡林郭勒盟市场监督管理局", region_code="152500"
    )

    pki = ensure_dev_pki(
        pki_copy.data_dir,
        [*authorities, newcomer],
        base_url=pki_copy.urls.base_url,
        passphrase=PASSPHRASE,
        now=PKI_CREATED_AT + timedelta(hours=1),
    )

    for relative, content in before.items():
        assert (pki.pki_dir / relative).read_bytes() == content, relative
    assert pki.seals.find(newcomer.code)
    assert pki.load_seal(newcomer.code).authority.name == newcomer.name


def test_crl_reissued_when_half_validity_passed(pki_copy, authorities):
    path = pki_copy.crl_path("issuing-ca")
    first = x509.load_der_x509_crl(path.read_bytes())

    pki_copy.crls(PKI_CREATED_AT + CRL_VALIDITY / 4)
    unchanged = x509.load_der_x509_crl(path.read_bytes())
    pki_copy.crls(PKI_CREATED_AT + CRL_VALIDITY * 3 / 4)
    reissued = x509.load_der_x509_crl(path.read_bytes())

    number = x509.CRLNumber
    assert unchanged.extensions.get_extension_for_class(number).value.crl_number == (
        first.extensions.get_extension_for_class(number).value.crl_number
    )
    assert reissued.last_update_utc == PKI_CREATED_AT + CRL_VALIDITY * 3 / 4
    assert reissued.extensions.get_extension_for_class(number).value.crl_number == (
        first.extensions.get_extension_for_class(number).value.crl_number + 1
    )


def test_unknown_seal_raises_not_found(dev_pki):
    with pytest.raises(NotFoundError) as caught:
        dev_pki.load_seal("91350100M000100Y43")

    assert "91350100M000100Y43" in caught.value.message


def test_load_seal_by_authority_object(dev_pki, authorities):
    seal = dev_pki.load_seal(authorities[1])

    assert seal.authority == authorities[1]


def test_crls_cached_until_file_changes(pki_copy):
    first = pki_copy.crls(PKI_CREATED_AT)
    second = pki_copy.crls(PKI_CREATED_AT)

    assert first[0] is second[0]
    assert first[1] is second[1]
