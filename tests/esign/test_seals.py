"""Seal registry and lifecycle: codes, status, history, keys and chains."""

from __future__ import annotations

import io
import json
import threading
from datetime import timedelta

import pytest
from conftest import PASSPHRASE, PKI_CREATED_AT, SIGNED_AT
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.validation import ValidationContext, validate_pdf_signature

from common.authority import Authority
from common.errors import (
    ConflictError,
    InputError,
    KeyStoreError,
    NotFoundError,
    TrustError,
)
from esign import certificates as profiles
from esign.keystore import Pkcs11KeyStore
from esign.pki import DevPki, ensure_dev_pki
from esign.seal_lifecycle import SealManager
from esign.seals import (
    SealRegistry,
    SealStatus,
    SealType,
    SealUnusableError,
    check_digit,
    validate_seal_code,
)
from esign.signing import LicenseSigner, SignatureLevel

LATER = PKI_CREATED_AT + timedelta(minutes=30)  # before SIGNED_AT
NEWCOMER = Authority(
    code="11152500MA0Q9X3N1X", name="锡林郭勒盟市场监督管理局", region_code="152500"
)


class Clock:
    """A settable clock for the seal manager."""

    def __init__(self, moment):
        self.moment = moment

    def __call__(self):
        return self.moment


@pytest.fixture
def clock() -> Clock:
    return Clock(LATER)


@pytest.fixture
def manager(pki_copy: DevPki, clock: Clock) -> SealManager:
    return SealManager(pki_copy, PASSPHRASE, clock=clock)


def _code(manager: SealManager, authority: Authority) -> str:
    return manager.registry.find(authority.code)[0].code


def _signed_and_status(pki: DevPki, seal, pdf: bytes):
    signer = LicenseSigner(
        seal,
        level=SignatureLevel.B_LT,
        timestamper=pki.load_timestamper(clock=lambda: SIGNED_AT),
        validation_data=pki.validation_data(PKI_CREATED_AT),
        clock=lambda: SIGNED_AT,
    )
    signed = signer.sign(pdf)
    context = ValidationContext(
        trust_roots=pki.trust_roots(),
        other_certs=pki.ca_certificates(),
        crls=pki.crls(PKI_CREATED_AT),
        allow_fetching=False,
        revocation_mode="hard-fail",
        moment=SIGNED_AT,
    )
    signature = PdfFileReader(io.BytesIO(signed)).embedded_regular_signatures[0]
    return validate_pdf_signature(signature, context)


# Seal codes


def test_seal_code_check_digit_round_trip():
    body = "150200050001"

    code = body + str(check_digit(body))

    assert validate_seal_code(code) == code


@pytest.mark.parametrize(
    "code",
    ["15020005000", "15020005000190", "150200O500019", "１５０２０００５０００１９"],
    ids=["short", "long", "letter", "full-width"],
)
def test_seal_code_malformed_rejected(code):
    with pytest.raises(InputError) as caught:
        validate_seal_code(code)

    assert "13 位数字" in caught.value.message


def test_seal_code_wrong_check_digit_rejected():
    body = "150200050001"
    wrong = body + str((check_digit(body) + 1) % 10)

    with pytest.raises(InputError) as caught:
        validate_seal_code(wrong)

    assert "校验位" in caught.value.message


def test_single_digit_typo_detected():
    code = "1502000500019"
    assert validate_seal_code(code) == code

    for position in range(len(code) - 1):
        digit = (int(code[position]) + 1) % 10
        typo = code[:position] + str(digit) + code[position + 1 :]
        assert check_digit(typo[:-1]) != int(typo[-1]), typo


# Registry of the development PKI


def test_dev_seals_registered_active(dev_pki, authorities):
    registry = dev_pki.seals

    for authority in authorities:
        found = registry.find(authority.code)
        assert len(found) == 1
        record = found[0]
        assert record.status is SealStatus.ACTIVE
        assert record.seal_type is SealType.LICENSE
        assert record.code.startswith(authority.region_code + "05")
        assert record.artwork.seal_code == record.code
        assert record.key is not None and record.key.store == "file"
        assert record.certificate is not None and record.certificate.dev_ca


def test_dev_seal_history_and_files(dev_pki, authorities):
    record = dev_pki.seals.find(authorities[0].code)[0]
    directory = dev_pki.seals.seal_dir(record.code)

    history = dev_pki.seals.history(record.code)

    assert [entry.action for entry in history] == ["requested", "activated"]
    assert history[-1].certificate_serial == record.certificate.serial
    assert all(entry.operator == "elicense init" for entry in history)
    for name in ("seal.json", "history.jsonl", "seal.pem", "chain.pem", "seal.svg"):
        assert (directory / name).is_file(), name
    assert not (directory / "request.csr").exists()


def test_record_json_names_authority(dev_pki, authorities):
    authority = authorities[2]
    record = dev_pki.seals.find(authority.code)[0]

    data = json.loads((dev_pki.seals.seal_dir(record.code) / "seal.json").read_text())

    assert data["authority"] == {
        "code": authority.code,
        "name": authority.name,
        "region_code": authority.region_code,
        "level": authority.level.value,
        "department": authority.department,
    }
    assert data["type"] == "license"
    assert data["status"] == "active"


def test_unknown_seal_code_not_found(dev_pki):
    with pytest.raises(NotFoundError) as caught:
        dev_pki.seals.get("1599990599999")

    assert "1599990599999" in caught.value.message


def test_legacy_seal_folder_adopted(pki_copy, authorities):
    authority = authorities[1]
    registry = pki_copy.seals
    record = registry.find(authority.code)[0]
    directory = registry.seal_dir(record.code)
    for name in ("seal.json", "history.jsonl", "chain.pem", "seal.svg"):
        (directory / name).unlink()
    directory.rename(directory.parent / authority.code)

    pki = ensure_dev_pki(
        pki_copy.data_dir,
        authorities,
        base_url=pki_copy.urls.base_url,
        passphrase=PASSPHRASE,
        now=LATER,
    )

    adopted = pki.seals.find(authority.code)[0]
    assert adopted.certificate.serial == record.certificate.serial
    assert adopted.status is SealStatus.ACTIVE
    assert [entry.action for entry in pki.seals.history(adopted.code)] == ["adopted"]
    assert pki.load_seal(authority.code).certificate.serial_number == int(
        record.certificate.serial, 16
    )


def test_ensure_dev_pki_keeps_registered_seals(pki_copy, authorities):
    before = {code: pki_copy.seals.get(code) for code in pki_copy.seal_codes()}

    pki = ensure_dev_pki(
        pki_copy.data_dir,
        authorities,
        base_url=pki_copy.urls.base_url,
        passphrase=PASSPHRASE,
        now=LATER,
    )

    assert {code: pki.seals.get(code) for code in pki.seal_codes()} == before


# Status changes


def test_suspended_seal_cannot_sign(manager, authorities):
    authority = authorities[0]
    code = _code(manager, authority)

    manager.suspend(code, operator="王五", reason="印章保管人调岗")

    with pytest.raises(SealUnusableError) as caught:
        manager.usable_seal(authority.code)
    assert code in caught.value.message
    assert "暂停" in caught.value.message
    assert "印章保管人调岗" in caught.value.message
    assert f"elicense seal resume {code}" in caught.value.fix


def test_resumed_seal_signs_again(manager, authorities):
    authority = authorities[0]
    code = _code(manager, authority)
    manager.suspend(code, operator="王五", reason="调岗")

    manager.resume(code, operator="王五", reason="交接完成")

    assert manager.usable_seal(authority.code).code == code
    actions = [entry.action for entry in manager.registry.history(code)]
    assert actions[-2:] == ["suspended", "resumed"]


def test_suspend_twice_conflicts(manager, authorities):
    code = _code(manager, authorities[0])
    manager.suspend(code, operator="王五", reason="调岗")

    with pytest.raises(ConflictError) as caught:
        manager.suspend(code, operator="王五", reason="调岗")

    assert "暂停" in caught.value.message


def test_resume_active_conflicts(manager, authorities):
    with pytest.raises(ConflictError):
        manager.resume(_code(manager, authorities[0]), operator="王五", reason="误操作")


def test_history_only_appended(manager, authorities):
    code = _code(manager, authorities[0])
    path = manager.registry.seal_dir(code) / "history.jsonl"
    before = path.read_bytes()

    manager.suspend(code, operator="王五", reason="调岗")
    manager.resume(code, operator="赵六", reason="交接完成")

    after = path.read_bytes()
    assert after.startswith(before)
    added = [json.loads(line) for line in after[len(before) :].splitlines()]
    assert [entry["operator"] for entry in added] == ["王五", "赵六"]
    assert [entry["reason"] for entry in added] == ["调岗", "交接完成"]
    assert all(entry["at"] == LATER.isoformat() for entry in added)


def test_damaged_history_line_skipped(manager, authorities):
    code = _code(manager, authorities[0])
    path = manager.registry.seal_dir(code) / "history.jsonl"
    with path.open("ab") as file:
        file.write(b'{"at": "2026-03-03T00:00:00+00:00", "act')

    history = manager.registry.history(code)

    assert [entry.action for entry in history] == ["requested", "activated"]


def test_revoke_lists_certificate_in_crl(manager, pki_copy, authorities, clock):
    code = _code(manager, authorities[0])
    revoked_at = LATER - timedelta(minutes=10)

    record = manager.revoke(
        code,
        operator="王五",
        reason="私钥泄露",
        revoked_at=revoked_at,
        crl_reason=x509.ReasonFlags.key_compromise,
    )

    assert record.status is SealStatus.REVOKED
    crl = x509.load_der_x509_crl(pki_copy.crl_path("issuing-ca").read_bytes())
    entry = crl.get_revoked_certificate_by_serial_number(
        int(record.certificate.serial, 16)
    )
    assert entry is not None
    assert entry.revocation_date_utc == revoked_at
    last = manager.registry.history(code)[-1]
    assert last.action == "revoked"
    assert last.details["certificate_revoked_by_dev_ca"] is True


def test_revoked_seal_cannot_sign(manager, authorities):
    authority = authorities[0]
    code = _code(manager, authority)
    manager.revoke(code, operator="王五", reason="机构撤并")

    with pytest.raises(SealUnusableError) as caught:
        manager.usable_seal(authority.code)

    assert "已吊销" in caught.value.message
    assert "elicense seal request" in caught.value.fix


def test_revoked_seal_not_renewable(manager, authorities):
    code = _code(manager, authorities[0])
    manager.revoke(code, operator="王五", reason="机构撤并")

    with pytest.raises(SealUnusableError):
        manager.renew(code, operator="王五", reason="延续")


def test_revoke_twice_conflicts(manager, authorities):
    code = _code(manager, authorities[0])
    manager.revoke(code, operator="王五", reason="机构撤并")

    with pytest.raises(ConflictError):
        manager.revoke(code, operator="王五", reason="机构撤并")


def test_revocation_in_future_rejected(manager, authorities):
    code = _code(manager, authorities[0])

    with pytest.raises(InputError) as caught:
        manager.revoke(
            code, operator="王五", reason="x", revoked_at=LATER + timedelta(days=1)
        )

    assert caught.value.field == "revoked_at"
    assert manager.registry.get(code).status is SealStatus.ACTIVE


# Expiry and renewal


def test_expired_seal_marked_and_refused(manager, authorities, clock):
    authority = authorities[0]
    record = manager.registry.find(authority.code)[0]
    clock.moment = record.certificate.not_after + timedelta(seconds=1)

    with pytest.raises(SealUnusableError) as caught:
        manager.usable_seal(authority.code)

    assert "已过期" in caught.value.message
    assert f"elicense seal renew {record.code}" in caught.value.fix
    last = manager.registry.history(record.code)[-1]
    assert last.action == "expired"
    assert last.operator == "system"


def test_expiring_lists_seals_within_days(manager, authorities, clock):
    record = manager.registry.find(authorities[0].code)[0]
    clock.moment = record.certificate.not_after - timedelta(days=10)

    within_thirty = manager.expiring(30)
    within_five = manager.expiring(5)

    assert record.code in {item.seal.code for item in within_thirty}
    days_left = [
        item.days_left for item in within_thirty if item.seal.code == record.code
    ]
    assert days_left == [10]
    assert within_five == []


def test_renewal_keeps_code_and_history(manager, authorities, clock):
    authority = authorities[0]
    before = manager.registry.find(authority.code)[0]
    clock.moment = before.certificate.not_after + timedelta(days=1)
    manager.refresh_expiry()

    manager.renew(before.code, operator="王五", reason="证书到期")
    renewed = manager.issue_with_dev_ca(before.code, operator="王五", reason="延续")

    assert renewed.code == before.code
    assert renewed.status is SealStatus.ACTIVE
    assert renewed.certificate.serial != before.certificate.serial
    assert renewed.certificate.not_after > clock.moment
    actions = [entry.action for entry in manager.registry.history(before.code)]
    assert actions == [
        "requested",
        "activated",
        "expired",
        "renewal_requested",
        "renewed",
    ]
    archive = manager.registry.seal_dir(before.code) / "archive"
    assert (archive / f"{before.certificate.serial}.pem").is_file()
    assert manager.usable_seal(authority.code).code == before.code


def test_old_certificate_signs_until_import(manager, authorities):
    authority = authorities[0]
    before = manager.registry.find(authority.code)[0]

    manager.renew(before.code, operator="王五", reason="提前延续")

    current = manager.usable_seal(authority.code)
    assert current.certificate.serial == before.certificate.serial
    assert current.pending is not None
    assert (manager.registry.seal_dir(before.code) / "pending.key.p8").is_file()


def test_renewed_key_signs_valid_pdf(manager, pki_copy, authorities, sample_pdf):
    code = _code(manager, authorities[0])
    manager.renew(code, algorithm="rsa-2048", operator="王五", reason="换用 RSA")
    record = manager.issue_with_dev_ca(code, operator="王五", reason="延续")

    status = _signed_and_status(pki_copy, manager.credentials(record), sample_pdf)

    assert record.key.algorithm == "rsa-2048"
    assert status.intact
    assert status.trusted


# Requests and imported chains


def test_request_registers_pending_seal(manager):
    record, csr_pem = manager.request(
        NEWCOMER, SealType.OFFICIAL, operator="王五", reason="新机构"
    )

    assert record.status is SealStatus.PENDING
    assert record.code.startswith("15250001")
    assert record.artwork.purpose == "公章"
    csr = x509.load_pem_x509_csr(csr_pem)
    assert csr.is_signature_valid
    identifier = csr.subject.get_attributes_for_oid(NameOID.ORGANIZATION_IDENTIFIER)
    assert identifier[0].value == f"NTRCN-{NEWCOMER.code}"


def test_pending_seal_cannot_sign(manager):
    record, _ = manager.request(NEWCOMER, operator="王五", reason="新机构")

    with pytest.raises(SealUnusableError) as caught:
        manager.usable_seal(NEWCOMER.code)

    assert "待激活" in caught.value.message
    assert f"elicense seal import {record.code}" in caught.value.fix


def test_official_seal_never_signs_licenses(manager):
    record, _ = manager.request(
        NEWCOMER, SealType.OFFICIAL, operator="王五", reason="公章"
    )
    manager.issue_with_dev_ca(record.code, operator="王五", reason="签发")

    with pytest.raises(NotFoundError) as caught:
        manager.usable_seal(NEWCOMER.code)

    assert "证照专用章" in caught.value.message


def test_request_codes_unique_under_threads(manager):
    codes: list[str] = []

    def request() -> None:
        record, _ = manager.request(NEWCOMER, operator="王五", reason="并发")
        codes.append(record.code)

    threads = [threading.Thread(target=request) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(set(codes)) == 4


@pytest.mark.parametrize("algorithm", ["ec-p256", "rsa-2048", "rsa-3072"])
def test_seal_algorithms_sign_valid_pdf(manager, pki_copy, sample_pdf, algorithm):
    record, _ = manager.request(
        NEWCOMER, algorithm=algorithm, operator="王五", reason="新机构"
    )
    record = manager.issue_with_dev_ca(record.code, operator="王五", reason="签发")

    status = _signed_and_status(pki_copy, manager.credentials(record), sample_pdf)

    public_key = manager.certificate(record).public_key()
    expected = ec.EllipticCurvePublicKey if algorithm == "ec-p256" else rsa.RSAPublicKey
    assert isinstance(public_key, expected)
    assert status.intact
    assert status.valid
    assert status.trusted


@pytest.fixture
def outside_ca(tmp_path):
    """A CA of another region: its own root, unknown to the development PKI."""
    from esign.certificates import Issuer, PublicationUrls

    key = ec.generate_private_key(ec.SECP256R1())
    root = profiles.build_root(
        "外省电子证照根CA", key, PKI_CREATED_AT, timedelta(days=3650)
    )
    return Issuer("outside-root", root, key), PublicationUrls("http://127.0.0.1:9")


def _issue_outside(
    outside_ca, csr_pem: bytes, subject: x509.Name | None = None
) -> bytes:
    issuer, urls = outside_ca
    csr = x509.load_pem_x509_csr(csr_pem)
    certificate = profiles.build_end_entity(
        subject or csr.subject,
        csr.public_key(),
        issuer,
        urls,
        LATER,
        timedelta(days=700),
    )
    return b"".join(
        cert.public_bytes(serialization.Encoding.PEM)
        for cert in (certificate, issuer.certificate)
    )


def test_import_outside_chain_with_trusted_root(manager, outside_ca):
    record, csr = manager.request(NEWCOMER, operator="王五", reason="新机构")

    imported = manager.import_chain(
        record.code,
        _issue_outside(outside_ca, csr),
        [outside_ca[0].certificate],
        operator="王五",
        reason="外省 CA 签发",
    )

    assert imported.status is SealStatus.ACTIVE
    assert imported.certificate.dev_ca is False
    assert manager.usable_seal(NEWCOMER.code).code == record.code


def test_import_untrusted_root_rejected(manager, outside_ca):
    record, csr = manager.request(NEWCOMER, operator="王五", reason="新机构")

    with pytest.raises(TrustError) as caught:
        manager.import_chain(
            record.code,
            _issue_outside(outside_ca, csr),
            [],
            operator="王五",
            reason="x",
        )

    assert "受信任的根证书" in caught.value.message
    assert manager.registry.get(record.code).status is SealStatus.PENDING


def test_import_chain_for_other_key_rejected(manager, outside_ca):
    record, _ = manager.request(NEWCOMER, operator="王五", reason="新机构")
    _, other_csr = manager.request(NEWCOMER, operator="王五", reason="另一枚")

    with pytest.raises(InputError) as caught:
        manager.import_chain(
            record.code,
            _issue_outside(outside_ca, other_csr),
            [outside_ca[0].certificate],
            operator="王五",
            reason="x",
        )

    assert "公钥" in caught.value.message


def test_import_chain_for_other_authority_rejected(manager, outside_ca, authorities):
    record, csr = manager.request(NEWCOMER, operator="王五", reason="新机构")
    wrong_subject = profiles.seal_name(authorities[0])

    with pytest.raises(InputError) as caught:
        manager.import_chain(
            record.code,
            _issue_outside(outside_ca, csr, wrong_subject),
            [outside_ca[0].certificate],
            operator="王五",
            reason="x",
        )

    assert authorities[0].code in caught.value.message
    assert NEWCOMER.code in caught.value.message


def test_import_garbage_rejected(manager):
    record, _ = manager.request(NEWCOMER, operator="王五", reason="新机构")

    with pytest.raises(InputError) as caught:
        manager.import_chain(
            record.code,
            b"-----BEGIN CERTIFICATE-----\nAAAA\n",
            [],
            operator="王五",
            reason="x",
        )

    assert caught.value.field == "chain"


def test_import_without_request_conflicts(manager, authorities):
    with pytest.raises(ConflictError):
        manager.import_chain(
            _code(manager, authorities[0]), b"", [], operator="王五", reason="x"
        )


# PKCS#11 token


@pytest.fixture
def token_manager(pki_copy, clock, softhsm_token):
    return SealManager(
        pki_copy,
        PASSPHRASE,
        open_token=lambda read_write: Pkcs11KeyStore(
            softhsm_token, environ={}, read_write=read_write
        ),
        clock=clock,
    )


@pytest.mark.parametrize("algorithm", ["ec-p256", "rsa-2048"])
def test_token_seal_signs_valid_pdf(
    token_manager, pki_copy, softhsm_token, sample_pdf, algorithm
):
    record, _ = token_manager.request(
        NEWCOMER,
        key_store="pkcs11",
        algorithm=algorithm,
        operator="王五",
        reason="令牌",
    )
    record = token_manager.issue_with_dev_ca(
        record.code, operator="王五", reason="签发"
    )

    with Pkcs11KeyStore(softhsm_token, environ={}) as store:
        status = _signed_and_status(
            pki_copy, token_manager.credentials(record, store), sample_pdf
        )

    assert record.key.store == "pkcs11"
    assert record.key.token_label == softhsm_token.token_label
    assert record.key.key_label.startswith(f"seal-{record.code}-")
    assert not (pki_copy.seals.seal_dir(record.code) / "seal.key.p8").exists()
    assert status.intact
    assert status.trusted


def test_token_seal_without_token_raises(token_manager, manager):
    record, _ = token_manager.request(
        NEWCOMER, key_store="pkcs11", operator="王五", reason="令牌"
    )
    record = token_manager.issue_with_dev_ca(
        record.code, operator="王五", reason="签发"
    )

    with pytest.raises(KeyStoreError) as caught:
        manager.credentials(record)

    assert "PKCS#11" in str(caught.value)


def test_token_request_without_settings_raises(manager):
    with pytest.raises(KeyStoreError) as caught:
        manager.request(NEWCOMER, key_store="pkcs11", operator="王五", reason="令牌")

    assert "ELICENSE_PKCS11_MODULE" in caught.value.fix
    assert SealRegistry(manager.pki.pki_dir).find(NEWCOMER.code) == []
    assert not list(manager.registry.root.glob("15250005*"))
