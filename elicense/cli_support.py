"""Options and error handling shared by every ``elicense`` command module."""

from __future__ import annotations

import functools
import logging
import sys
from pathlib import Path
from typing import Any, Callable

import click
from pydantic import ValidationError

from common.errors import ElicenseError
from elicense.settings import Settings

logger = logging.getLogger(__name__)

DATA_DIR_OPTION = click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    envvar="ELICENSE_DATA_DIR",
    default=Path("var/data"),
    show_default=True,
    help="数据目录：登记库、证照文件、开发 PKI 和信任列表。",
)


def settings_for(data_dir: Path, **overrides: Any) -> Settings:
    values = {"data_dir": data_dir, **{k: v for k, v in overrides.items() if v}}
    return Settings(**values)


def reports_errors(command: Callable[..., Any]) -> Callable[..., Any]:
    """Print product errors as one message with the fix and exit 1."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except ElicenseError as error:
            click.echo(f"错误：{error.message}", err=True)
            if error.fix:
                click.echo(f"处理办法：{error.fix}", err=True)
            sys.exit(1)
        except ValidationError as error:
            for problem in error.errors():
                where = ".".join(str(part) for part in problem.get("loc", ()))
                message = str(problem.get("msg", "")).removeprefix("Value error, ")
                click.echo(f"错误：设置 {where} 无效：{message}", err=True)
            click.echo("处理办法：请修改对应的命令行选项或 ELICENSE_ 环境变量", err=True)
            sys.exit(1)
        except OSError as error:
            click.echo(f"错误：无法访问 {error.filename or ''}：{error.strerror}", err=True)
            click.echo("处理办法：请检查路径是否存在、是否为目录以及读写权限", err=True)
            sys.exit(1)
        except Exception as error:  # noqa: BLE001 - users get a message, not a traceback
            logger.debug("unexpected error", exc_info=True)
            click.echo(f"错误：处理失败（{type(error).__name__}：{str(error)[:200]}）", err=True)
            click.echo(
                "处理办法：请检查数据目录是否完整（可用 elicense fsck 核对）；"
                "加 -v 可查看详细日志",
                err=True,
            )
            sys.exit(1)

    return wrapper


