"""License templates (data), fonts, rendering and Mongolian shaping.

Public interface::

    catalogue = load_catalogue()
    template = catalogue.get("business_license")
    record = template.validate(raw)
    rendered = render_license(template, record, FaceContext(...))
"""

from templates.catalogue import Catalogue, LicenseTemplate, load_catalogue
from templates.face import FaceContext, RenderedLicense, SealArtwork, render_license
from templates.preview import preview_png
from templates.schema import FieldSpec, FieldType

__all__ = [
    "Catalogue",
    "FaceContext",
    "FieldSpec",
    "FieldType",
    "LicenseTemplate",
    "RenderedLicense",
    "SealArtwork",
    "load_catalogue",
    "preview_png",
    "render_license",
]
