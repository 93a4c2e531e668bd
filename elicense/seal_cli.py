"""``elicense seal``: the seal registry of the issuing authorities.

Keys are generated in the file key store or on the PKCS#11 token named in
the settings. The key passphrase and the token PIN come from environment
variables or files, never from the command line.
"""

from __future__ import annotations

import logging
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from common.errors import InputError
from elicense.cli_support import DATA_DIR_OPTION, reports_errors
from elicense.settings import Settings

if TYPE_CHECKING:
    from cryptography import x509

    from esign.seal_lifecycle import SealManager
    from esign.seals import HistoryEntry, SealRecord

logger = logging.getLogger(__name__)

OPERATOR_OPTION = click.option(
    "--operator",
    envvar="ELICENSE_OPERATOR",
    required=True,
    help="记入印章历史的经办人（也可设置 ELICENSE_OPERATOR）。",
)
KEY_STORE_OPTION = click.option(
    "--key-store",
    type=click.Choice(["file", "pkcs11"]),
    help="密钥存放处：file 加密文件，pkcs11 为设置中的令牌。",
)
ALGORITHM_OPTION = click.option(
    "--algorithm",
    type=click.Choice(["ec-p256", "rsa-2048", "rsa-3072"]),
    help="密钥算法，默认 ec-p256（延续时默认沿用原算法）。",
)
CSR_OUT_OPTION = click.option(
    "--csr-out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="另存证书签名请求（PEM）的文件，交给 CA 签发证书。",
)
DEV_CA_OPTION = click.option(
    "--dev-ca",
    is_flag=True,
    help="由本数据目录的开发 CA 立即签发并导入证书（仅用于开发和测试）。",
)
CRL_REASONS = [
    "unspecified",
    "key_compromise",
    "affiliation_changed",
    "superseded",
    "cessation_of_operation",
]


def _manager(data_dir: Path) -> tuple[Settings, SealManager]:
    from elicense.issuing import seal_manager
    from elicense.secrets import load_passphrase
    from esign.pki import DevPki

    settings = Settings(data_dir=data_dir)
    if not (data_dir / "pki" / "root-ca.pem").exists():
        raise InputError(
            f"数据目录 {data_dir} 尚未初始化",
            field="data_dir",
            value=str(data_dir),
            fix=f"请先运行 elicense init --data-dir {data_dir}",
        )
    passphrase = load_passphrase(settings)
    pki = DevPki(data_dir, passphrase, settings.public_url)
    return settings, seal_manager(settings, pki, passphrase)


@click.group()
def seal() -> None:
    """管理颁发机构的电子印章：申请、导入证书、延续、暂停、恢复、吊销。"""


@seal.command("list")
@DATA_DIR_OPTION
@reports_errors
def list_command(data_dir: Path) -> None:
    """列出全部印章及其状态、证书到期时间。"""
    settings, manager = _manager(data_dir)
    manager.refresh_expiry()
    soon = {
        item.seal.code for item in manager.expiring(settings.seal_expiry_warning_days)
    }
    records = manager.registry.records()
    if not records:
        click.echo("没有登记的印章")
        return
    for record in records:
        ends = _ends(record)
        warning = "（即将到期）" if record.code in soon else ""
        store = record.key.store if record.key else "—"
        click.echo(
            f"{record.code}  {record.seal_type.label}  {record.status.label}  "
            f"{record.authority.name}（{record.authority.code}）  "
            f"证书到期 {ends}{warning}  密钥 {store}"
        )


@seal.command("show")
@DATA_DIR_OPTION
@click.argument("code")
@reports_errors
def show_command(data_dir: Path, code: str) -> None:
    """显示一枚印章的详情和全部变更历史。"""
    from esign.seals import validate_seal_code

    _, manager = _manager(data_dir)
    record = manager.registry.get(validate_seal_code(code))
    authority = record.authority
    lines = [
        f"印章编码：{record.code}",
        f"印章类型：{record.seal_type.label}",
        f"状态：{record.status.label}（自 {_time(record.status_changed_at)}）",
        f"颁发机构：{authority.name}",
        f"统一社会信用代码：{authority.code}",
        f"行政层级：{_LEVEL_LABELS[authority.level.value]}"
        f"（区划 {authority.region_code}）",
        f"部门：{authority.department}",
        f"印模：{manager.registry.seal_dir(record.code) / 'seal.svg'}",
    ]
    if record.key is not None:
        lines.append(f"密钥：{_key_text(record.key)}")
    if record.certificate is not None:
        info = record.certificate
        lines.append(f"证书序列号：{info.serial}")
        lines.append(f"证书签发者：{info.issuer}")
        lines.append(f"有效期：{_time(info.not_before)} 至 {_time(info.not_after)}")
    if record.pending is not None:
        lines.append(
            f"待导入证书的签名请求：{_time(record.pending.requested_at)} 生成，"
            f"密钥 {_key_text(record.pending.key)}"
        )
    lines.append("历史：")
    lines.extend(
        _history_line(entry) for entry in manager.registry.history(record.code)
    )
    click.echo("\n".join(lines))


@seal.command("request")
@DATA_DIR_OPTION
@click.option(
    "--authority", "authority_code", required=True, help="颁发机构的统一社会信用代码。"
)
@click.option(
    "--type",
    "seal_type",
    type=click.Choice(["license", "official"]),
    default="license",
    show_default=True,
    help="印章类型：license 证照专用章，official 公章。",
)
@KEY_STORE_OPTION
@ALGORITHM_OPTION
@CSR_OUT_OPTION
@DEV_CA_OPTION
@OPERATOR_OPTION
@click.option(
    "--reason", default="申请新印章", show_default=True, help="记入历史的事由。"
)
@reports_errors
def request_command(
    data_dir: Path,
    authority_code: str,
    seal_type: str,
    key_store: str | None,
    algorithm: str | None,
    csr_out: Path | None,
    dev_ca: bool,
    operator: str,
    reason: str,
) -> None:
    """生成印章密钥和证书签名请求（CSR），登记为待激活的新印章。"""
    from common.authority import AuthorityRegistry
    from esign.seals import SealType

    _, manager = _manager(data_dir)
    authority = AuthorityRegistry.load().get(authority_code.strip().upper())
    record, csr = manager.request(
        authority,
        SealType(seal_type),
        key_store=key_store or "file",
        algorithm=algorithm or "ec-p256",
        operator=operator,
        reason=reason,
    )
    click.echo(
        f"已登记印章 {record.code}（{authority.name}，{record.seal_type.label}）"
    )
    _finish_request(manager, record.code, csr, csr_out, dev_ca, operator)


@seal.command("renew")
@DATA_DIR_OPTION
@click.argument("code")
@KEY_STORE_OPTION
@ALGORITHM_OPTION
@CSR_OUT_OPTION
@DEV_CA_OPTION
@OPERATOR_OPTION
@click.option(
    "--reason", default="印章证书延续", show_default=True, help="记入历史的事由。"
)
@reports_errors
def renew_command(
    data_dir: Path,
    code: str,
    key_store: str | None,
    algorithm: str | None,
    csr_out: Path | None,
    dev_ca: bool,
    operator: str,
    reason: str,
) -> None:
    """为印章生成新密钥和证书签名请求；印章编码和历史不变。"""
    from esign.seals import validate_seal_code

    _, manager = _manager(data_dir)
    record, csr = manager.renew(
        validate_seal_code(code),
        key_store=key_store,
        algorithm=algorithm,
        operator=operator,
        reason=reason,
    )
    click.echo(f"已为印章 {record.code} 生成新密钥；导入新证书前仍使用原证书签章")
    _finish_request(manager, record.code, csr, csr_out, dev_ca, operator)


@seal.command("import")
@DATA_DIR_OPTION
@click.argument("code")
@click.argument("chain", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@OPERATOR_OPTION
@click.option(
    "--reason",
    default="导入 CA 签发的印章证书",
    show_default=True,
    help="记入历史的事由。",
)
@reports_errors
def import_command(
    data_dir: Path, code: str, chain: Path, operator: str, reason: str
) -> None:
    """导入 CA 签发的证书链（PEM，印章证书在前），核对后启用印章。

    证书必须含本印章密钥的公钥、写明颁发机构的统一社会信用代码，并能链接到
    信任列表中已互认的根证书或本数据目录的开发根证书。
    """
    from esign.seals import validate_seal_code

    _, manager = _manager(data_dir)
    record = manager.import_chain(
        validate_seal_code(code),
        chain.read_bytes(),
        _recognised_roots(data_dir),
        operator=operator,
        reason=reason,
    )
    _echo_activated(record)


@seal.command("suspend")
@DATA_DIR_OPTION
@click.argument("code")
@OPERATOR_OPTION
@click.option("--reason", required=True, help="暂停的事由，记入历史。")
@reports_errors
def suspend_command(data_dir: Path, code: str, operator: str, reason: str) -> None:
    """暂停印章：本服务不再用它签章，证书本身仍然有效。"""
    from esign.seals import validate_seal_code

    _, manager = _manager(data_dir)
    record = manager.suspend(validate_seal_code(code), operator=operator, reason=reason)
    click.echo(f"印章 {record.code} 已暂停；恢复：elicense seal resume {record.code}")


@seal.command("resume")
@DATA_DIR_OPTION
@click.argument("code")
@OPERATOR_OPTION
@click.option("--reason", required=True, help="恢复的事由，记入历史。")
@reports_errors
def resume_command(data_dir: Path, code: str, operator: str, reason: str) -> None:
    """恢复暂停的印章。"""
    from esign.seals import validate_seal_code

    _, manager = _manager(data_dir)
    record = manager.resume(validate_seal_code(code), operator=operator, reason=reason)
    click.echo(f"印章 {record.code} 已恢复启用")


@seal.command("revoke")
@DATA_DIR_OPTION
@click.argument("code")
@OPERATOR_OPTION
@click.option("--reason", required=True, help="吊销的事由，记入历史。")
@click.option(
    "--revoked-at",
    type=click.DateTime(formats=["%Y-%m-%dT%H:%M:%S%z", "%Y-%m-%dT%H:%M:%S"]),
    help=(
        "吊销生效时间（ISO 8601，无时区按 UTC），默认当前时间；"
        "此前盖时间戳的签章仍有效。"
    ),
)
@click.option(
    "--crl-reason",
    type=click.Choice(CRL_REASONS),
    default="unspecified",
    show_default=True,
    help="写入 CRL 的吊销原因代码。",
)
@reports_errors
def revoke_command(
    data_dir: Path,
    code: str,
    operator: str,
    reason: str,
    revoked_at: datetime | None,
    crl_reason: str,
) -> None:
    """吊销印章；开发 CA 签发的证书同时写入 CRL 和 OCSP。"""
    from cryptography import x509

    from esign.seals import validate_seal_code

    _, manager = _manager(data_dir)
    moment = _as_utc(revoked_at) if revoked_at else None
    record = manager.revoke(
        validate_seal_code(code),
        operator=operator,
        reason=reason,
        revoked_at=moment,
        crl_reason=x509.ReasonFlags[crl_reason],
    )
    history = manager.registry.history(record.code)[-1]
    click.echo(f"印章 {record.code} 已吊销，生效时间 {history.details['revoked_at']}")
    if history.details.get("certificate_revoked_by_dev_ca"):
        click.echo("证书已写入开发 CA 的 CRL，OCSP 同时返回已吊销")
    elif record.certificate is not None:
        click.echo(
            f"请联系签发 CA（{record.certificate.issuer}）"
            f"吊销证书 {record.certificate.serial}",
            err=True,
        )


@seal.command("expiring")
@DATA_DIR_OPTION
@click.option(
    "--days",
    type=click.IntRange(min=0),
    help="提前预警的天数，默认取 ELICENSE_SEAL_EXPIRY_WARNING_DAYS（30）。",
)
@reports_errors
def expiring_command(data_dir: Path, days: int | None) -> None:
    """列出证书即将到期的印章；有则退出码为 1，便于定时任务报警。"""
    settings, manager = _manager(data_dir)
    within = settings.seal_expiry_warning_days if days is None else days
    manager.refresh_expiry()
    found = manager.expiring(within)
    for item in found:
        record = item.seal
        click.echo(
            f"预警：印章 {record.code}（{record.authority.name}）的证书"
            f"将于 {_ends(record)}"
            f" 到期，剩余 {item.days_left} 天；请运行 elicense seal renew {record.code}"
        )
    if not found:
        click.echo(f"{within} 天内没有到期的印章")
        return
    sys.exit(1)


def _finish_request(
    manager: SealManager,
    code: str,
    csr: bytes,
    csr_out: Path | None,
    dev_ca: bool,
    operator: str,
) -> None:
    request_path = manager.registry.seal_dir(code) / "request.csr"
    if csr_out is not None:
        csr_out.write_bytes(csr)
        request_path = csr_out
    if dev_ca:
        record = manager.issue_with_dev_ca(
            code, operator=operator, reason="开发 CA 签发印章证书"
        )
        _echo_activated(record)
        return
    click.echo(f"证书签名请求：{request_path}")
    click.echo(f"请交 CA 签发后运行：elicense seal import {code} 证书链.pem")


def _echo_activated(record: SealRecord) -> None:
    assert record.certificate is not None
    click.echo(
        f"印章 {record.code} 已导入证书 {record.certificate.serial}，"
        f"状态：{record.status.label}，"
        f"有效期至 {_time(record.certificate.not_after)}"
    )


def _recognised_roots(data_dir: Path) -> list[x509.Certificate]:
    """Return the self-signed certificates of CAs recognised now."""
    from cryptography import x509

    from verifier.trustlist import TrustList

    trust = TrustList.load(data_dir / "trust")
    now = datetime.now(UTC)
    roots = []
    for ca in trust.cas:
        status = ca.status_at(now)
        if status is None or status.status != "recognised":
            continue
        for certificate in ca.certificates:
            if certificate.self_issued:
                roots.append(x509.load_der_x509_certificate(certificate.dump()))
    return roots


def _history_line(entry: HistoryEntry) -> str:
    serial = f"  证书 {entry.certificate_serial}" if entry.certificate_serial else ""
    reason = f"  事由：{entry.reason}" if entry.reason else ""
    return (
        f"  {_time(entry.at)}  {_ACTION_LABELS.get(entry.action, entry.action)}"
        f" → {entry.status.label}  经办人：{entry.operator}{reason}{serial}"
    )


def _key_text(key: Any) -> str:
    if key.store == "pkcs11":
        return (
            f"PKCS#11 令牌 {key.token_label}，标签 {key.key_label}（{key.algorithm}）"
        )
    return f"加密文件 {key.path}（{key.algorithm}）"


def _ends(record: SealRecord) -> str:
    return _time(record.certificate.not_after) if record.certificate else "—"


def _time(moment: datetime) -> str:
    return f"{moment.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC"


def _as_utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


_LEVEL_LABELS = {"region": "自治区", "league_city": "盟市", "banner_county": "旗县区"}
_ACTION_LABELS = {
    "requested": "申请",
    "created": "登记",
    "adopted": "登记已有印章",
    "activated": "启用",
    "renewal_requested": "申请延续",
    "renewed": "延续",
    "suspended": "暂停",
    "resumed": "恢复",
    "revoked": "吊销",
    "expired": "到期",
}
