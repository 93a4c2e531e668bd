"""Two deployments recognise each other's CAs through signed trust lists."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import pytest
from fastapi.testclient import TestClient

from elicense.web.app import create_app
from tests.e2e.conftest import IssuedSet, context_for, copy_data_dir, run_cli


@dataclass(frozen=True)
class Deployment:
    data_dir: Path
    pdfs: list[Path]
    signed_list: Path

    @property
    def root(self) -> Path:
        return self.data_dir / "trust" / "root-ca.pem"

    def token_path(self) -> str:
        context = context_for(self.data_dir)
        return urlparse(context.issuing.verify_url_of(self.pdfs[0].stem)).path


def _deployment(data_dir: Path, pdfs: list[Path], tmp: Path) -> Deployment:
    signed = tmp / f"{data_dir.parent.name}-trust-list.p7m"
    run_cli("trust", "export", "--out", str(signed), data_dir=data_dir)
    return Deployment(data_dir, pdfs, signed)


@pytest.fixture(scope="module")
def pair(issued: IssuedSet, second_issued: IssuedSet, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("trust-exchange")
    first_dir = tmp / "first" / "data"
    copy_data_dir(issued.data_dir, first_dir)
    first = _deployment(first_dir, issued.pdfs, tmp)
    second = _deployment(second_issued.data_dir, second_issued.pdfs, tmp)
    return first, second


@pytest.fixture(scope="module")
def before(pair):
    """Verdicts of each deployment on the other's license, before any import."""
    first, second = pair
    results = {}
    for name, here, there in (("first", first, second), ("second", second, first)):
        context = context_for(here.data_dir)
        results[name] = (
            context.verify_pdf_sync(there.pdfs[0].read_bytes()),
            context.qr_verifier.verify(there.token_path().rsplit("/", 1)[1]),
        )
    return results


@pytest.fixture(scope="module")
def imported(pair, before):
    first, second = pair
    run_cli(
        "trust",
        "import",
        str(second.signed_list),
        "--anchor",
        str(second.root),
        data_dir=first.data_dir,
    )
    run_cli(
        "trust",
        "import",
        str(first.signed_list),
        "--anchor",
        str(first.root),
        data_dir=second.data_dir,
    )
    return pair


@pytest.mark.parametrize("side", ["first", "second"])
def test_foreign_pdf_invalid_before_import(before, side):
    verdict, _ = before[side]
    assert verdict.outcome.value == "invalid"
    assert any("受信任的 CA" in reason for reason in verdict.reasons), verdict.reasons


@pytest.mark.parametrize("side", ["first", "second"])
def test_foreign_qr_red_before_import(before, side):
    _, qr = before[side]
    assert qr.signal.value == "red"
    assert not qr.token_authentic


def test_foreign_pdf_valid_after_import(imported):
    first, second = imported
    for here, there in ((first, second), (second, first)):
        for pdf in there.pdfs:
            verdict = context_for(here.data_dir).verify_pdf_sync(pdf.read_bytes())
            assert verdict.outcome.value == "valid", verdict.to_json()
            assert verdict.step("register").status.value == "warning"


def test_foreign_qr_green_after_import(imported):
    first, second = imported
    for here, there in ((first, second), (second, first)):
        with TestClient(create_app(context_for(here.data_dir))) as client:
            response = client.get(there.token_path())
        assert response.status_code == 200
        assert 'data-signal="green"' in response.text
        assert "互认" in response.text


def test_own_licenses_still_valid_after_import(imported):
    first, _ = imported
    verdict = context_for(first.data_dir).verify_pdf_sync(first.pdfs[0].read_bytes())
    assert verdict.outcome.value == "valid", verdict.reasons


def test_trust_list_page_shows_imported_ca(imported):
    first, _ = imported
    with TestClient(create_app(context_for(first.data_dir))) as client:
        page = client.get("/trust-list").text
    assert "本地 CA" in page
    assert "导入自根证书" in page


def test_import_with_wrong_anchor_rejected(imported, tmp_path):
    first, second = imported
    result = run_cli(
        "trust",
        "import",
        str(second.signed_list),
        "--anchor",
        str(first.root),
        data_dir=first.data_dir,
        check=False,
    )
    assert result.returncode == 1
    assert "不能链接到指定的根证书" in result.stderr


def test_import_tampered_list_rejected(imported, tmp_path):
    first, second = imported
    data = bytearray(second.signed_list.read_bytes())
    position = data.index(b'"license_types"')
    data[position + 1] = ord("L")
    tampered = tmp_path / "tampered.p7m"
    tampered.write_bytes(bytes(data))
    result = run_cli(
        "trust",
        "import",
        str(tampered),
        "--anchor",
        str(second.root),
        data_dir=first.data_dir,
        check=False,
    )
    assert result.returncode == 1
    assert "签名无效" in result.stderr


def test_import_not_cms_rejected(imported, tmp_path):
    first, second = imported
    garbage = tmp_path / "garbage.p7m"
    garbage.write_bytes(b'{"cas": []}')
    result = run_cli(
        "trust",
        "import",
        str(garbage),
        "--anchor",
        str(second.root),
        data_dir=first.data_dir,
        check=False,
    )
    assert result.returncode == 1
    assert "不是 CMS 签名数据" in result.stderr


def test_import_older_list_rejected(imported, tmp_path):
    first, second = imported
    newer = tmp_path / "newer.p7m"
    run_cli("trust", "export", "--out", str(newer), data_dir=second.data_dir)
    run_cli(
        "trust",
        "import",
        str(newer),
        "--anchor",
        str(second.root),
        data_dir=first.data_dir,
    )
    result = run_cli(
        "trust",
        "import",
        str(second.signed_list),
        "--anchor",
        str(second.root),
        data_dir=first.data_dir,
        check=False,
    )
    assert result.returncode == 1
    assert "早于上次导入" in result.stderr


def test_withdraw_in_future_keeps_license_valid(imported):
    first, second = imported
    listing = run_cli("trust", "list", data_dir=first.data_dir).stdout
    foreign_id = next(
        line.split("\t")[0] for line in listing.splitlines() if "导入自" in line
    )
    run_cli(
        "trust",
        "withdraw",
        foreign_id,
        "--at",
        "2999-01-01T00:00:00+08:00",
        "--reason",
        "协议到期",
        data_dir=first.data_dir,
    )
    verdict = context_for(first.data_dir).verify_pdf_sync(second.pdfs[0].read_bytes())
    assert verdict.outcome.value == "valid", verdict.reasons
    assert "协议到期" in run_cli("trust", "list", data_dir=first.data_dir).stdout


def test_scope_unknown_ca_names_choices(imported):
    first, _ = imported
    result = run_cli(
        "trust",
        "scope",
        "no-such-ca",
        "--license-type",
        "x",
        data_dir=first.data_dir,
        check=False,
    )
    assert result.returncode == 1
    assert "local-dev" in result.stderr
