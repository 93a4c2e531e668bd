"""Read request bodies without buffering more than the configured limit."""

from __future__ import annotations

from fastapi import Request

from common.errors import InputError


class UploadTooLarge(InputError):
    """The request body is larger than the upload limit."""


async def read_limited_body(request: Request, max_bytes: int) -> bytes:
    """Return the body, or raise as soon as it grows past ``max_bytes``.

    A declared Content-Length over the limit is rejected before any byte is
    read; a chunked body is counted while it streams.
    """
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > max_bytes:
        raise _too_large(int(declared), max_bytes)
    chunks: list[bytes] = []
    received = 0
    async for chunk in request.stream():
        received += len(chunk)
        if received > max_bytes:
            raise _too_large(received, max_bytes)
        chunks.append(chunk)
    return b"".join(chunks)


def _too_large(size: int, max_bytes: int) -> UploadTooLarge:
    return UploadTooLarge(
        f"上传内容 {size} 字节超过上限 {max_bytes} 字节",
        field="file",
        value=size,
        fix="请只上传一个证照 PDF 文件",
    )
