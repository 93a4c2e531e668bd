"""PNG previews of rendered PDFs through poppler's ``pdftoppm``."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

from common.errors import InputError

PREVIEW_TIMEOUT_SECONDS = 30


def preview_png(pdf: bytes, dpi: int = 100, page: int = 1) -> bytes:
    """Render one page of ``pdf`` (1-based ``page``) to PNG bytes.

    Raises :class:`InputError` when ``pdftoppm`` is not installed or cannot
    read the PDF.
    """
    command = shutil.which("pdftoppm")
    if command is None:
        raise InputError(
            "找不到 pdftoppm，无法生成预览图",
            field="pdftoppm",
            value=None,
            fix="请安装 poppler-utils（Debian：apt-get install poppler-utils）",
        )
    with tempfile.TemporaryDirectory(prefix="elicense-preview-") as directory:
        source = Path(directory) / "license.pdf"
        source.write_bytes(pdf)
        target = Path(directory) / "page"
        arguments = [command, "-png", "-r", str(dpi), "-f", str(page), "-l", str(page)]
        result = subprocess.run(
            [*arguments, "-singlefile", str(source), str(target)],
            capture_output=True,
            timeout=PREVIEW_TIMEOUT_SECONDS,
            check=False,
        )
        image = target.with_suffix(".png")
        png = image.read_bytes() if image.is_file() else b""
    if result.returncode != 0 or not png:
        message = result.stderr.decode("utf-8", "replace").strip()
        raise InputError(
            f"pdftoppm 无法渲染第 {page} 页：{message}",
            field="pdf",
            value=len(pdf),
            fix="请确认输入是完整的 PDF 且页码存在",
        )
    return png
