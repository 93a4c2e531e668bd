"""The verifier's hex string reader returns what pyhanko's own reader returns."""

from __future__ import annotations

import io

import pytest
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.misc import PdfStreamError
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.pdf_utils.writer import PdfFileWriter

from verifier import pdf_hex

LONG_DIGITS = b"0123456789abcdefABCDEF" * 2000  # longer than one 16 KiB chunk

CASES = {
    "plain": b"<48656c6c6f> tail",
    "empty": b"<> tail",
    "odd digit count": b"<48656c6c6f7> tail",
    "upper case": b"<48656C6C6F> tail",
    "pdf whitespace": b"<48 65\n6c\r6c\t6f\x0c2\x000> tail",
    "comment hides a bracket": b"<4865 % note > here\n6c6c6f> tail",
    "text string with bom": b"<FEFF00410042> tail",
    "long": b"<" + LONG_DIGITS + b"> tail",
    "bracket at chunk end": b"<" + b"a" * (16 * 1024 - 1) + b"> tail",
    "bracket after chunk end": b"<" + b"a" * (16 * 1024) + b"> tail",
}

INVALID = {
    "invalid byte": b"<48zz65> tail",
    "missing bracket": b"<48656c6c6f",
    "long missing bracket": b"<" + LONG_DIGITS,
}


def read_with_pyhanko(data: bytes) -> tuple[object, int]:
    stream = io.BytesIO(data)
    value = pdf_hex._PYHANKO_READER(stream)
    return value, stream.tell()


def read_fast(data: bytes) -> tuple[object, int]:
    stream = pdf_hex.FastHexBytesIO(data)
    value = pdf_hex.read_hex_string_from_stream(stream)
    return value, stream.tell()


@pytest.mark.parametrize("name", sorted(CASES))
def test_fast_reader_matches_pyhanko(name):
    expected_value, expected_position = read_with_pyhanko(CASES[name])

    value, position = read_fast(CASES[name])

    assert type(value) is type(expected_value)
    assert value == expected_value
    assert position == expected_position


@pytest.mark.parametrize("name", sorted(INVALID))
def test_fast_reader_raises_like_pyhanko(name):
    with pytest.raises(PdfStreamError):
        read_with_pyhanko(INVALID[name])

    with pytest.raises(PdfStreamError):
        read_fast(INVALID[name])


def test_other_streams_use_pyhanko_reader(monkeypatch):
    calls = []
    pyhanko_reader = pdf_hex._PYHANKO_READER

    def recording_reader(stream):
        calls.append(stream)
        return pyhanko_reader(stream)

    monkeypatch.setattr(pdf_hex, "_PYHANKO_READER", recording_reader)
    stream = io.BytesIO(b"<4142>")

    value = pdf_hex.read_hex_string_from_stream(stream)

    assert value == generic.TextStringObject("AB")
    assert calls == [stream]


def test_install_replaces_pyhanko_function():
    pdf_hex.install()

    assert generic.read_hex_string_from_stream is pdf_hex.read_hex_string_from_stream


def test_reader_parses_hex_in_dictionary():
    writer = PdfFileWriter()
    contents = generic.ByteStringObject(b"\x00\xff" * 5000)
    reference = writer.add_object(
        generic.DictionaryObject({generic.NameObject("/Contents"): contents})
    )
    output = io.BytesIO()
    writer.write(output)
    pdf_hex.install()

    reader = PdfFileReader(pdf_hex.FastHexBytesIO(output.getvalue()))
    parsed = reader.get_object(generic.Reference(reference.idnum, reference.generation))

    assert parsed["/Contents"] == contents
