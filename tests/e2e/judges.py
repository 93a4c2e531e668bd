"""Outside judges: poppler's pdfsig and pyhanko's own validator CLI."""

from __future__ import annotations

import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from tests.tools import need_tool


@dataclass(frozen=True)
class PdfsigReport:
    output: str

    @property
    def signature_valid(self) -> bool:
        return "Signature Validation: Signature is Valid." in self.output

    @property
    def total_document_signed(self) -> bool:
        return "Total document signed" in self.output

    @property
    def certificate_trusted(self) -> bool:
        return "Certificate Validation: Certificate is Trusted." in self.output


def nss_database(directory: Path, root_pem: Path) -> Path:
    """Create an NSS database that trusts ``root_pem`` for signatures (email)."""
    certutil = need_tool("certutil")
    directory.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [certutil, "-N", "-d", f"sql:{directory}", "--empty-password"], check=True
    )
    subprocess.run(
        [certutil, "-A", "-d", f"sql:{directory}", "-n", "elicense-root",
         "-t", "C,C,C", "-i", str(root_pem)],
        check=True,
    )
    return directory


def pdfsig(pdf: Path, nss_dir: Path) -> PdfsigReport:
    tool = need_tool("pdfsig")
    result = subprocess.run(
        [tool, "-nssdir", f"sql:{nss_dir}", str(pdf)], capture_output=True, text=True
    )
    return PdfsigReport(result.stdout + result.stderr)


def pyhanko_validate(
    pdf: Path, root_pem: Path, command: str = "adesverify"
) -> tuple[bool, str]:
    """Run pyhanko's validator with the root as the only trust anchor.

    ``adesverify`` validates the way PAdES B-LT intends: from the validation
    data embedded in the document. ``validate`` fetches revocation data from
    the URLs in the certificates, so it needs the service running.
    """
    result = subprocess.run(
        [sys.executable, "-m", "pyhanko", "sign", command, "--no-strict-syntax",
         "--trust-replace", "--trust", str(root_pem), "--pretty-print", str(pdf)],
        capture_output=True,
        text=True,
    )
    text = result.stdout + result.stderr
    return result.returncode == 0, text


def byte_range(data: bytes) -> tuple[int, int, int, int]:
    match = re.search(rb"/ByteRange\s*\[\s*(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s*\]", data)
    assert match, "no /ByteRange in file"
    return tuple(int(group) for group in match.groups())  # type: ignore[return-value]
