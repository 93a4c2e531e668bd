"""Attack files built from a genuine license never verify as valid."""

from __future__ import annotations

import pytest

from tests.e2e import attacks
from tests.e2e.conftest import IssuedSet


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
    from pyhanko.pdf_utils.crypt import StandardSecurityHandler
    from pyhanko.pdf_utils.writer import PdfFileWriter
    import io

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
