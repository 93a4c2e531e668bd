"""The parts of the copy face: header, QR code, field rows, long-text
block, issuing authority with seal, footer and continuation pages.

Every part draws through a :class:`Painter`, which records the box of each
line so tests can check that nothing overlaps.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

from common.errors import InputError
from templates import embedding, mongolian, qr, textrun
from templates.catalogue import TERM_ITEM, LicenseTemplate
from templates.context import FaceContext
from templates.fontset import Face
from templates.layout import BlockFit, fit_block, paragraph_text
from templates.page import (
    CONTENT_BOTTOM,
    CONTENT_LEFT,
    CONTENT_RIGHT,
    CONTENT_TOP,
    PAGE_WIDTH,
    Box,
    draw_frame,
)
from templates.painter import (
    Painter,
    cached_line,
    column_width,
    fit_line,
    mongolian_label,
    union,
)
from templates.schema import FieldType

QR_SIZE = 112.0  # points, quiet zone included
SEAL_DIAMETER = 108.0  # 38 mm
SEAL_CENTER_X = CONTENT_RIGHT - 100.0
AUTHORITY_BASELINE = 150.0
LABEL_SIZE = 11.0
VALUE_SIZE = 11.0
VALUE_MIN_SIZE = 7.5
VALUE_LEADING = 8.8  # keeps line boxes (1.15 × size high) apart
MAX_VALUE_LINES = 3
MONGOLIAN_SIZE = 8.5
COLUMN_GAP = 16.0
LABEL_GAP = 10.0
BLOCK_SIZES = (11.0, 8.0)  # largest and smallest size of the long-text block
OPEN_ENDED_TEXT = "长期"
SPREAD_LABEL_CHARACTERS = 4
ROW_HEIGHT = 30.0
# Extra row height for a Mongolian label set as a line above the Chinese one.
HORIZONTAL_LABEL_RISE = 10.0
# Maximum length of a vertical Mongolian label in points. A longer one is
# set as a line above the Chinese label.
MAX_COLUMN_LENGTH = 60.0
COLUMN_MARGIN = 3.0
TITLE_MONGOLIAN_SIZE = 11.0
AUTHORITY_MONGOLIAN = "authority_mn"


def face_terms(template: LicenseTemplate) -> list[str]:
    """Return the fixed Chinese texts of a face that carry a Mongolian form."""
    face = template.face
    items = [item for row in face.rows for item in row]
    if face.block:
        items.append(face.block)
    labels = [_label_of(template, item) for item in items]
    terms = [template.title, face.holder_code_label, *labels, face.authority_label]
    return list(dict.fromkeys(terms))


def format_date(day: object) -> str:
    if not isinstance(day, dt.date):
        return OPEN_ENDED_TEXT
    return f"{day.year}年{day.month:02d}月{day.day:02d}日"


def draw_qr(painter: Painter, template: LicenseTemplate, face: FaceContext) -> Box:
    matrix = qr.qr_matrix(face.qr_text)
    x0, y1 = CONTENT_RIGHT - QR_SIZE, CONTENT_TOP
    qr.draw_qr(painter.canvas, matrix, x0, y1 - QR_SIZE, QR_SIZE)
    box = Box(0, "qr", x0, y1 - QR_SIZE, CONTENT_RIGHT, y1)
    caption = template.face.qr_caption
    if caption:
        lines = _wrap_small(caption, 6.5, QR_SIZE)
        baseline = box.y0 - 9.0
        for text in lines:
            line = cached_line(text, Face.SANS, 6.5, "qr_caption")
            painter.centered(line, (x0 + CONTENT_RIGHT) / 2, baseline, "qr_caption")
            baseline -= 8.5
    return box


def _wrap_small(text: str, size: float, width: float) -> list[str]:
    return textrun.wrap(text, Face.SANS, size, width, "caption")


def draw_header(
    painter: Painter,
    template: LicenseTemplate,
    values: Mapping[str, object],
    face: FaceContext,
    qr_box: Box,
) -> float:
    """Draw holder code (left), title and copy label (centre); return the bottom."""
    code_box = _draw_holder_code(painter, template, values, face)
    limit = min(PAGE_WIDTH / 2 - code_box.x1, qr_box.x0 - PAGE_WIDTH / 2) - 10.0
    title_size = 34.0
    title = cached_line(
        template.title, Face.SERIF, title_size, "title", title_size * 0.35
    )
    while title.width > 2 * limit and title_size > 14:
        title_size -= 1.0
        title = cached_line(
            template.title, Face.SERIF, title_size, "title", title_size * 0.2
        )
    baseline = CONTENT_TOP - 66.0
    title_box = painter.centered(title, PAGE_WIDTH / 2, baseline, "title")
    copy = cached_line(f"（{face.copy_label}）", Face.SERIF, 14.0, "copy_label", 6.0)
    copy_box = painter.centered(copy, PAGE_WIDTH / 2, baseline - 26.0, "copy_label")
    bottom = min(baseline - 32.0, qr_box.y0 - 26.0)
    if face.bilingual:
        area = (code_box.x1, bottom, title_box, limit)
        _draw_title_mongolian(painter, template, area, min(title_box.x0, copy_box.x0))
    return bottom


def _draw_title_mongolian(
    painter: Painter,
    template: LicenseTemplate,
    area: tuple[float, float, Box, float],
    left_of_text: float,
) -> None:
    """Draw the Mongolian title first: a column left of the Chinese title
    when one fits between the holder code and the title, else a line above."""
    code_right, bottom, title_box, limit = area
    text = mongolian.term_mn(template.title, template.mongolian_terms)
    if text is None:
        return
    if template.face.mongolian_direction == "vertical":
        height = title_box.y1 - bottom - COLUMN_MARGIN
        line = fit_line(
            text, Face.MONGOLIAN, TITLE_MONGOLIAN_SIZE, height, "title", 7.0
        )
        x = left_of_text - COLUMN_MARGIN - column_width(line.size)
        if line.width <= height and x >= code_right + COLUMN_MARGIN:
            painter.column(line, x, title_box.y1, "title_mn")
            return
    line = fit_line(text, Face.MONGOLIAN, TITLE_MONGOLIAN_SIZE, 2 * limit, "title", 5.0)
    painter.centered(line, PAGE_WIDTH / 2, title_box.y1 + 4.0, "title_mn")


def _draw_holder_code(
    painter: Painter,
    template: LicenseTemplate,
    values: Mapping[str, object],
    face: FaceContext,
) -> Box:
    label_text = template.face.holder_code_label
    baseline = CONTENT_TOP - 12.0
    boxes = []
    if face.bilingual:
        label_mn = mongolian_label(
            label_text, template.mongolian_terms, MONGOLIAN_SIZE, 150.0
        )
        if label_mn is not None:
            boxes.append(
                painter.line(label_mn, CONTENT_LEFT, baseline, "holder_code_mn")
            )
            baseline -= 14.0
    label = cached_line(label_text, Face.SANS, 10.0, "holder_code_label")
    boxes.append(painter.line(label, CONTENT_LEFT, baseline, "holder_code_label"))
    code = str(values[template.holder_code_field])
    value = cached_line(code, Face.SANS, 12.0, template.holder_code_field)
    boxes.append(painter.line(value, CONTENT_LEFT, baseline - 17.0, "holder_code"))
    return union("holder_code", boxes)


def _columns() -> tuple[tuple[float, float], tuple[float, float]]:
    middle = (CONTENT_LEFT + CONTENT_RIGHT) / 2
    return (CONTENT_LEFT, middle - COLUMN_GAP / 2), (
        middle + COLUMN_GAP / 2,
        CONTENT_RIGHT,
    )


def _label_of(template: LicenseTemplate, item: str) -> str:
    if item == TERM_ITEM:
        return template.face.term_label or ""
    return template.field_spec(item).label


def _value_of(
    template: LicenseTemplate, values: Mapping[str, object], item: str
) -> str:
    if item == TERM_ITEM:
        start = format_date(values.get(template.valid_from_field))
        end_field = template.valid_to_field
        end = format_date(values.get(end_field)) if end_field else OPEN_ENDED_TEXT
        return f"{start} 至 {end}"
    value = values.get(item)
    if value is None:
        return "——"
    if template.field_spec(item).type is FieldType.DATE:
        return format_date(value)
    return str(value)


def _label_width(template: LicenseTemplate, items: list[str]) -> float:
    """Width of the label column: the widest label, at least four characters."""
    widths = [
        cached_line(_label_of(template, item), Face.SANS, LABEL_SIZE, "label").width
        for item in items
    ]
    return max([SPREAD_LABEL_CHARACTERS * LABEL_SIZE, *widths])


def draw_rows(
    painter: Painter,
    template: LicenseTemplate,
    values: Mapping[str, object],
    face: FaceContext,
    top: float,
) -> float:
    """Draw the field rows below ``top``; return the bottom of the last row."""
    label_width = _label_width(template, [i for row in template.face.rows for i in row])
    columns = _columns()
    for row in template.face.rows:
        row_height = _row_height(template, face, row)
        baseline = top - row_height / 2 - 4.0
        for column, item in enumerate(row):
            x0, x1 = columns[column]
            if len(row) == 1:
                x1 = CONTENT_RIGHT
            _draw_item(
                painter, template, values, face, item, (x0, x1), baseline, label_width
            )
        top -= row_height
    return top


def _row_height(template: LicenseTemplate, face: FaceContext, row: tuple) -> float:
    """Return 30 pt, or more for Mongolian labels: a column as long as the
    longest vertical label, or a line above the Chinese labels."""
    table = _mongolian_table(template, face)
    if table is None:
        return ROW_HEIGHT
    height = ROW_HEIGHT
    for item in row:
        line = mongolian_label(_label_of(template, item), table, MONGOLIAN_SIZE, 1e6)
        if line is None:
            continue
        if _vertical_fits(template, line):
            height = max(height, line.width + 2 * COLUMN_MARGIN)
        else:
            height = max(height, ROW_HEIGHT + HORIZONTAL_LABEL_RISE)
    return height


def _vertical_fits(template: LicenseTemplate, line: textrun.Line) -> bool:
    vertical = template.face.mongolian_direction == "vertical"
    return vertical and line.width <= MAX_COLUMN_LENGTH


def _draw_item(
    painter: Painter,
    template: LicenseTemplate,
    values: Mapping[str, object],
    face: FaceContext,
    item: str,
    span: tuple[float, float],
    baseline: float,
    label_width: float,
) -> None:
    x0, x1 = span
    table = _mongolian_table(template, face)
    _draw_label(
        painter,
        _label_of(template, item),
        template,
        table,
        (x0, baseline, label_width),
        item,
    )
    value_x = x0 + _label_indent(template, table) + label_width + LABEL_GAP
    text = _value_of(template, values, item)
    value = fit_line(text, Face.SANS, VALUE_SIZE, x1 - value_x, item, VALUE_MIN_SIZE)
    if value.width <= x1 - value_x:
        painter.line(value, value_x, baseline, f"value:{item}")
        return
    # Up to three lines at the smallest size, centred on the label's baseline;
    # the row height leaves room for them.
    parts = textrun.wrap(text, Face.SANS, VALUE_MIN_SIZE, x1 - value_x, item)
    _require_fit(item, len(parts), MAX_VALUE_LINES)
    lines = [cached_line(part, Face.SANS, VALUE_MIN_SIZE, item) for part in parts]
    first = baseline + (len(lines) - 1) * VALUE_LEADING / 2
    baselines = [first - number * VALUE_LEADING for number in range(len(lines))]
    painter.paragraph(lines, value_x, baselines, f"value:{item}")


def _require_fit(item: str, needed: int, available: int) -> None:
    if needed > available:
        raise InputError(
            f"字段 {item} 的内容过长，版面放不下（需要 {needed} 行，最多 {available} 行）",
            field=item,
            value=needed,
            fix="请缩短该字段，或调整模板的 max_length",
        )


def _mongolian_table(template: LicenseTemplate, face: FaceContext) -> str | None:
    """Return the term table for Mongolian text, or None for Chinese only."""
    return template.mongolian_terms if face.bilingual else None


def _label_indent(template: LicenseTemplate, table: str | None) -> float:
    """Return the room left of the Chinese labels for vertical Mongolian ones."""
    if table is None or template.face.mongolian_direction != "vertical":
        return 0.0
    for chinese in face_terms(template):
        line = mongolian_label(chinese, table, MONGOLIAN_SIZE, 1e6)
        if line is not None and _vertical_fits(template, line):
            return column_width(MONGOLIAN_SIZE) + COLUMN_MARGIN
    return 0.0


def _draw_label(
    painter: Painter,
    text: str,
    template: LicenseTemplate,
    table: str | None,
    place: tuple[float, float, float],
    item: str,
    column_top: float | None = None,
) -> None:
    """Draw a Chinese label with its Mongolian form first.

    The Mongolian form is a column left of the Chinese label when vertical
    setting is chosen and it fits, else a line above. Chinese labels of up
    to four characters are spread over four character widths, as on printed
    licenses (名　　称); longer labels keep their spacing.
    """
    x, baseline, width = place
    indent = _label_indent(template, table)
    label = cached_line(text, Face.SANS, LABEL_SIZE, "label")
    spread = SPREAD_LABEL_CHARACTERS * LABEL_SIZE
    if 1 < len(text) <= SPREAD_LABEL_CHARACTERS and label.width < spread:
        spacing = (spread - label.width) / (len(text) - 1)
        label = cached_line(text, Face.SANS, LABEL_SIZE, "label", round(spacing, 3))
    painter.line(label, x + indent, baseline, f"label:{item}")
    if table is None:
        return
    label_mn = mongolian_label(text, table, MONGOLIAN_SIZE, 1e6)
    if label_mn is None:
        return
    if _vertical_fits(template, label_mn):
        top = (
            column_top
            if column_top is not None
            else baseline + 4.0 + label_mn.width / 2
        )
        painter.column(label_mn, x, top, f"label_mn:{item}")
        return
    label_mn = mongolian_label(text, table, MONGOLIAN_SIZE, width + LABEL_GAP)
    painter.line(label_mn, x + indent, baseline + 14.0, f"label_mn:{item}")


def _block_area(painter: Painter, top: float, seal_box: Box) -> tuple[float, float]:
    """Return the top and bottom of the long-text block on page 1."""
    above_seal = [box.y1 for box in painter.boxes if box.name == AUTHORITY_MONGOLIAN]
    return top - 4.0, max([seal_box.y1, *above_seal]) + 8.0


def draw_block_page1(
    painter: Painter,
    template: LicenseTemplate,
    values: Mapping[str, object],
    face: FaceContext,
    top: float,
    seal_box: Box,
) -> str:
    """Draw the long-text block; return the text that did not fit on page 1."""
    item = template.face.block
    if item is None:
        return ""
    text = str(values.get(item) or "")
    label_width = _label_width(template, [i for row in template.face.rows for i in row])
    block_top, block_bottom = _block_area(painter, top, seal_box)
    baseline = block_top - LABEL_SIZE
    table = _mongolian_table(template, face)
    _draw_label(
        painter,
        _label_of(template, item),
        template,
        table,
        (CONTENT_LEFT, baseline, label_width),
        item,
        column_top=block_top,
    )
    x0 = CONTENT_LEFT + _label_indent(template, table) + label_width + LABEL_GAP
    fit = fit_block(
        text, CONTENT_RIGHT - x0, block_top - block_bottom, item, BLOCK_SIZES
    )
    page_lines = fit.lines[: fit.lines_per_box]
    _draw_paragraph(painter, page_lines, fit, x0, block_top, f"block:{item}")
    rest = paragraph_text(fit.lines[fit.lines_per_box :])
    if rest:
        note = cached_line("（续见下页）", Face.SANS, 9.0, "continuation")
        painter.line(note, x0, block_bottom - 12.0, "continuation_note")
    return rest


def _draw_paragraph(
    painter: Painter, texts: list[str], fit: BlockFit, x: float, top: float, name: str
) -> None:
    lines = [textrun.layout_line(text, Face.SANS, fit.size, name) for text in texts]
    baselines = [top - fit.size - number * fit.leading for number in range(len(lines))]
    painter.paragraph(lines, x, baselines, name)


def draw_authority(
    painter: Painter, template: LicenseTemplate, face: FaceContext
) -> Box:
    """Draw authority name and issue date under the seal; return the seal box.

    On a bilingual face the Mongolian name and date stand above the seal, so
    they come first and the seal covers only Chinese text.
    """
    center = SEAL_CENTER_X
    half_width = CONTENT_RIGHT - center
    name = fit_line(
        face.authority_name, Face.SANS, 12.0, 2 * half_width, "authority_name", 8.0
    )
    name_box = painter.centered(name, center, AUTHORITY_BASELINE, "authority")

    date = cached_line(format_date(face.issued_on), Face.SANS, 11.0, "issued_on")
    painter.centered(date, center, AUTHORITY_BASELINE - 22.0, "authority")

    radius = SEAL_DIAMETER / 2
    center_y = (name_box.y0 + name_box.y1) / 2
    label = cached_line(template.face.authority_label, Face.SANS, LABEL_SIZE, "label")
    label_right = min(name_box.x0, center - radius) - 10.0
    painter.line(
        label, label_right - label.width, AUTHORITY_BASELINE, "authority_label"
    )

    if face.bilingual:
        seal_top = center_y + radius
        _draw_authority_mongolian(
            painter, face, template.mongolian_terms, seal_top, 2 * half_width
        )

    # The seal goes last so it lies over the name and date, as on paper.
    if face.seal is not None:
        _draw_seal(painter, face.seal, (center, center_y))
    return Box(
        0,
        "seal",
        center - radius,
        center_y - radius,
        center + radius,
        center_y + radius,
    )


_seal_operators: dict[tuple, tuple[list[str], list]] = {}
MAX_CACHED_SEALS = 64


def _draw_seal(painter: Painter, seal: object, center: tuple[float, float]) -> None:
    """Draw the seal artwork, replaying its operators when drawn before.

    An authority's seal is the same on every license it issues, so the
    operators and glyphs of its first drawing are kept. The caller holds
    the render lock. Unhashable artwork is drawn every time.
    """
    canvas = painter.canvas
    fonts = embedding.document_fonts(canvas)
    try:
        key = (seal, center)
        cached = _seal_operators.get(key)
    except TypeError:
        seal.draw(canvas, *center, SEAL_DIAMETER)
        return
    if cached is None:
        start = len(canvas._code)
        with fonts.recording() as used:
            seal.draw(canvas, *center, SEAL_DIAMETER)
        cached = (canvas._code[start:], used)
        if len(_seal_operators) >= MAX_CACHED_SEALS:
            _seal_operators.pop(next(iter(_seal_operators)))
        _seal_operators[key] = cached
        return
    operators, used = cached
    canvas._code.extend(operators)
    for font, glyphs in used:
        fonts.use(font, glyphs)


def _draw_authority_mongolian(
    painter: Painter, face: FaceContext, table: str, seal_top: float, width: float
) -> None:
    """Draw the Mongolian date just above the seal and the name above it."""
    baseline = seal_top + 4.0
    date_mn = mongolian.date_mn(face.issued_on, table)
    if date_mn is not None:
        line = cached_line(date_mn, Face.MONGOLIAN, 9.0, "issued_on")
        painter.centered(line, SEAL_CENTER_X, baseline, AUTHORITY_MONGOLIAN)
        baseline += 14.0
    name_mn = mongolian.authority_name_mn(face.authority_name, table)
    if name_mn is not None:
        line = fit_line(name_mn, Face.MONGOLIAN, 10.0, width, "authority_name", 6.0)
        painter.centered(line, SEAL_CENTER_X, baseline, AUTHORITY_MONGOLIAN)


def draw_footer(painter: Painter, template: LicenseTemplate, face: FaceContext) -> None:
    if template.face.footer:
        footer = fit_line(
            template.face.footer,
            Face.SANS,
            8.0,
            CONTENT_RIGHT - CONTENT_LEFT,
            "footer",
            6.0,
        )
        painter.centered(footer, PAGE_WIDTH / 2, CONTENT_BOTTOM + 18.0, "footer")
    _draw_identifier(painter, face)


def _draw_identifier(painter: Painter, face: FaceContext) -> None:
    text = f"电子证照标识：{face.elicense_id}  版本：{face.version:03d}"
    line = fit_line(
        text, Face.SANS, 6.5, CONTENT_RIGHT - CONTENT_LEFT, "elicense_id", 5.0
    )
    painter.line(line, CONTENT_LEFT, CONTENT_BOTTOM + 4.0, "elicense_id")


def draw_continuation(
    painter: Painter,
    template: LicenseTemplate,
    values: Mapping[str, object],
    face: FaceContext,
    text: str,
) -> str:
    """Draw one continuation page of the block; return what is still left."""
    painter.next_page()
    draw_frame(painter.canvas)
    _draw_continuation_header(painter, template, values, face)

    item = template.face.block or ""
    label_text = f"{_label_of(template, item)}（续）"
    label = cached_line(label_text, Face.SANS, LABEL_SIZE, "label")
    block_top = CONTENT_TOP - 64.0
    painter.line(label, CONTENT_LEFT, block_top - LABEL_SIZE, f"label:{item}")
    x0 = CONTENT_LEFT + label.width + LABEL_GAP
    height = block_top - (CONTENT_BOTTOM + 30.0)
    fit = fit_block(text, CONTENT_RIGHT - x0, height, item, BLOCK_SIZES)
    page_lines = fit.lines[: fit.lines_per_box]
    _draw_paragraph(painter, page_lines, fit, x0, block_top, f"block:{item}")

    page_text = f"第 {painter.page + 1} 页"
    page_line = cached_line(page_text, Face.SANS, 8.0, "page_number")
    right = CONTENT_RIGHT - page_line.width
    painter.line(page_line, right, CONTENT_BOTTOM + 18.0, "page_number")
    _draw_identifier(painter, face)
    return paragraph_text(fit.lines[fit.lines_per_box :])


def _draw_continuation_header(
    painter: Painter,
    template: LicenseTemplate,
    values: Mapping[str, object],
    face: FaceContext,
) -> None:
    heading_text = f"{template.title}（{face.copy_label}）续页"
    heading = cached_line(heading_text, Face.SERIF, 18.0, "title", 2.0)
    painter.centered(heading, PAGE_WIDTH / 2, CONTENT_TOP - 20.0, "title")
    holder = f"{template.face.holder_code_label}：{values[template.holder_code_field]}"
    holder_line = cached_line(holder, Face.SANS, 10.0, "holder_code")
    painter.line(holder_line, CONTENT_LEFT, CONTENT_TOP - 48.0, "holder_code")
