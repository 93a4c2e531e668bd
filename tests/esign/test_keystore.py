"""Encrypted key files, passphrase sources and a SoftHSM2 token."""

from __future__ import annotations

import io
import os
import stat
from pathlib import Path

import pytest
from conftest import PASSPHRASE, SIGNED_AT, SOFTHSM_MODULE, softhsm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.validation import ValidationContext, validate_pdf_signature

from common.errors import KeyStoreError
from esign.keystore import (
    PASSPHRASE_ENV,
    Pkcs11Config,
    Pkcs11KeyStore,
    load_private_key,
    read_passphrase,
    write_private_key,
)
from esign.pki import SealCredentials, ensure_dev_pki
from esign.signing import LicenseSigner, SignatureLevel


def test_key_file_round_trip(tmp_path):
    key = ec.generate_private_key(ec.SECP256R1())
    path = tmp_path / "seal.key.p8"

    write_private_key(path, key, b"secret")
    loaded = load_private_key(path, b"secret")

    assert loaded.private_numbers() == key.private_numbers()


def test_key_file_encrypted_and_private(tmp_path):
    path = tmp_path / "seal.key.p8"

    write_private_key(path, ec.generate_private_key(ec.SECP256R1()), b"secret")

    assert path.read_bytes().startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_wrong_passphrase_raises_key_store_error(tmp_path):
    path = tmp_path / "seal.key.p8"
    write_private_key(path, ec.generate_private_key(ec.SECP256R1()), b"secret")

    with pytest.raises(KeyStoreError) as caught:
        load_private_key(path, b"Tr0ub4dor-guess")

    assert "口令错误" in caught.value.message
    assert PASSPHRASE_ENV in caught.value.fix
    assert "Tr0ub4dor" not in str(caught.value)


def test_missing_key_raises_key_store_error(tmp_path):
    with pytest.raises(KeyStoreError) as caught:
        load_private_key(tmp_path / "absent.key.p8", b"secret")

    assert "不存在" in caught.value.message
    assert "elicense init" in caught.value.fix


def test_damaged_key_raises_key_store_error(tmp_path):
    path = tmp_path / "seal.key.p8"
    path.write_bytes(b"-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n")

    with pytest.raises(KeyStoreError):
        load_private_key(path, b"secret")


def test_passphrase_from_environment(tmp_path):
    environ = {PASSPHRASE_ENV: "from-env"}

    assert read_passphrase(tmp_path / "unused", environ=environ) == b"from-env"


def test_passphrase_from_file(tmp_path):
    path = tmp_path / "key-passphrase"
    path.write_bytes(b"from-file\n")

    assert read_passphrase(path, environ={}) == b"from-file"


def test_passphrase_missing_raises(tmp_path):
    with pytest.raises(KeyStoreError) as caught:
        read_passphrase(None, environ={})

    assert PASSPHRASE_ENV in caught.value.message


def test_passphrase_file_unreadable_raises(tmp_path):
    with pytest.raises(KeyStoreError) as caught:
        read_passphrase(tmp_path / "absent", environ={})

    assert str(tmp_path / "absent") in caught.value.message


def test_passphrase_file_empty_raises(tmp_path):
    path = tmp_path / "key-passphrase"
    path.write_bytes(b"\n")

    with pytest.raises(KeyStoreError):
        read_passphrase(path, environ={})


def test_dev_pki_wrong_passphrase_raises(pki_copy, authorities):
    with pytest.raises(KeyStoreError) as caught:
        ensure_dev_pki(
            pki_copy.data_dir,
            authorities,
            base_url=pki_copy.urls.base_url,
            passphrase=b"not the passphrase",
        )

    assert "root-ca.key.p8" in caught.value.message


def test_seal_signer_repr_hides_key(dev_pki, authorities):
    seal = dev_pki.load_seal(authorities[0].code)

    text = repr(seal.signer)

    assert "InMemorySigner" in text
    assert "PrivateKey" not in text


def _import_seal_key(pki, authority, config: Pkcs11Config, tmp_path: Path) -> None:
    key = load_private_key(pki.seal_dir(authority.code) / "seal.key.p8", PASSPHRASE)
    plain = tmp_path / "import.pem"
    descriptor = os.open(plain, os.O_WRONLY | os.O_CREAT, 0o600)
    with os.fdopen(descriptor, "wb") as file:
        file.write(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
    try:
        softhsm(
            "--import",
            str(plain),
            "--token",
            config.token_label,
            "--label",
            "seal",
            "--id",
            "01",
            "--pin",
            "1234",
        )
    finally:
        plain.unlink()


def test_softhsm_token_signs_pdf(
    softhsm_token,
    dev_pki,
    authorities,
    timestamper,
    validation_data,
    sample_pdf,
    tmp_path,
):
    authority = authorities[0]
    _import_seal_key(dev_pki, authority, softhsm_token, tmp_path)
    file_seal = dev_pki.load_seal(authority.code)

    with Pkcs11KeyStore(softhsm_token, environ={}) as store:
        signer = store.signer("seal", file_seal.certificate, file_seal.chain)
        seal = SealCredentials(
            authority, file_seal.certificate, file_seal.chain, signer
        )
        pdf = LicenseSigner(
            seal,
            level=SignatureLevel.B_LT,
            timestamper=timestamper,
            validation_data=validation_data,
            clock=lambda: SIGNED_AT,
        ).sign(sample_pdf)

    context = ValidationContext(
        trust_roots=dev_pki.trust_roots(),
        crls=list(validation_data.crls),
        allow_fetching=False,
        moment=SIGNED_AT,
    )
    signature = PdfFileReader(io.BytesIO(pdf)).embedded_regular_signatures[0]
    status = validate_pdf_signature(signature, context)
    assert status.intact
    assert status.trusted


def test_softhsm_missing_key_raises(softhsm_token, dev_pki, authorities):
    seal = dev_pki.load_seal(authorities[0].code)

    with (
        Pkcs11KeyStore(softhsm_token, environ={}) as store,
        pytest.raises(KeyStoreError) as caught,
    ):
        store.signer("absent", seal.certificate, seal.chain)

    assert "absent" in caught.value.message


def test_softhsm_wrong_pin_raises(softhsm_token):
    with pytest.raises(KeyStoreError) as caught:
        Pkcs11KeyStore(softhsm_token, environ={"ELICENSE_TEST_UNSET_PIN": "0000"})

    assert "elicense-test" in caught.value.message
    assert "0000" not in str(caught.value)


def test_softhsm_unknown_token_raises(softhsm_token):
    config = Pkcs11Config(
        SOFTHSM_MODULE, "no-such-token", pin_file=softhsm_token.pin_file
    )

    with pytest.raises(KeyStoreError):
        Pkcs11KeyStore(config, environ={})
