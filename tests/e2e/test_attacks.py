"""Attack files built from a genuine license never verify as valid."""

from __future__ import annotations

import random
import time

import pytest

from tests.e2e import attacks
from tests.e2e.conftest import IssuedSet
from verifier.limits import VerificationLimits
from verifier.pdf_check import PdfVerifier
from verifier.trustlist import TrustList


@pytest.fixture(scope="module")
def genuine(issued: IssuedSet) -> bytes:
    return issued.pdfs[0].read_bytes()


def test_genuine_license_is_valid(service_context, genuine):
    verdict = service_context.verify_pdf_sync(genuine)
    assert verdict.outcome.value == "valid", verdict.reasons


@pytest.mark.parametrize("name", sorted(attacks.ALL_SIMPLE_ATTACKS))
def test_attack_file_is_invalid(service_context, genuine, name, tmp_path):
    tampered = attacks.ALL_SIMPLE_ATTACKS[name](genuine)
    (tmp_path / f"{name}.pdf").write_bytes(tampered)
    verdict = service_context.verify_pdf_sync(tampered)
    assert verdict.outcome.value == "invalid", (name, verdict.to_json())


@pytest.mark.parametrize("name", sorted(attacks.ALL_SIMPLE_ATTACKS))
def test_attack_file_offline_is_invalid(service_context, genuine, name):
    tampered = attacks.ALL_SIMPLE_ATTACKS[name](genuine)
    verdict = service_context.verify_pdf_sync(tampered, offline=True)
    assert verdict.outcome.value == "invalid", (name, verdict.to_json())


@pytest.mark.parametrize("cut", [0.1, 0.5, 0.9, 0.999])
def test_truncated_license_is_invalid(service_context, genuine, cut):
    verdict = service_context.verify_pdf_sync(genuine[: int(len(genuine) * cut)])
    assert verdict.outcome.value == "invalid"


def test_many_revisions_rejected_quickly(service_context, genuine):
    bloated = genuine + b"\nstartxref\n0\n%%EOF\n" * 5000
    verdict = service_context.verify_pdf_sync(bloated)
    assert verdict.outcome.value == "invalid"
    assert "修订版本数" in verdict.steps[0].reasons[0]


def test_encrypted_pdf_rejected(service_context, tmp_path):
    import io

    from pyhanko.pdf_utils.crypt import StandardSecurityHandler
    from pyhanko.pdf_utils.writer import PdfFileWriter

    writer = PdfFileWriter()
    writer.security_handler = StandardSecurityHandler.build_from_pw("owner", "user")
    writer._assign_security_handler(writer.security_handler)
    output = io.BytesIO()
    writer.write(output)
    verdict = service_context.verify_pdf_sync(output.getvalue())
    assert verdict.outcome.value == "invalid"


@pytest.fixture(scope="module")
def shadow_base(issued: IssuedSet):
    """A license signed with shadow objects prepared in an earlier revision."""
    record = next(r for r in issued.records if r["license_type"] == "business_license")
    return attacks.prepare_signed_shadow(issued.data_dir, record)


def test_shadow_base_alone_is_valid_offline(service_context, shadow_base):
    signed, _ = shadow_base
    verdict = service_context.verify_pdf_sync(signed, offline=True)
    assert verdict.outcome.value == "valid", verdict.to_json()


@pytest.mark.parametrize("name", sorted(attacks.SHADOW_ATTACKS))
def test_shadow_attack_is_invalid(service_context, shadow_base, name, tmp_path):
    signed, shadow = shadow_base
    tampered = attacks.SHADOW_ATTACKS[name](signed, shadow)
    (tmp_path / f"{name}.pdf").write_bytes(tampered)
    for offline in (False, True):
        verdict = service_context.verify_pdf_sync(tampered, offline=offline)
        assert verdict.outcome.value == "invalid", (name, verdict.to_json())
    changes = verdict.step("changes")
    assert changes.status.value == "failed", (name, verdict.to_json())
    assert "签名后文件被修改" in changes.reasons[0]


def _mangled(genuine: bytes, seed: int) -> bytes:
    """Return one deterministic mutation of the license: flip, cut or splice.

    Positions inside the signature value are avoided: its certificate bag is
    not covered by the signature, so changing a certificate that validation
    does not use (the trust list has its own copy) rightly stays valid.
    """
    rng = random.Random(seed)
    data = bytearray(genuine)
    kind = seed % 4
    start, length, second, _ = (
        int(g) for g in attacks.BYTE_RANGE.search(genuine).groups()
    )
    position = rng.randrange(len(data))
    while start + length - 64 <= position < second:
        position = rng.randrange(len(data))
    if kind == 0:
        data[position] ^= 1 << rng.randrange(8)
    elif kind == 1:
        del data[position : position + rng.randrange(1, 4096)]
    elif kind == 2:
        chunk = data[rng.randrange(len(data)) :][: rng.randrange(1, 2048)]
        data[position:position] = chunk
    else:
        data[position : position + 64] = bytes(rng.randrange(256) for _ in range(64))
    return bytes(data)


@pytest.mark.parametrize("seed", range(24))
def test_mangled_license_never_valid(service_context, genuine, seed):
    mangled = _mangled(genuine, seed)
    started = time.monotonic()
    verdict = service_context.verify_pdf_sync(mangled, offline=True)
    assert (
        time.monotonic() - started < service_context.settings.verify_seconds_budget + 3
    )
    assert verdict.outcome.value != "valid", (seed, verdict.to_json())


# Inputs that once crashed or hung a parser; each must end in a verdict.
CRASHERS = {
    "deep_array_nesting": b"%PDF-1.7\n1 0 obj\n" + b"[" * 100_000 + b"\nendobj\n"
    b"trailer << /Root 1 0 R >>\nstartxref\n9\n%%EOF\n",
    "xref_points_past_end": b"%PDF-1.7\ntrailer << /Size 3 /Root 1 0 R >>\n"
    b"startxref\n999999999\n%%EOF\n",
    "self_referencing_stream_length": b"%PDF-1.7\n1 0 obj << /Length 1 0 R >>\n"
    b"stream\nxx\nendstream\nendobj\ntrailer << /Root 1 0 R >>\nstartxref\n9\n%%EOF\n",
    "negative_size": b"%PDF-1.7\ntrailer << /Size -5 /Root 1 0 R >>\nstartxref\n9\n%%EOF",
    "header_only": b"%PDF-1.7\n",
    "nul_bytes": b"%PDF-" + b"\0" * 10_000,
}


@pytest.mark.parametrize("name", sorted(CRASHERS))
def test_crashing_input_gets_invalid_verdict(service_context, name):
    verdict = service_context.verify_pdf_sync(CRASHERS[name])
    assert verdict.outcome.value == "invalid", (name, verdict.to_json())
    assert verdict.reasons, name


def test_thousands_of_objects_rejected_quickly(service_context, genuine):
    bloated = genuine + b"\n".join(b"%d 0 obj null endobj" % n for n in range(30_000))
    started = time.monotonic()
    verdict = service_context.verify_pdf_sync(bloated)
    assert time.monotonic() - started < 2
    assert verdict.outcome.value == "invalid"
    assert "对象数" in verdict.steps[0].reasons[0]


def test_time_budget_gives_indeterminate(issued, genuine):
    trust = TrustList.load(issued.data_dir / "trust")
    verifier = PdfVerifier(trust, limits=VerificationLimits(max_seconds=0.01, isolate=True))
    started = time.monotonic()
    verdict = verifier.verify(genuine)
    assert time.monotonic() - started < 5
    assert verdict.outcome.value == "indeterminate"
    assert "时间预算" in verdict.steps[0].reasons[0]
