"""Render the A4 copy (副本) face of a license as PDF.

Page 1 shows, from the top: the holder's code (left), the title and the copy
label (centre), the QR code with its quiet zone and caption (right), the
field rows, the long-text block (经营范围 or similar), and at the bottom right
the issuing authority with the issue date under the seal. A block too long
for page 1 at the smallest allowed size continues on further pages headed
as continuation pages.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Mapping

from templates import fontset, page, sections
from templates.catalogue import LicenseTemplate
from templates.context import FaceContext, RenderedLicense, SealArtwork
from templates.fontset import Face
from templates.page import draw_frame, new_canvas
from templates.painter import Painter

__all__ = ["FaceContext", "RenderedLicense", "SealArtwork", "render_license"]

logger = logging.getLogger(__name__)

CITIZEN_ID_CODE_TYPE = "111"


def render_license(
    template: LicenseTemplate, record: Mapping[str, object], face: FaceContext
) -> RenderedLicense:
    """Render the copy face of ``record`` to PDF.

    The record is validated and every character is checked against the
    shipped fonts before anything is drawn. Raises :class:`InputError` naming
    the field when a value is invalid or has a character no font can draw.
    """
    values = template.validate(record)
    _check_glyphs(template, values, face)
    with fontset.RENDER_LOCK, page.plain_flate_streams():
        return _render(template, values, face)


def _check_glyphs(
    template: LicenseTemplate, values: Mapping[str, object], face: FaceContext
) -> None:
    for name, value in values.items():
        if isinstance(value, str):
            fontset.check_coverage(value, Face.SANS, name)
    fontset.check_coverage(face.authority_name, Face.SANS, "authority_name")
    fontset.check_coverage(template.title, Face.SERIF, "title")


def keywords(
    template: LicenseTemplate, values: Mapping[str, object], face: FaceContext
) -> str:
    """Return the ``key=value`` lines of /Keywords.

    Verifiers read these lines from the signed revision to learn which
    authority the face names when the register is not at hand. A citizen ID
    number (holder code type 111) is personal data and is left out.
    """
    lines = [
        f"elicense_id={face.elicense_id}",
        f"license_type={template.license_type}",
    ]
    if template.holder_code_type != CITIZEN_ID_CODE_TYPE:
        lines.append(f"holder_code={values.get(template.holder_code_field, '')}")
    lines += [
        f"authority_code={face.authority_code}",
        f"authority_name={face.authority_name}",
    ]
    return "\n".join(lines)


def _render(
    template: LicenseTemplate, values: Mapping[str, object], face: FaceContext
) -> RenderedLicense:
    buffer = io.BytesIO()
    canvas = new_canvas(buffer, face.issued_on)
    canvas.setTitle(f"{template.title}（{face.copy_label}）")
    canvas.setAuthor(face.authority_name)
    canvas.setSubject(face.elicense_id)
    canvas.setCreator("elicense templates")
    canvas.setKeywords(keywords(template, values, face))

    painter = Painter(canvas)
    draw_frame(canvas)
    qr_box = sections.draw_qr(painter, template, face)
    header_bottom = sections.draw_header(painter, template, values, face, qr_box)
    rows_bottom = sections.draw_rows(painter, template, values, face, header_bottom)
    seal_box = sections.draw_authority(painter, template, face)
    remaining = sections.draw_block_page1(
        painter, template, values, face, rows_bottom, seal_box
    )
    sections.draw_footer(painter, template, face)

    while remaining:
        remaining = sections.draw_continuation(
            painter, template, values, face, remaining
        )
    canvas.showPage()
    canvas.save()

    pages = painter.page + 1
    logger.debug(
        "rendered %s version %d: %d pages", face.elicense_id, face.version, pages
    )
    return RenderedLicense(
        buffer.getvalue(),
        pages,
        seal_box.as_tuple(),
        qr_box.as_tuple(),
        tuple(painter.boxes),
    )
