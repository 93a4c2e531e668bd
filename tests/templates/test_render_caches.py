"""Work reused between renders gives the bytes of a render from scratch."""

from __future__ import annotations

import random

import pytest
import qrcode
from qrcode.util import MODE_ALPHA_NUM, QRData

from templates import embedding, qr, render_license
from tests.templates.conftest import make_face

ALPHANUMERIC = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:"


def _clear_render_caches() -> None:
    embedding.subset_parts.cache_clear()
    embedding.compressed_to_unicode.cache_clear()
    qr.qr_matrix.cache_clear()
    qr._layout.cache_clear()


def _render(catalogue, record) -> bytes:
    template = catalogue.get(record["license_type"])
    return render_license(template, record, make_face(record)).pdf


def test_warm_render_matches_cold_render(catalogue, sample_by_type):
    records = list(sample_by_type.values())
    _clear_render_caches()
    cold = [_render(catalogue, record) for record in records]

    # Each record again, after the others filled the caches.
    warm = [_render(catalogue, record) for record in reversed(records)]

    assert list(reversed(warm)) == cold


def test_cached_subset_reused():
    _clear_render_caches()
    font = embedding.fontset.SERIF
    order = tuple(embedding.subsetter(font).closure([10, 20, 30]))

    first = embedding.subset_parts(font, order)
    second = embedding.subset_parts(font, order)

    assert second is first
    assert first.program_length > 0


@pytest.mark.parametrize("version", range(1, 16))
def test_qr_matrix_matches_qrcode(version):
    # Random lengths within the capacity of the version, at level M.
    rng = random.Random(version)
    lengths = [
        length for length in range(1, 700) if qr.version_for_length(length) == version
    ]
    for length in rng.sample(lengths, min(5, len(lengths))):
        text = "".join(rng.choice(ALPHANUMERIC) for _ in range(length))
        code = qrcode.QRCode(
            version=version,
            error_correction=qrcode.constants.ERROR_CORRECT_M,
            border=0,
            mask_pattern=qr.MASK_PATTERN,
        )
        code.add_data(QRData(text, mode=MODE_ALPHA_NUM))
        code.make(fit=False)

        assert qr.qr_matrix(text) == tuple(tuple(row) for row in code.get_matrix())
