"""``elicense trust``: export, import and manage the trust list (CA互认).

Changes take effect in a running service after it restarts, because the
service reads the trust list once at start-up.
"""

from __future__ import annotations

import functools
import logging
import sys
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

import click
from asn1crypto import pem, x509

from common.errors import ElicenseError, InputError
from elicense.settings import Settings
from verifier.trustlist import ANY, StatusChange, TrustList

from elicense.cli_support import reports_errors as _reports_errors  # noqa: E402

logger = logging.getLogger(__name__)

DATA_DIR_OPTION = click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    envvar="ELICENSE_DATA_DIR",
    default=Path("var/data"),
    show_default=True,
    help="数据目录：登记库、证照文件、开发 PKI 和信任列表。",
)


def _trust_dir(data_dir: Path) -> Path:
    return data_dir / "trust"


def _load(data_dir: Path) -> TrustList:
    return TrustList.load(_trust_dir(data_dir))


@click.group()
def trust() -> None:
    """管理 CA 互认信任列表：导出、导入、撤销互认和授权范围。"""


@trust.command("export")
@DATA_DIR_OPTION
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="签名后的信任列表文件（默认 DATA_DIR/trust/trust-list.p7m）。",
)
@click.option(
    "--publisher",
    default="内蒙古自治区市场监督管理局",
    show_default=True,
    help="写入导出文件的发布单位名称。",
)
@_reports_errors
def export_command(data_dir: Path, out: Path | None, publisher: str) -> None:
    """导出本部署自己的 CA，用信任列表签名证书签名（CMS）。"""
    from elicense.secrets import load_passphrase
    from elicense.signed_documents import TRUST_LIST_SIGNER, sign_document
    from esign.pki import DevPki
    from verifier.trust_exchange import export_payload

    settings = Settings(data_dir=data_dir)
    trust_list = _load(data_dir)
    passphrase = load_passphrase(settings)
    pki = DevPki(data_dir, passphrase, settings.public_url)
    payload = export_payload(trust_list, publisher, datetime.now(timezone.utc))
    signed = sign_document(pki, passphrase, TRUST_LIST_SIGNER, payload)
    target = out or _trust_dir(data_dir) / "trust-list.p7m"
    target.write_bytes(signed)
    click.echo(f"已导出签名信任列表：{target}")
    click.echo(f"对方导入时用作 --anchor 的根证书：{pki.trust_root_path}")


@trust.command("import")
@DATA_DIR_OPTION
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--anchor",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="导出方部署的根证书（PEM 或 DER），用于核验导出文件的签名。",
)
@_reports_errors
def import_command(data_dir: Path, file: Path, anchor: Path) -> None:
    """核验另一部署导出的签名信任列表，通过后导入其 CA。"""
    from verifier.trust_exchange import import_signed_list

    trust_list = _load(data_dir)
    report = import_signed_list(trust_list, file.read_bytes(), _read_anchor(anchor))
    trust_list.save(_trust_dir(data_dir))
    for ca_id in report.added:
        click.echo(f"新增互认 CA：{ca_id}")
    for ca_id in report.updated:
        click.echo(f"更新互认 CA：{ca_id}（保留本地的授权范围和撤销记录）")
    for ca_id in report.skipped:
        click.echo(f"跳过 CA：{ca_id}（不属于指定根证书）")
    click.echo(f"导出时间：{report.issued_at}。请重启服务使变更生效。")


@trust.command("list")
@DATA_DIR_OPTION
@_reports_errors
def list_command(data_dir: Path) -> None:
    """列出信任列表中的 CA、授权范围和当前状态。"""
    now = datetime.now(timezone.utc)
    for ca in _load(data_dir).cas:
        status = ca.status_at(now)
        label = "互认中" if status and status.status == "recognised" else "未互认"
        origin = f"导入自根证书 {ca.imported_from[:16]}" if ca.imported_from else "本地"
        click.echo(f"{ca.id}\t{ca.name}\t{label}\t{origin}")
        click.echo(
            f"  证照类型：{'、'.join(ca.license_types)}；"
            f"颁发机构代码前缀：{'、'.join(ca.issuer_codes)}"
        )
        for change in ca.history:
            click.echo(f"  {change.since.isoformat()} {change.status} {change.reason}")


@trust.command("withdraw")
@DATA_DIR_OPTION
@click.argument("ca_id")
@click.option(
    "--at",
    "at_text",
    required=True,
    help="撤销互认的时间，ISO 8601，例如 2026-12-01T00:00:00+08:00。",
)
@click.option("--reason", required=True, help="撤销原因，写入状态记录。")
@_reports_errors
def withdraw_command(data_dir: Path, ca_id: str, at_text: str, reason: str) -> None:
    """撤销对一个 CA 的互认：时间戳早于撤销时间的签名仍然有效。"""
    trust_list = _load(data_dir)
    ca = trust_list.get(ca_id)
    moment = _parse_time(at_text)
    change = StatusChange("withdrawn", moment, reason)
    trust_list.replace(replace(ca, history=(*ca.history, change)))
    trust_list.save(_trust_dir(data_dir))
    logger.info("withdrew CA %s at %s", ca_id, moment.isoformat())
    click.echo(f"已撤销对 {ca.name}（{ca_id}）的互认，自 {moment.isoformat()} 起生效")


@trust.command("scope")
@DATA_DIR_OPTION
@click.argument("ca_id")
@click.option(
    "--license-type",
    multiple=True,
    help="该 CA 可签的证照类型，可重复；不给则为全部（*）。",
)
@click.option(
    "--issuer-prefix",
    multiple=True,
    help="该 CA 可签的颁发机构代码前缀，可重复；不给则为全部（*）。",
)
@_reports_errors
def scope_command(
    data_dir: Path,
    ca_id: str,
    license_type: tuple[str, ...],
    issuer_prefix: tuple[str, ...],
) -> None:
    """设置一个 CA 可以签发印章证书的证照类型和颁发机构范围。"""
    trust_list = _load(data_dir)
    ca = trust_list.get(ca_id)
    scoped = replace(
        ca,
        license_types=tuple(license_type) or (ANY,),
        issuer_codes=tuple(code.upper() for code in issuer_prefix) or (ANY,),
    )
    trust_list.replace(scoped)
    trust_list.save(_trust_dir(data_dir))
    click.echo(
        f"{ca.name}（{ca_id}）的证照类型：{'、'.join(scoped.license_types)}；"
        f"颁发机构代码前缀：{'、'.join(scoped.issuer_codes)}"
    )


def _read_anchor(path: Path) -> x509.Certificate:
    data = path.read_bytes()
    try:
        if pem.detect(data):
            _, _, data = pem.unarmor(data)
        certificate = x509.Certificate.load(data)
        _ = certificate.native  # parse now so a damaged file fails here
    except (ValueError, TypeError) as error:
        raise InputError(
            f"根证书文件 {path} 无法读取：{error}",
            field="anchor",
            fix="请提供对方部署的 trust/root-ca.pem",
        ) from error
    return certificate


def _parse_time(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError as error:
        raise InputError(
            f"时间 {text!r} 不是 ISO 8601 格式",
            field="at",
            value=text,
            fix="例如 2026-12-01T00:00:00+08:00",
        ) from error
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


@trust.command("receipt")
@DATA_DIR_OPTION
@click.argument("pdf", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--out",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="写入签名核验回执（CMS，.p7m）的文件。",
)
@_reports_errors
def receipt_command(data_dir: Path, pdf: Path, out: Path) -> None:
    """核验证照 PDF 并出具签名的核验回执；退出码同 elicense verify。"""
    from elicense.context import ServiceContext
    from elicense.web.receipts import make_receipt
    from verifier.verdict import Outcome

    context = ServiceContext(Settings(data_dir=data_dir))
    data = pdf.read_bytes()
    verdict = context.verify_pdf_sync(data)
    out.write_bytes(make_receipt(context, verdict, data))
    click.echo(f"核验结论：{verdict.outcome.label}（{verdict.outcome.value}）")
    click.echo(f"核验回执：{out}")
    codes = {Outcome.VALID: 0, Outcome.INVALID: 1, Outcome.INDETERMINATE: 2}
    sys.exit(codes[verdict.outcome])


@trust.command("check-receipt")
@DATA_DIR_OPTION
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--anchor",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="出具回执的部署的根证书；不给则用信任列表中的全部 CA。",
)
@click.option(
    "--document",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="回执对应的 PDF，用于比对文件散列。",
)
@_reports_errors
def check_receipt_command(
    data_dir: Path, file: Path, anchor: Path | None, document: Path | None
) -> None:
    """核对核验回执的签名，并输出回执内容（JSON）。"""
    import json

    from verifier.receipts import check_receipt

    anchors = (
        [_read_anchor(anchor)] if anchor else _load(data_dir).anchor_certificates()
    )
    checked = check_receipt(
        file.read_bytes(), anchors, document.read_bytes() if document else None
    )
    click.echo(json.dumps(checked.to_json(), ensure_ascii=False, indent=2))
    if checked.document_matches is False:
        click.echo("错误：PDF 与回执记录的文件散列不一致", err=True)
        sys.exit(1)


@trust.command("client-cert")
@DATA_DIR_OPTION
@click.argument(
    "certificate", type=click.Path(exists=True, dir_okay=False, path_type=Path)
)
@click.option("--name", required=True, help="客户端名称，例如 包头市税务局征管系统。")
@click.option(
    "--kind",
    type=click.Choice(["bureau", "agency"]),
    required=True,
    help="发证机关或查询部门。",
)
@click.option("--authority", help="发证机关的统一社会信用代码（kind=bureau 时必填）。")
@click.option(
    "--scope",
    multiple=True,
    help="查询范围，可重复：license_type:TYPE、field:NAME、id_numbers、supervisor。",
)
@_reports_errors
def client_cert_command(
    data_dir: Path,
    certificate: Path,
    name: str,
    kind: str,
    authority: str | None,
    scope: tuple[str, ...],
) -> None:
    """登记一个客户端证书（双向 TLS），代替接口密钥；证书须由互认 CA 签发。"""
    from elicense.context import ServiceContext
    from elicense.web.client_auth import certificate_key_hash
    from license_store.models import ApiClientCreate, ClientKind
    from verifier.client_certs import (
        certificate_fingerprint,
        check_client_certificate,
        load_client_certificate,
    )

    if kind == "bureau" and not authority:
        raise InputError(
            "发证机关客户端必须指定机构代码",
            field="authority",
            fix="请加 --authority CODE",
        )
    context = ServiceContext(Settings(data_dir=data_dir))
    parsed = load_client_certificate(certificate.read_bytes())
    ca_name = check_client_certificate(context.trust, parsed)
    fingerprint = certificate_fingerprint(parsed)
    context.repository.create_api_client(
        ApiClientCreate(
            name=name,
            kind=ClientKind(kind),
            authority_code=authority,
            scopes=list(scope),
            api_key_hash=certificate_key_hash(fingerprint),
        )
    )
    click.echo(f"已登记客户端证书 SHA-256 {fingerprint}（签发 CA：{ca_name}）")


@trust.command("ca-bundle")
@DATA_DIR_OPTION
@click.option(
    "--out",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="写入 PEM 证书包的文件，供 TLS 终结代理校验客户端证书。",
)
@_reports_errors
def ca_bundle_command(data_dir: Path, out: Path) -> None:
    """导出当前互认 CA 的证书（PEM），用作客户端证书校验的 CA 包。"""
    from verifier.trustlist import certificate_to_pem

    now = datetime.now(timezone.utc)
    recognised = [
        ca
        for ca in _load(data_dir).cas
        if (status := ca.status_at(now)) is not None and status.status == "recognised"
    ]
    text = "".join(
        certificate_to_pem(cert) for ca in recognised for cert in ca.certificates
    )
    out.write_text(text, encoding="ascii")
    click.echo(f"已写入 {len(recognised)} 个互认 CA 的证书：{out}")
