"""Cheap checks on raw bytes that run before any PDF parsing.

Each check is one linear scan, so a hostile file with thousands of
revisions or objects is rejected in milliseconds, before pyhanko spends
time on it. Counts of keywords are upper bounds of what a parser would
find (a keyword can also appear inside a stream), which errs towards
rejection, and licenses stay far below the limits.
"""

from __future__ import annotations

import re

from verifier.limits import VerificationLimits

# The header after optional leading ASCII whitespace, the bytes that
# bytes.lstrip() removes. Matching in place avoids copying the whole file.
_PDF_HEADER = re.compile(rb"[ \t\n\r\x0b\x0c]*%PDF-")


def precheck_problem(data: bytes, limits: VerificationLimits) -> str | None:
    """Return why ``data`` cannot be a license PDF within the limits, or None."""
    if not data:
        return "文件为空"
    if len(data) > limits.max_bytes:
        return f"文件大小 {len(data)} 字节超过上限 {limits.max_bytes} 字节"
    if _PDF_HEADER.match(data) is None:
        return "不是 PDF 文件（缺少 %PDF- 文件头）"
    revisions = data.count(b"startxref")
    if revisions > limits.max_revisions:
        return f"修订版本数 {revisions} 超过上限 {limits.max_revisions}"
    # Every indirect object outside an object stream ends with "endobj".
    # bytes.count runs in C, while a regular expression for the object
    # header backtracks over the digits of compressed streams.
    objects = data.count(b"endobj")
    if objects > limits.max_objects:
        return f"对象数 {objects} 超过上限 {limits.max_objects}"
    return None
