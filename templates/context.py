"""Inputs of a render besides the record, and its result."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from reportlab.pdfgen.canvas import Canvas

from templates.page import Box


@runtime_checkable
class SealArtwork(Protocol):
    """Vector artwork of a seal, drawn centred on a point of the canvas."""

    def draw(
        self, canvas: Canvas, center_x: float, center_y: float, diameter: float
    ) -> None: ...


@dataclass(frozen=True)
class FaceContext:
    """Face content besides the record: identity, QR text, authority and seal."""

    elicense_id: str
    version: int
    qr_text: str
    authority_name: str
    authority_code: str
    authority_region: str
    issued_on: dt.date
    seal: SealArtwork | None
    copy_label: str = "副本"

    @property
    def bilingual(self) -> bool:
        """Inner Mongolia authorities (region codes 15…) print Mongolian too."""
        return self.authority_region.startswith("15")


@dataclass(frozen=True)
class RenderedLicense:
    """A rendered license and where its seal and QR code sit."""

    pdf: bytes
    pages: int
    seal_box: tuple[int, float, float, float, float]
    qr_box: tuple[int, float, float, float, float]
    text_boxes: tuple[Box, ...] = ()
