"""Options and error handling shared by every ``elicense`` command module."""

from __future__ import annotations

import functools
import sys
from pathlib import Path
from typing import Any, Callable

import click

from common.errors import ElicenseError
from elicense.settings import Settings

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

    return wrapper


