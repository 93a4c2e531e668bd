"""The ``elicense`` command line.

Exit codes: 0 success (for ``verify``: valid), 1 invalid or failed, 2
indeterminate or bad usage. Product errors print their message and fix,
never a traceback.
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import click

from elicense.cli_support import DATA_DIR_OPTION, reports_errors, settings_for

logger = logging.getLogger(__name__)

@click.group()
@click.option("--verbose", "-v", is_flag=True, help="输出调试日志。")
def main(verbose: bool) -> None:
    """电子证照与电子印章服务。"""
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if not verbose:
        # pyhanko logs every failed path search with a traceback; the verdict
        # already carries the reason, so only errors reach the terminal.
        for name in ("pyhanko", "pyhanko_certvalidator"):
            logging.getLogger(name).setLevel(logging.ERROR)


@main.command()
@DATA_DIR_OPTION
@click.option("--public-url", help="二维码和证书中使用的服务地址，例如 http://127.0.0.1:8000。")
@reports_errors
def init(data_dir: Path, public_url: str | None) -> None:
    """创建数据目录、开发 PKI（根 CA、签发 CA、时间戳、印章）和登记库。"""
    from elicense.initialise import initialise

    report = initialise(settings_for(data_dir, public_url=public_url))
    click.echo(f"数据目录：{report.data_dir}")
    click.echo(f"根证书：{report.root_certificate}")
    click.echo(f"信任列表：{report.trust_list}")
    click.echo(f"印章数：{report.seals}")
    click.echo(f"登记库：{report.database_url}")


@main.command()
@DATA_DIR_OPTION
@click.argument("records", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), help="另存 PDF 的目录。")
@click.option("--operator", default="batch", show_default=True, help="记入操作日志的经办人。")
@click.option("--public-url", help="二维码中的服务地址（默认取 ELICENSE_PUBLIC_URL）。")
@click.option(
    "--workers",
    type=click.IntRange(1, 64),
    default=1,
    show_default=True,
    help="并行签发的进程数（一般取 CPU 核数）。",
)
@reports_errors
def issue(
    data_dir: Path,
    records: Path,
    out: Path | None,
    operator: str,
    public_url: str | None,
    workers: int,
) -> None:
    """签发 JSON Lines 或 CSV 文件中的证照记录。"""
    from elicense.batch import issue_file

    settings = settings_for(data_dir, public_url=public_url)
    summary = issue_file(settings, records, out_dir=out, operator=operator, workers=workers)
    for rejection in summary.rejected:
        where = f"字段 {rejection.field}（值 {rejection.value!r}）：" if rejection.field else ""
        click.echo(f"拒绝 第 {rejection.line_no} 行：{where}{rejection.message}", err=True)
    click.echo(
        f"签发 {summary.issued_count} 张，已签发过 {summary.repeated_count} 张，"
        f"拒绝 {len(summary.rejected)} 条，用时 {summary.elapsed_seconds:.1f} 秒"
    )
    if summary.first_verify_url:
        click.echo(f"第一张证照的核验地址：{summary.first_verify_url}")
    if summary.rejected:
        # The batch ran to the end, and exit code 1 reports rejected lines to scripts.
        sys.exit(1)


@main.command()
@DATA_DIR_OPTION
@click.argument("pdf", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--offline", is_flag=True, help="不查询登记库，只核验签名和信任列表。")
@click.option(
    "--receipt",
    type=click.Path(dir_okay=False, path_type=Path),
    help="另写一份签名的核验回执（CMS，.p7m），供其他部门留存。",
)
@reports_errors
def verify(data_dir: Path, pdf: Path, offline: bool, receipt: Path | None) -> None:
    """核验证照 PDF，以 JSON 输出结论；有效退出 0，无效 1，无法确定 2。"""
    from elicense.context import ServiceContext
    from verifier.verdict import Outcome

    context = ServiceContext(settings_for(data_dir))
    data = pdf.read_bytes()
    verdict = context.verify_pdf_sync(data, offline=offline)
    if receipt is not None:
        from elicense.web.receipts import make_receipt

        receipt.write_bytes(make_receipt(context, verdict, data))
    click.echo(json.dumps(verdict.to_json(), ensure_ascii=False, indent=2))
    codes = {Outcome.VALID: 0, Outcome.INVALID: 1, Outcome.INDETERMINATE: 2}
    sys.exit(codes[verdict.outcome])


@main.command()
@DATA_DIR_OPTION
@click.option("--host", default="127.0.0.1", show_default=True, help="监听地址。")
@click.option("--port", default=8000, show_default=True, type=int, help="监听端口。")
@click.option("--workers", default=1, show_default=True, type=int, help="工作进程数。")
@reports_errors
def serve(data_dir: Path, host: str, port: int, workers: int) -> None:
    """启动核验和签发服务（FastAPI + uvicorn）。"""
    import os

    import uvicorn

    from elicense.context import ServiceContext

    settings = settings_for(data_dir)
    context = ServiceContext(settings)
    context.check_ready()
    address = f"http://{host}:{port}"
    click.echo(f"服务地址：{address}/ （接口文档：{address}/docs）")
    first = context.first_verify_url()
    if first:
        click.echo(f"第一张证照的核验地址：{first}")
    os.environ["ELICENSE_DATA_DIR"] = str(data_dir)
    uvicorn.run(
        "elicense.web.factory:app_from_environment",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level="warning",
    )


@main.group()
def apikey() -> None:
    """管理接口密钥（发证机关系统和查询部门）。"""


@apikey.command("create")
@DATA_DIR_OPTION
@click.option("--name", required=True, help="客户端名称，例如 包头市市场监督管理局登记系统。")
@click.option(
    "--kind", type=click.Choice(["bureau", "agency"]), required=True, help="发证机关或查询部门。"
)
@click.option("--authority", help="发证机关的统一社会信用代码（kind=bureau 时必填）。")
@click.option(
    "--scope",
    multiple=True,
    help="查询范围，可重复：license_type:TYPE、field:NAME、id_numbers、supervisor。",
)
@reports_errors
def apikey_create(
    data_dir: Path, name: str, kind: str, authority: str | None, scope: tuple[str, ...]
) -> None:
    """创建接口密钥；密钥只显示这一次，登记库只保存其散列。"""
    from elicense.context import ServiceContext

    context = ServiceContext(settings_for(data_dir))
    key = context.create_api_client(name, kind, authority, list(scope))
    click.echo(key)


# Command groups that live in their own modules.
from elicense.register_cli import fsck, import_legacy, license_group, log_group  # noqa: E402
from elicense.seal_cli import seal  # noqa: E402
from elicense.templates_cli import templates_group  # noqa: E402
from elicense.trust_cli import trust  # noqa: E402

main.add_command(license_group, name="license")
main.add_command(log_group, name="log")
main.add_command(fsck, name="fsck")
main.add_command(import_legacy, name="import-legacy")
main.add_command(seal)
main.add_command(templates_group, name="templates")
main.add_command(trust)


if __name__ == "__main__":
    main()
