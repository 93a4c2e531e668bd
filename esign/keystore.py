"""Private keys: encrypted PKCS#8 files and PKCS#11 tokens.

Both stores hand out a signer handle (a pyhanko ``Signer``) and never the key
itself, so callers cannot log, store or return key material by accident.
Passphrases and PINs come from an environment variable or a file, never from
the command line, where other users could read them in the process list.
"""

from __future__ import annotations

import functools
import logging
import os
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self

from asn1crypto import algos, x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from pyhanko.sign.signers.pdf_cms import Signer
from pyhanko_certvalidator.registry import SimpleCertificateStore

from common.errors import KeyStoreError
from esign.cms_encoding import EncodeOnceSigner

logger = logging.getLogger(__name__)

PASSPHRASE_ENV = "ELICENSE_KEY_PASSPHRASE"
PIN_ENV = "ELICENSE_PKCS11_PIN"

PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey


def read_secret(
    env_name: str,
    secret_file: Path | None = None,
    *,
    environ: Mapping[str, str] = os.environ,
) -> bytes:
    """Read a passphrase or PIN from ``env_name``, else from ``secret_file``.

    Trailing line breaks of the file are dropped. Raises KeyStoreError when
    neither source is set, or when the file cannot be read.
    """
    value = environ.get(env_name)
    if value:
        return value.encode("utf-8")
    if secret_file is None:
        raise KeyStoreError(
            f"未设置环境变量 {env_name}，也未指定口令文件",
            fix=f"请设置 {env_name}，或提供口令文件（权限 0600）",
        )
    try:
        secret = secret_file.read_bytes().rstrip(b"\r\n")
    except OSError as error:
        raise KeyStoreError(
            f"无法读取口令文件 {secret_file}：{error.strerror}",
            fix=f"请检查文件是否存在及权限，或改为设置 {env_name}",
        ) from error
    if not secret:
        raise KeyStoreError(f"口令文件 {secret_file} 为空", fix="请在文件中写入口令")
    return secret


def read_passphrase(
    passphrase_file: Path | None = None,
    *,
    environ: Mapping[str, str] = os.environ,
) -> bytes:
    """Read the key passphrase from ``ELICENSE_KEY_PASSPHRASE`` or a file."""
    return read_secret(PASSPHRASE_ENV, passphrase_file, environ=environ)


def write_private_key(path: Path, key: PrivateKey, passphrase: bytes) -> None:
    """Write ``key`` as encrypted PKCS#8 PEM, readable by the owner only."""
    data = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(passphrase),
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "wb") as file:
        file.write(data)


def load_private_key(path: Path, passphrase: bytes) -> PrivateKey:
    """Decrypt an encrypted PKCS#8 key file.

    Raises KeyStoreError when the file is missing, the passphrase is wrong or
    the key type is neither EC nor RSA.
    """
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise KeyStoreError(
            f"私钥文件 {path} 不存在",
            fix="请先运行 elicense init 生成开发用证书和密钥，或检查数据目录",
        ) from None
    try:
        key = serialization.load_pem_private_key(data, password=passphrase)
    except (ValueError, TypeError):
        # cryptography raises ValueError for a wrong passphrase and for a
        # damaged file alike, so the message names both causes.
        raise KeyStoreError(
            f"无法解密私钥文件 {path}：口令错误或文件已损坏",
            fix=f"请检查 {PASSPHRASE_ENV} 或口令文件中的口令是否为生成密钥时的口令",
        ) from None
    if not isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
        raise KeyStoreError(
            f"私钥文件 {path} 的密钥类型不受支持：{type(key).__name__}",
            fix="请使用 ECDSA P-256 或 RSA 密钥",
        )
    logger.debug("loaded private key %s", path)
    return key


KEY_ALGORITHMS = ("ec-p256", "rsa-2048", "rsa-3072")


class InMemorySigner(EncodeOnceSigner, Signer):
    """pyhanko signer over a key parsed once and kept in memory.

    pyhanko's ``SimpleSigner`` parses its key again for every signature, which
    costs tens of milliseconds for RSA keys; this signer keeps the parsed key.
    It hands on CMS values encoded once (see ``esign.cms_encoding``).
    """

    def __init__(
        self,
        key: PrivateKey,
        certificate: x509.Certificate,
        chain: Iterable[x509.Certificate] = (),
    ) -> None:
        self._key = key
        if isinstance(key, ec.EllipticCurvePrivateKey):
            mechanism = "sha256_ecdsa"
        else:
            mechanism = "sha256_rsa"
        registry = SimpleCertificateStore.from_certs([certificate, *chain])
        super().__init__(
            signing_cert=certificate,
            cert_registry=registry,
            signature_mechanism=algos.SignedDigestAlgorithm({"algorithm": mechanism}),
        )

    def __repr__(self) -> str:
        subject = self.signing_cert.subject.human_friendly
        return f"InMemorySigner(subject={subject!r})"

    async def async_sign_raw(
        self, data: bytes, digest_algorithm: str, dry_run: bool = False
    ) -> bytes:
        return self.sign_raw(data, digest_algorithm)

    def sign_raw(self, data: bytes, digest_algorithm: str) -> bytes:
        if digest_algorithm != "sha256":
            raise KeyStoreError(
                f"不支持的摘要算法 {digest_algorithm}", fix="请使用 sha256"
            )
        if isinstance(self._key, ec.EllipticCurvePrivateKey):
            return self._key.sign(data, ec.ECDSA(hashes.SHA256()))
        return self._key.sign(data, padding.PKCS1v15(), hashes.SHA256())


def load_file_signer(
    key_path: Path,
    passphrase: bytes,
    certificate: x509.Certificate,
    chain: Iterable[x509.Certificate] = (),
) -> InMemorySigner:
    """Decrypt the key at ``key_path`` once and return a signer handle."""
    return InMemorySigner(load_private_key(key_path, passphrase), certificate, chain)


@dataclass(frozen=True)
class Pkcs11Config:
    """Location of a PKCS#11 token and the source of its PIN."""

    module_path: Path
    token_label: str
    pin_file: Path | None = None
    pin_env: str = PIN_ENV


class Pkcs11KeyStore:
    """An open, logged-in session on one PKCS#11 token.

    Keep the store open as long as its signers are in use, then ``close()``
    it (or use it as a context manager).
    """

    def __init__(
        self,
        config: Pkcs11Config,
        *,
        environ: Mapping[str, str] = os.environ,
        read_write: bool = False,
    ) -> None:
        from pyhanko.sign import pkcs11 as pyhanko_pkcs11

        pin = read_secret(config.pin_env, config.pin_file, environ=environ)
        criteria = pyhanko_pkcs11.TokenCriteria(label=config.token_label)
        try:
            module = _loaded_module(config.module_path)
            token = pyhanko_pkcs11.find_token(
                module.get_slots(), token_criteria=criteria
            )
            if token is None:
                raise RuntimeError("no token with this label")
            # Key generation needs a read-write session; signing does not.
            self._session = token.open(user_pin=pin.decode("utf-8"), rw=read_write)
        except (RuntimeError, OSError) as error:  # PKCS11Error is a RuntimeError
            raise KeyStoreError(
                f"无法打开 PKCS#11 令牌 {config.token_label!r}"
                f"（模块 {config.module_path}）：{type(error).__name__} {error}",
                fix=f"请检查模块路径、令牌标签和 PIN（{config.pin_env} 或 PIN 文件）",
            ) from error
        self._config = config
        logger.info("opened PKCS#11 token %s", config.token_label)

    @property
    def token_label(self) -> str:
        return self._config.token_label

    def generate_key(
        self, algorithm: str, key_label: str, key_id: bytes
    ) -> ec.EllipticCurvePublicKey | rsa.RSAPublicKey:
        """Generate a non-extractable signing key pair on the token.

        ``algorithm`` is ``ec-p256``, ``rsa-2048`` or ``rsa-3072``. Returns
        the public key; the private key never leaves the token.
        """
        from pkcs11 import Attribute, KeyType, MechanismFlag
        from pkcs11.exceptions import PKCS11Error
        from pkcs11.util.ec import encode_ec_public_key, encode_named_curve_parameters
        from pkcs11.util.rsa import encode_rsa_public_key

        private_template = {Attribute.SENSITIVE: True, Attribute.EXTRACTABLE: False}
        options = {
            "id": key_id,
            "label": key_label,
            "store": True,
            "capabilities": MechanismFlag.SIGN | MechanismFlag.VERIFY,
            "private_template": private_template,
        }
        try:
            if algorithm == "ec-p256":
                parameters = self._session.create_domain_parameters(
                    KeyType.EC,
                    {Attribute.EC_PARAMS: encode_named_curve_parameters("secp256r1")},
                    local=True,
                )
                public, _ = parameters.generate_keypair(**options)
                der = encode_ec_public_key(public)
                loaded = serialization.load_der_public_key(der)
            else:
                bits = _rsa_bits(algorithm)
                public, _ = self._session.generate_keypair(KeyType.RSA, bits, **options)
                loaded = serialization.load_der_public_key(
                    _rsa_spki(encode_rsa_public_key(public))
                )
        except PKCS11Error as error:
            raise KeyStoreError(
                f"无法在 PKCS#11 令牌 {self.token_label!r} 中生成密钥"
                f" {key_label!r}：{type(error).__name__} {error}",
                fix="请确认令牌有空间、PIN 有写权限，且支持所选算法",
            ) from error
        assert isinstance(loaded, ec.EllipticCurvePublicKey | rsa.RSAPublicKey)
        logger.info(
            "generated %s key %s on token %s", algorithm, key_label, self.token_label
        )
        return loaded

    def sign_sha256(self, key_label: str, data: bytes) -> bytes:
        """Sign ``data`` with SHA-256; ECDSA results are DER-encoded."""
        from pkcs11 import KeyType, Mechanism, ObjectClass
        from pkcs11.exceptions import PKCS11Error
        from pkcs11.util.ec import encode_ecdsa_signature

        try:
            key = self._session.get_key(
                object_class=ObjectClass.PRIVATE_KEY, label=key_label
            )
            if key.key_type == KeyType.EC:
                digest = hashes.Hash(hashes.SHA256())
                digest.update(data)
                raw = key.sign(digest.finalize(), mechanism=Mechanism.ECDSA)
                return encode_ecdsa_signature(raw)
            return key.sign(data, mechanism=Mechanism.SHA256_RSA_PKCS)
        except PKCS11Error as error:
            raise KeyStoreError(
                f"PKCS#11 令牌 {self.token_label!r} 中的密钥 {key_label!r} 签名失败："
                f"{type(error).__name__}",
                fix="请用 pkcs11-tool --list-objects 核对密钥标签",
            ) from error

    def signer(
        self,
        key_label: str,
        certificate: x509.Certificate,
        chain: Iterable[x509.Certificate] = (),
    ) -> Signer:
        """Return a signer for the private key labelled ``key_label``.

        SoftHSM2 has no combined SHA-256-with-ECDSA mechanism, so the signer
        hashes in software and requests a raw ECDSA signature from the token.
        Raises KeyStoreError when the token has no such key.
        """
        from pkcs11 import ObjectClass
        from pkcs11.exceptions import PKCS11Error

        try:
            self._session.get_key(object_class=ObjectClass.PRIVATE_KEY, label=key_label)
        except PKCS11Error as error:
            raise KeyStoreError(
                f"PKCS#11 令牌 {self._config.token_label!r} 中找不到唯一的私钥"
                f" {key_label!r}：{type(error).__name__}",
                fix="请用 pkcs11-tool --list-objects 核对密钥标签",
            ) from error
        signer = _pkcs11_signer_class()(
            self._session,
            key_label=key_label,
            signing_cert=certificate,
            ca_chain=list(chain),
            use_raw_mechanism=True,
        )
        return signer

    def close(self) -> None:
        self._session.close()
        logger.info("closed PKCS#11 token %s", self._config.token_label)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


@functools.cache
def _pkcs11_signer_class() -> type[Signer]:
    """Return pyhanko's PKCS#11 signer with CMS values encoded once.

    Built on first use, because importing pyhanko's PKCS#11 support needs
    python-pkcs11, which file key stores do without.
    """
    from pyhanko.sign.pkcs11 import PKCS11Signer

    class Pkcs11Signer(EncodeOnceSigner, PKCS11Signer):
        pass

    return Pkcs11Signer


_MODULES: dict[Path, Any] = {}
_MODULES_LOCK = threading.Lock()


def _loaded_module(path: Path) -> Any:
    """Load a PKCS#11 module once per process and keep it loaded.

    python-pkcs11 calls C_Initialize for every ``lib`` object, which fails
    while another one is alive, and C_Finalize when one is garbage
    collected, which closes the sessions of every other store.
    """
    from pkcs11 import lib as pkcs11_lib

    with _MODULES_LOCK:
        if path not in _MODULES:
            _MODULES[path] = pkcs11_lib(str(path))
        return _MODULES[path]


def _rsa_bits(algorithm: str) -> int:
    bits = {"rsa-2048": 2048, "rsa-3072": 3072}.get(algorithm)
    if bits is None:
        raise KeyStoreError(
            f"不支持的密钥算法 {algorithm!r}",
            fix="请选择 ec-p256、rsa-2048 或 rsa-3072",
        )
    return bits


def _rsa_spki(pkcs1_der: bytes) -> bytes:
    from asn1crypto import keys

    info = keys.PublicKeyInfo(
        {
            "algorithm": {"algorithm": "rsa"},
            "public_key": keys.RSAPublicKey.load(pkcs1_der),
        }
    )
    return info.dump()


def generate_private_key(algorithm: str) -> PrivateKey:
    """Generate a software key: ``ec-p256``, ``rsa-2048`` or ``rsa-3072``."""
    if algorithm == "ec-p256":
        return ec.generate_private_key(ec.SECP256R1())
    bits = _rsa_bits(algorithm)
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)
