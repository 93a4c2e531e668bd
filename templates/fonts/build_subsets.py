"""Rebuild the subset fonts shipped in this directory from Debian font packages.

Run once after a font package update::

    python templates/fonts/build_subsets.py

Inputs are the files installed by fonts-arphic-uming and fonts-hanazono. The
subsets keep TrueType outlines and drop hinting, which PDF viewers ignore.
"""

from __future__ import annotations

import sys
from pathlib import Path

from fontTools import subset
from fontTools.ttLib import TTCollection, TTFont

HERE = Path(__file__).resolve().parent
SYSTEM = Path("/usr/share/fonts/truetype")
MAIN_FONT = SYSTEM / "wqy/wqy-microhei.ttc"
NOTICE_PREFIX = "Modified 2026-12-04 by templates/fonts/build_subsets.py (fontTools)"


def gb2312_code_points() -> set[int]:
    """Return the code points of every character in GB 2312."""
    points = set(range(0x20, 0x7F))
    for high in range(0xA1, 0xF8):
        for low in range(0xA1, 0xFF):
            try:
                char = bytes((high, low)).decode("gb2312")
            except UnicodeDecodeError:
                continue
            points.add(ord(char))
    return points


def bmp_han_code_points() -> set[int]:
    """Return the BMP Han blocks: radicals, strokes, ext A, URO, compatibility."""
    blocks = [
        (0x2E80, 0x2FDF),
        (0x3000, 0x303F),
        (0x31C0, 0x31EF),
        (0x3400, 0x4DBF),
        (0x4E00, 0x9FFF),
        (0xF900, 0xFAFF),
    ]
    return {point for start, end in blocks for point in range(start, end + 1)}


def write_subset(font: TTFont, points: set[int], target: Path, notice: str) -> None:
    """Subset ``font`` to ``points`` and record ``notice`` in its name table.

    The Arphic Public License requires a notice in each modified file saying
    how and when it was changed; name ID 10 (description) carries it.
    """
    options = subset.Options()
    options.hinting = False
    options.layout_features = ["*"]
    options.name_IDs = ["*"]
    options.notdef_outline = True
    subsetter = subset.Subsetter(options)
    subsetter.populate(unicodes=sorted(points))
    subsetter.subset(font)
    font["name"].setName(notice, 10, 3, 1, 0x409)
    font.save(target)
    print(f"{target.name}: {len(font.getBestCmap())} characters", file=sys.stderr)


def main() -> None:
    main_cmap = set(TTCollection(MAIN_FONT).fonts[0].getBestCmap())

    uming = TTCollection(SYSTEM / "arphic/uming.ttc").fonts[0]
    write_subset(
        uming,
        gb2312_code_points(),
        HERE / "UMingCN-GB2312.ttf",
        f"{NOTICE_PREFIX}: face 0 of uming.ttc subset to GB 2312 and ASCII.",
    )

    hana_a = TTFont(SYSTEM / "hanazono/HanaMinA.ttf")
    write_subset(
        hana_a,
        bmp_han_code_points() - main_cmap,
        HERE / "HanaMinA-Fallback.ttf",
        f"{NOTICE_PREFIX}: subset to BMP Han characters missing from WenQuanYi "
        "Micro Hei.",
    )

    hana_b = TTFont(SYSTEM / "hanazono/HanaMinB.ttf")
    ext_b = set(range(0x20000, 0x2A6E0)) | set(range(0x2F800, 0x2FA20))
    write_subset(
        hana_b,
        ext_b,
        HERE / "HanaMinB-ExtB.ttf",
        f"{NOTICE_PREFIX}: subset to CJK Extension B and Compatibility Supplement.",
    )


if __name__ == "__main__":
    main()
