"""The ``license``, ``log``, ``fsck`` and ``import-legacy`` commands of ``elicense``.

Lifecycle operations on issued licenses, register searches, the Merkle
event log, the store check and the import of legacy paper licenses. Every
command prints what it did; product errors print the message and the fix
and exit 1.
"""

from __future__ import annotations

import csv
import datetime as dt
import functools
import json
import logging
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import click

from common.errors import ElicenseError, InputError
from elicense.settings import Settings
from license_store.models import LicenseStatus, Operation

if TYPE_CHECKING:
    from elicense.context import ServiceContext
    from license_store.lifecycle import Act

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
OPERATOR_OPTION = click.option(
    "--operator", required=True, help="经办人，记入事件日志。"
)
REASON_OPTION = click.option("--reason", required=True, help="办理事由，记入事件日志。")
LEGAL_BASIS_OPTION = click.option(
    "--legal-basis", default=None, help="法律依据；暂扣、吊销、撤销、注销时必填。"
)
AUTHORITY_OPTION = click.option(
    "--authority",
    default=None,
    help="办理机构的统一社会信用代码；默认为证照的颁发机构。",
)


def _context(data_dir: Path) -> ServiceContext:
    from elicense.context import ServiceContext

    return ServiceContext(Settings(data_dir=data_dir))


def _echo_json(value: Any) -> None:
    click.echo(json.dumps(value, ensure_ascii=False, indent=2, default=str))


# --- license ------------------------------------------------------------


@click.group("license")
def license_group() -> None:
    """证照业务：变更、换发、补发、暂扣、解除暂扣、吊销、注销、查询和历史。"""


def _act(
    context: ServiceContext,
    elicense_id: str,
    operator: str,
    reason: str,
    legal_basis: str | None,
    authority: str | None,
) -> tuple[int, int, Act]:
    from license_store.lifecycle import Act

    version = context.repository.get_version_by_elicense_id(elicense_id)
    license = context.repository.get_license(version.license_id)
    act = Act(operator, (authority or license.issuer_code).upper(), reason, legal_basis)
    return license.id, version.version, act  # type: ignore[return-value]


def _parse_changes(pairs: tuple[str, ...]) -> dict[str, str]:
    changes: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name.strip():
            raise InputError(
                f"--set 的值应为 字段=值，收到 {pair!r}",
                field="set",
                value=pair,
                fix="例如 --set domicile=内蒙古自治区呼和浩特市新城区新华大街1号",
            )
        changes[name.strip()] = value
    return changes


def _new_version_command(operation: Operation, help_text: str) -> click.Command:
    @click.command(str(operation), help=help_text)
    @DATA_DIR_OPTION
    @click.argument("elicense_id")
    @click.option(
        "--set",
        "changes",
        multiple=True,
        help="改动的字段，字段=值，可重复；长期 表示无截止日期。",
    )
    @click.option(
        "--expected-version",
        type=int,
        default=None,
        help="所依据的版本号；默认为 ELICENSE_ID 的版本。",
    )
    @OPERATOR_OPTION
    @REASON_OPTION
    @LEGAL_BASIS_OPTION
    @AUTHORITY_OPTION
    @_reports_errors
    def command(
        data_dir: Path,
        elicense_id: str,
        changes: tuple[str, ...],
        expected_version: int | None,
        operator: str,
        reason: str,
        legal_basis: str | None,
        authority: str | None,
    ) -> None:
        from elicense.register_service import lifecycle_for
        from license_store.records import normalise_open_ended

        context = _context(data_dir)
        license_id, version, act = _act(
            context, elicense_id, operator, reason, legal_basis, authority
        )
        issued = lifecycle_for(context).new_version(
            license_id,
            operation,
            act,
            expected_version=expected_version or version,
            changes=normalise_open_ended(_parse_changes(changes)),
        )
        described = context.issuing.describe(issued)
        click.echo(f"已生成第 {issued.version} 版：{issued.elicense_id}")
        click.echo(f"核验地址：{described['verify_url']}")

    return command


def _status_command(operation: Operation, help_text: str) -> click.Command:
    @click.command(str(operation), help=help_text)
    @DATA_DIR_OPTION
    @click.argument("elicense_id")
    @OPERATOR_OPTION
    @REASON_OPTION
    @LEGAL_BASIS_OPTION
    @AUTHORITY_OPTION
    @click.option(
        "--status",
        type=click.Choice(["07", "03"]),
        default=None,
        help="仅用于 revoke：07 吊销（默认）或 03 撤销。",
    )
    @_reports_errors
    def command(
        data_dir: Path,
        elicense_id: str,
        operator: str,
        reason: str,
        legal_basis: str | None,
        authority: str | None,
        status: str | None,
    ) -> None:
        from elicense.register_service import lifecycle_for

        context = _context(data_dir)
        license_id, _version, act = _act(
            context, elicense_id, operator, reason, legal_basis, authority
        )
        lifecycle_for(context).change_status(
            license_id,
            operation,
            act,
            status=LicenseStatus(status) if status else None,
        )
        now = LicenseStatus(context.repository.get_license(license_id).status)
        click.echo(f"证照 {license_id} 的状态已改为 {now.value} {now.label}")

    return command


for _operation, _help in (
    (Operation.AMEND, "变更：按 --set 改动字段，生成新版本和新的签章 PDF。"),
    (Operation.RENEW, "换发：生成新版本（可用 --set 改有效期），旧版本显示已被取代。"),
    (
        Operation.REPLACE,
        "补发：遗失后按现行内容生成新版本，遗失的旧版本随即失去现行效力。",
    ),
):
    license_group.add_command(_new_version_command(_operation, _help))

for _operation, _help in (
    (Operation.SUSPEND, "暂扣证照；所有版本的核验页立即显示暂扣。"),
    (Operation.LIFT, "解除暂扣，证照恢复有效。"),
    (Operation.REVOKE, "吊销（--status 07）或撤销（--status 03）证照。"),
    (Operation.CANCEL, "注销证照。"),
):
    license_group.add_command(_status_command(_operation, _help))


@license_group.command("show")
@DATA_DIR_OPTION
@click.argument("elicense_id")
@_reports_errors
def show(data_dir: Path, elicense_id: str) -> None:
    """以 JSON 显示证照、全部版本和现行状态。"""
    context = _context(data_dir)
    version = context.repository.get_version_by_elicense_id(elicense_id)
    license = context.repository.get_license(version.license_id)
    versions = context.repository.versions_of(license.id)  # type: ignore[arg-type]
    status = LicenseStatus(license.status)
    _echo_json(
        {
            "license_id": license.id,
            "license_type": license.license_type,
            "issuer_code": license.issuer_code,
            "serial": license.serial,
            "status": status.value,
            "status_label": status.label,
            "current_version": license.current_version,
            "versions": [
                {
                    "version": v.version,
                    "elicense_id": v.elicense_id,
                    "issued_on": v.issued_on.isoformat(),
                    "pdf_sha256": v.pdf_sha256,
                    "current": v.version == license.current_version,
                }
                for v in versions
            ],
        }
    )


@license_group.command("history")
@DATA_DIR_OPTION
@click.argument("elicense_id")
@_reports_errors
def history(data_dir: Path, elicense_id: str) -> None:
    """以 JSON 列出证照的全部事件：操作、经办人、机构、事由、法律依据和时间。"""
    context = _context(data_dir)
    version = context.repository.get_version_by_elicense_id(elicense_id)
    events = context.repository.events_of(version.license_id)
    _echo_json([_event_json(e) for e in events])


def _event_json(event: Any) -> dict[str, Any]:
    return {
        "log_index": event.log_index,
        "operation": str(event.operation),
        "version": event.version,
        "operator": event.operator,
        "authority_code": event.authority_code,
        "reason": event.reason,
        "legal_basis": event.legal_basis,
        "occurred_at": event.occurred_at.isoformat(),
        "detail": event.detail,
        "leaf_hash": event.leaf_hash,
    }


@license_group.command("metadata")
@DATA_DIR_OPTION
@click.argument("elicense_id")
@_reports_errors
def metadata(data_dir: Path, elicense_id: str) -> None:
    """以 JSON 输出一个版本的 GB/T 36903 元数据（公民身份号码打码）。"""
    from elicense.queries import gbt_36903_metadata, version_facts

    context = _context(data_dir)
    _echo_json(gbt_36903_metadata(context, version_facts(context, elicense_id)))


@license_group.command("find")
@DATA_DIR_OPTION
@click.option("--uscc", help="持证主体代码（统一社会信用代码）。")
@click.option("--elicense-id", help="任一版本的电子证照标识。")
@click.option("--name", help="持证主体名称中的一段文字。")
@click.option("--authority", help="颁发机构的统一社会信用代码。")
@click.option("--status", type=click.Choice([s.value for s in LicenseStatus]))
@click.option(
    "--from",
    "issued_from",
    type=click.DateTime(["%Y-%m-%d"]),
    help="现行版本颁发日期起（含）。",
)
@click.option(
    "--to",
    "issued_to",
    type=click.DateTime(["%Y-%m-%d"]),
    help="现行版本颁发日期止（含）。",
)
@click.option("--page-size", type=click.IntRange(1, 200), default=20, show_default=True)
@click.option("--after", type=int, default=None, help="上一页输出的 next_after_id。")
@_reports_errors
def find(data_dir: Path, page_size: int, after: int | None, **filters: Any) -> None:
    """按代码、标识、名称、机构、状态和日期查询证照，按编号倒序分页。"""
    from license_store.repository import LicenseQuery

    context = _context(data_dir)
    query = LicenseQuery(
        holder_code=filters["uscc"],
        elicense_id=filters["elicense_id"],
        holder_name=filters["name"],
        issuer_code=filters["authority"],
        status=LicenseStatus(filters["status"]) if filters["status"] else None,
        issued_from=_day(filters["issued_from"]),
        issued_to=_day(filters["issued_to"]),
    )
    page = context.repository.search_licenses(query, page_size, after)
    _echo_json(
        {
            "items": [row.model_dump(mode="json") for row in page.items],
            "next_after_id": page.next_after_id,
        }
    )


def _day(value: dt.datetime | None) -> dt.date | None:
    return value.date() if value is not None else None


@license_group.command("proof")
@DATA_DIR_OPTION
@click.argument("elicense_id")
@_reports_errors
def proof(data_dir: Path, elicense_id: str) -> None:
    """输出一个版本在事件日志中的包含证明和签名检查点（JSON）。"""
    from elicense.register_service import event_log_for
    from license_store.translog import require_proof_valid

    context = _context(data_dir)
    version = context.repository.get_version_by_elicense_id(elicense_id)
    found = event_log_for(context).inclusion_proof(version.license_id, version.version)
    require_proof_valid(found)
    _echo_json(found.to_json())


# --- event log ----------------------------------------------------------


@click.group("log")
def log_group() -> None:
    """事件日志（Merkle 树）：签署检查点、一致性证明和完整核对。"""


@log_group.command("checkpoint")
@DATA_DIR_OPTION
@_reports_errors
def log_checkpoint(data_dir: Path) -> None:
    """为当前日志签署检查点（日志未增长时输出最新的检查点）。"""
    from elicense.register_service import event_log_for
    from license_store.translog import checkpoint_json

    context = _context(data_dir)
    _echo_json(checkpoint_json(event_log_for(context).checkpoint()))


@log_group.command("checkpoints")
@DATA_DIR_OPTION
@_reports_errors
def log_checkpoints(data_dir: Path) -> None:
    """列出已签署的检查点。"""
    from license_store.translog import checkpoint_json

    context = _context(data_dir)
    _echo_json([checkpoint_json(row) for row in context.repository.checkpoints()])


@log_group.command("consistency")
@DATA_DIR_OPTION
@click.argument("old_size", type=int)
@click.argument("new_size", type=int)
@_reports_errors
def log_consistency(data_dir: Path, old_size: int, new_size: int) -> None:
    """输出两个检查点（按树大小）之间的一致性证明。"""
    from elicense.register_service import event_log_for

    context = _context(data_dir)
    _echo_json(event_log_for(context).consistency_proof(old_size, new_size).to_json())


@log_group.command("verify")
@DATA_DIR_OPTION
@_reports_errors
def log_verify(data_dir: Path) -> None:
    """重新计算每条日志的叶哈希、每个检查点的根哈希和签名；不符时退出 1。"""
    from elicense.register_service import event_log_for
    from license_store.registercheck import check_register

    context = _context(data_dir)
    report = event_log_for(context).verify()
    register = check_register(context.repository)
    click.echo(
        f"核对日志 {report.entries_checked} 条、检查点 {report.checkpoints_checked} 个"
    )
    if report.first_problem is not None:
        first = report.first_problem
        click.echo(f"第一处不符：第 {first.log_index} 条：{first.problem}", err=True)
    for problem in report.problems[1:]:
        click.echo(f"不符：{problem.problem}", err=True)
    for item in register:
        click.echo(f"证照 {item.license_id}：{item.problem}", err=True)
    if report.ok and not register:
        click.echo("事件日志完整，与登记簿一致")
        return
    sys.exit(1)


# --- store check --------------------------------------------------------


@click.command("fsck")
@DATA_DIR_OPTION
@click.option("--delete-orphans", is_flag=True, help="删除没有版本引用的孤立 PDF。")
@click.option(
    "--orphan-min-age",
    type=click.FloatRange(min=0),
    default=3600.0,
    show_default=True,
    help="只删除早于这么多秒写入的孤立 PDF，以免删掉正在签发的文件。",
)
@click.option("--skip-pdf-verify", is_flag=True, help="不逐份核验 PDF 签名（更快）。")
@click.option(
    "--jobs",
    type=click.IntRange(1, 64),
    default=os.cpu_count() or 1,
    show_default="CPU 核数",
    help="同时核验的 PDF 份数。",
)
@_reports_errors
def fsck(
    data_dir: Path,
    delete_orphans: bool,
    orphan_min_age: float,
    skip_pdf_verify: bool,
    jobs: int,
) -> None:
    """核对登记簿、文件存储和每份 PDF 的签名；有不符时退出 1。"""
    from license_store.registercheck import check_register
    from license_store.storecheck import check_store

    context = _context(data_dir)
    report = check_store(
        context.repository,
        context.blobs,
        delete_orphans=delete_orphans,
        orphan_min_age_seconds=orphan_min_age,
    )
    problems = [
        f"{p.elicense_id}：{p.problem}" for p in report.missing + report.mismatched
    ]
    problems += [
        f"证照 {p.license_id}：{p.problem}" for p in check_register(context.repository)
    ]
    if not skip_pdf_verify:
        problems += _unverified_pdfs(context, jobs)
    for digest in report.orphans:
        deleted = "（已删除）" if digest in report.deleted_orphans else ""
        click.echo(f"孤立 PDF：{digest}{deleted}")
    for problem in problems:
        click.echo(f"不符：{problem}", err=True)
    if report.removed_temp_files:
        click.echo(f"删除中断写入留下的临时文件 {len(report.removed_temp_files)} 个")
    click.echo(
        f"核对版本 {report.versions_checked} 个，孤立 PDF {len(report.orphans)} 份"
        f"（删除 {len(report.deleted_orphans)} 份），不符 {len(problems)} 处"
    )
    if problems:
        sys.exit(1)


def _unverified_pdfs(context: ServiceContext, jobs: int) -> list[str]:
    """Verify every stored PDF, ``jobs`` at a time; return what does not match.

    Each verification runs in a worker process of the verifier, so threads
    here are enough to keep several cores busy.
    """
    from concurrent.futures import ThreadPoolExecutor

    versions = list(context.repository.iter_version_blobs())
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        found = pool.map(lambda item: _check_one_pdf(context, *item[:2]), versions)
        return [problem for problem in found if problem is not None]


def _check_one_pdf(
    context: ServiceContext, elicense_id: str, sha256: str
) -> str | None:
    try:
        data = context.blobs.get(sha256)
    except ElicenseError:
        return None  # reported by the store check
    problem = _pdf_problem(context, elicense_id, data)
    if problem is None:
        return None
    logger.warning("version %s does not verify", elicense_id)
    return f"{elicense_id}：{problem}"


def _pdf_problem(context: ServiceContext, elicense_id: str, data: bytes) -> str | None:
    # The register step fails for a superseded, suspended or revoked
    # version by design, so only the identity of the matched version counts.
    verdict = context.verify_pdf_sync(data)
    failed = [
        reason
        for step in verdict.steps
        if step.name != "register" and step.status in ("failed", "indeterminate")
        for reason in step.reasons
    ]
    if failed:
        return "；".join(failed)
    if verdict.license is None or verdict.license.elicense_id != elicense_id:
        return "PDF 与登记的版本不一致"
    return None


# --- legacy import ------------------------------------------------------

REPORT_COLUMNS = ("line", "column", "value", "reason")


@click.command("import-legacy")
@DATA_DIR_OPTION
@click.argument(
    "csv_path", type=click.Path(exists=True, dir_okay=False, path_type=Path)
)
@click.option(
    "--mapping",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="列映射文件（TOML），见 examples/business-licenses-legacy.mapping.toml。",
)
@click.option(
    "--report",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="拒绝行的报告 CSV（line, column, value, reason）；默认为 CSV 旁的 .errors.csv。",
)
@click.option("--operator", default="legacy-import", show_default=True, help="经办人。")
@_reports_errors
def import_legacy(
    data_dir: Path, csv_path: Path, mapping: Path, report: Path | None, operator: str
) -> None:
    """将存量纸质证照的导出 CSV 签发为电子证照；中断后重新运行即可续办。"""
    from license_store.legacy import load_mapping, read_legacy_rows

    column_map = load_mapping(mapping)
    rows = list(read_legacy_rows(csv_path.read_bytes(), column_map))
    context = _context(data_dir)
    counts, rejected = {"issued": 0, "replayed": 0}, []
    with click.progressbar(rows, label="导入存量证照", file=sys.stderr) as bar:
        for row in bar:
            outcome = _import_row(context, row, operator, column_map)
            if isinstance(outcome, dict):
                rejected.append(outcome)
            else:
                counts[outcome] += 1
    report_path = report or csv_path.with_suffix(".errors.csv")
    _write_report(report_path, rejected)
    click.echo(
        f"签发 {counts['issued']} 张，已签发过 {counts['replayed']} 张，"
        f"拒绝 {len(rejected)} 行（报告：{report_path}）"
    )


def _import_row(
    context: ServiceContext, row: Any, operator: str, column_map: Any
) -> str | dict[str, Any]:
    from common.errors import StorageError

    if row.error is not None:
        return _report_line(row.line_no, column_map, row.error)
    try:
        issued = context.issuing.service.issue(
            row.record,
            operator=operator,
            idempotency_key=row.idempotency_key,
            reason="存量纸质证照电子化",
        )
    except StorageError:
        raise
    except ElicenseError as error:
        return _report_line(row.line_no, column_map, error)
    return "replayed" if issued.replayed else "issued"


def _report_line(line_no: int, column_map: Any, error: ElicenseError) -> dict[str, Any]:
    field_name = getattr(error, "field", None)
    value = getattr(error, "value", None)
    return {
        "line": line_no,
        "column": column_map.column_of(field_name) if field_name != "line" else "",
        "value": "" if value is None or field_name == "line" else str(value),
        "reason": str(error),
    }


def _write_report(path: Path, rejected: list[dict[str, Any]]) -> None:
    with path.open("w", encoding="utf-8-sig", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=REPORT_COLUMNS)
        writer.writeheader()
        writer.writerows(rejected)


license_group.add_command(log_group)
license_group.add_command(fsck)
license_group.add_command(import_legacy)


def _add_top_level_commands() -> None:
    """Add ``log``, ``fsck`` and ``import-legacy`` beside ``license``.

    NOTE: elicense/cli.py adds only the license group, so this finds its
    ``main`` group (imported as ``elicense.cli``, or run as ``__main__``
    by ``python -m elicense.cli``) and adds the three commands to it.
    They stay reachable as ``elicense license log|fsck|import-legacy``.
    """
    for module_name in ("elicense.cli", "__main__"):
        main = getattr(sys.modules.get(module_name), "main", None)
        if isinstance(main, click.Group) and "init" in main.commands:
            for command in (log_group, fsck, import_legacy):
                main.commands.setdefault(str(command.name), command)


_add_top_level_commands()
