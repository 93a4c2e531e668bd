"""Helpers for the esign tests that run outside tools."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
from pathlib import Path

import pytest


def need_tool(name: str) -> str:
    """Return the path of ``name``, or skip the test when it is absent.

    Under CI (``ELICENSE_REQUIRE_TOOLS=1``) an absent tool fails the test,
    as in ``tests/tools.py``, so outside checks cannot silently drop out.
    """
    path = shutil.which(name)
    if path:
        return path
    message = (
        f"{name} is not installed (Debian: poppler-utils, libnss3-tools, softhsm2)"
    )
    if os.environ.get("ELICENSE_REQUIRE_TOOLS") == "1":
        pytest.fail(message)
    pytest.skip(message)


def run_pdfsig(nss_db: str, pdf_path: Path) -> str:
    """Return pdfsig's report; pdfsig exits 0 even for broken signatures."""
    result = subprocess.run(
        ["pdfsig", "-nssdir", nss_db, str(pdf_path)],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    return result.stdout + result.stderr


def closed_port_url(path: str) -> str:
    """Return a loopback URL on a port that was free a moment ago."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}{path}"
