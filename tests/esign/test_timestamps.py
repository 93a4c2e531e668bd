"""The built-in TSA, its RFC 3161 responder and the HTTP client."""

from __future__ import annotations

import asyncio
import hashlib
import socket
from typing import ClassVar

import pytest
from asn1crypto import algos, core, tsp
from conftest import SIGNED_AT
from esign_tools import closed_port_url

from esign.timestamps import (
    MAX_REQUEST_BYTES,
    HttpTimeStamper,
    TimestampUnavailableError,
    answer_timestamp_request,
)


class _StatusOnly(core.Sequence):
    """A TimeStampResp read without its optional token (RFC 3161 2.4.2)."""

    _fields: ClassVar = [("status", tsp.PKIStatusInfo)]


def _request(algorithm: str = "sha256", digest: bytes | None = None) -> bytes:
    if digest is None:
        digest = hashlib.new(algorithm, b"license").digest()
    request = tsp.TimeStampReq(
        {
            "version": 1,
            "message_imprint": {
                "hash_algorithm": algos.DigestAlgorithm({"algorithm": algorithm}),
                "hashed_message": digest,
            },
            "nonce": 5,
            "cert_req": True,
        }
    )
    return request.dump()


def test_responder_grants_valid_request(timestamper, dev_pki):
    response = tsp.TimeStampResp.load(answer_timestamp_request(timestamper, _request()))

    assert response["status"]["status"].native == "granted"
    signed_data = response["time_stamp_token"]["content"]
    info = signed_data["encap_content_info"]["content"].parsed
    assert info["gen_time"].native == SIGNED_AT
    assert info["nonce"].native == 5
    assert info["message_imprint"]["hashed_message"].native == (
        hashlib.sha256(b"license").digest()
    )
    serials = {c.chosen.serial_number for c in signed_data["certificates"]}
    assert dev_pki.certificate("tsa").serial_number in serials


def test_builtin_timestamps_verify_in_signed_pdf(license_signers, sample_pdf):
    # Covered in depth by test_signing; here only the parsed-once key path.
    pdf = license_signers["B-T"].sign(sample_pdf)

    assert b"/ETSI.CAdES.detached" in pdf


@pytest.mark.parametrize(
    ("body", "fail_info"),
    [
        (b"", "bad_data_format"),
        (b"garbage", "bad_data_format"),
        (b"\x30" * (MAX_REQUEST_BYTES + 1), "bad_data_format"),
        (_request("md5"), "bad_alg"),
        (_request("sha256", digest=b"short"), "bad_data_format"),
        (_request().replace(b"\x02\x01\x05", b"\x09\x01\x05"), "bad_data_format"),
    ],
    ids=["empty", "garbage", "oversized", "md5", "short-digest", "nonce-as-real"],
)
def test_responder_rejects_bad_request(timestamper, body, fail_info):
    response = _StatusOnly.load(answer_timestamp_request(timestamper, body))

    assert response["status"]["status"].native == "rejection"
    assert response["status"]["fail_info"].native == {fail_info}


def test_http_client_gets_token_from_local_tsa(pki_server, dev_pki):
    timestamper = HttpTimeStamper(f"{pki_server.base_url}/pki/tsa", timeout_seconds=5)
    digest = hashlib.sha256(b"license").digest()

    token = asyncio.run(timestamper.async_timestamp(digest, "sha256"))

    info = token["content"]["encap_content_info"]["content"].parsed
    assert info["gen_time"].native == SIGNED_AT


def test_http_client_unreachable_raises():
    url = closed_port_url("/pki/tsa")
    timestamper = HttpTimeStamper(url, timeout_seconds=1)

    with pytest.raises(TimestampUnavailableError) as caught:
        asyncio.run(timestamper.async_timestamp(b"\x00" * 32, "sha256"))

    assert url in caught.value.message
    assert "秒" in caught.value.fix


def test_http_client_timeout_raises():
    # A listening socket that never accepts: the request times out.
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        port = listener.getsockname()[1]
        timestamper = HttpTimeStamper(f"http://127.0.0.1:{port}/", timeout_seconds=0.5)

        with pytest.raises(TimestampUnavailableError):
            asyncio.run(timestamper.async_timestamp(b"\x00" * 32, "sha256"))


def test_http_client_wrong_content_type_raises(pki_server):
    timestamper = HttpTimeStamper(f"{pki_server.base_url}/pki/ocsp", timeout_seconds=5)

    with pytest.raises(TimestampUnavailableError) as caught:
        asyncio.run(timestamper.async_timestamp(b"\x00" * 32, "sha256"))

    assert "application/ocsp-response" in caught.value.message


def test_builtin_timestamper_repr_hides_key(timestamper):
    assert "PrivateKey" not in repr(timestamper)


def test_http_client_rejection_raises(pki_server):
    timestamper = HttpTimeStamper(f"{pki_server.base_url}/pki/tsa", timeout_seconds=5)

    with pytest.raises(TimestampUnavailableError) as caught:
        asyncio.run(timestamper.async_timestamp(b"\x00" * 16, "md5"))

    assert "rejection" in caught.value.message
    assert "bad_alg" in caught.value.message
