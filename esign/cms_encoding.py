"""Encode CMS structures once, so that nesting them does not encode them again.

asn1crypto 1.5.1 marks every SEQUENCE and SET built in Python as mutated and
never clears the mark. Each read of ``contents`` on a mutated value encodes
its whole subtree again, and ``dump`` reads it two or three times per level,
so the cost of one dump grows exponentially with the nesting depth. Dumping
the signed attributes of one license signature (signing-certificate-v2 is
eight levels deep) took about 10 ms on a 2-core AMD EPYC virtual machine,
and pyhanko dumps and copies such values several times while it assembles
the CMS object.

:func:`frozen` encodes a value bottom-up, once per node, and returns it
parsed again from its DER encoding. The bytes are those asn1crypto's own
``dump`` returns, and a parsed value returns its stored encoding from later
dumps and copies.
"""

from __future__ import annotations

from typing import Any, TypeVar

from asn1crypto import cms, core, tsp, x509
from pyhanko.sign.attributes import CMSAttributeProvider, SigningCertificateV2Provider
from pyhanko.sign.general import as_signing_certificate_v2

Value = TypeVar("Value", bound=core.Asn1Value)


def frozen(value: Value) -> Value:
    """Return ``value`` parsed again from its DER encoding.

    ``value`` must be untagged (not retagged as a field of another value),
    because the copy is loaded with the tagging of its class.
    """
    encode_bottom_up(value)
    return value.__class__.load(value.dump())


def encode_bottom_up(value: core.Asn1Value) -> None:
    """Encode every mutated SEQUENCE and SET under ``value`` once, children first.

    This clears asn1crypto's private mutation mark after encoding a node. A
    node that is not marked keeps its stored encoding, as ``dump`` would.

    NOTE: this reads and sets private attributes of asn1crypto 1.5.1
    (``children``, ``_parsed``, ``_mutated``, ``_set_contents``). The tests in
    tests/esign/test_cms_encoding.py compare the result with pyhanko's output.
    """
    if isinstance(value, core.Choice | core.Any):
        # Both encode the value they wrap, which is the chosen alternative
        # or the parsed value.
        inner = value._parsed
        if isinstance(inner, tuple):
            inner = inner[0]
        if inner is not None:
            encode_bottom_up(inner)
        return
    if not isinstance(value, core.Sequence | core.SequenceOf):
        return
    if value.children is None or not value._is_mutated():
        return
    for child in value.children:
        # Tuples are children not yet parsed, stored as their encoding.
        if not isinstance(child, tuple):
            encode_bottom_up(child)
    value._set_contents()
    value._mutated = False


class FrozenAttributeProvider(CMSAttributeProvider):
    """An attribute provider whose values are handed on encoded once."""

    def __init__(self, provider: CMSAttributeProvider) -> None:
        self.attribute_type = provider.attribute_type
        self._provider = provider

    async def build_attr_value(self, dry_run: bool = False) -> Any:
        value = await self._provider.build_attr_value(dry_run=dry_run)
        # None leaves the attribute out, and a native value is converted by
        # simple_cms_attribute, so only built values are encoded here.
        if isinstance(value, core.Asn1Value):
            return frozen(value)
        return value


class SigningCertificateV2(CMSAttributeProvider):
    """The signing-certificate-v2 attribute of one certificate, built once.

    It depends only on the certificate. Each call returns a new object
    parsed from the stored encoding, so no value is shared between two
    CMS objects.
    """

    attribute_type = "signing_certificate_v2"

    def __init__(self, certificate: x509.Certificate) -> None:
        self.certificate = certificate
        self._encoded = frozen(as_signing_certificate_v2(certificate)).dump()

    async def build_attr_value(self, dry_run: bool = False) -> tsp.SigningCertificateV2:
        return tsp.SigningCertificateV2.load(self._encoded)


class EncodeOnceSigner:
    """Mixin for pyhanko ``Signer`` classes that hands on CMS values encoded once.

    Each override returns what pyhanko's method returns, parsed again from
    its DER encoding, so the CMS object pyhanko assembles from them has the
    same bytes.
    """

    _signing_certificate_v2: SigningCertificateV2 | None = None

    def _signed_attr_providers(
        self, *args: Any, **kwargs: Any
    ) -> list[CMSAttributeProvider]:
        # pyhanko 0.38 internal API. Under a version without it, this
        # override is not called and signing is only slower.
        parent: Any = super()
        providers = parent._signed_attr_providers(*args, **kwargs)
        return [self._encoded_once(provider) for provider in providers]

    def _encoded_once(self, provider: CMSAttributeProvider) -> CMSAttributeProvider:
        if not isinstance(provider, SigningCertificateV2Provider):
            return FrozenAttributeProvider(provider)
        cached = self._signing_certificate_v2
        if cached is None or cached.certificate is not provider.signing_cert:
            cached = SigningCertificateV2(provider.signing_cert)
            self._signing_certificate_v2 = cached
        return cached

    async def signed_attrs(self, *args: Any, **kwargs: Any) -> cms.CMSAttributes:
        parent: Any = super()
        return frozen(await parent.signed_attrs(*args, **kwargs))

    async def unsigned_attrs(
        self, *args: Any, **kwargs: Any
    ) -> cms.CMSAttributes | None:
        parent: Any = super()
        attributes = await parent.unsigned_attrs(*args, **kwargs)
        return frozen(attributes) if attributes is not None else None

    def signer_info(self, *args: Any, **kwargs: Any) -> cms.SignerInfo:
        parent: Any = super()
        return frozen(parent.signer_info(*args, **kwargs))

    async def async_sign_prescribed_attributes(
        self, *args: Any, **kwargs: Any
    ) -> cms.ContentInfo:
        parent: Any = super()
        return frozen(await parent.async_sign_prescribed_attributes(*args, **kwargs))
