"""Histogram images as PNG, drawn with zlib only (no plotting library in the builder image).

A bar chart with axes and numeric tick labels (a 3x5 pixel font, scaled). The exact counts go in
the dataset card beside the image, so the picture only has to show the shape.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterable

WIDTH, HEIGHT = 640, 320
MARGIN_LEFT, MARGIN_BOTTOM, MARGIN_TOP, MARGIN_RIGHT = 70, 40, 20, 20
SCALE = 3
BACKGROUND = (255, 255, 255)
AXIS = (40, 40, 40)
BAR = (66, 120, 200)

# 3x5 glyphs, rows top to bottom, 3 bits per row (MSB left).
_GLYPHS: dict[str, tuple[int, ...]] = {
    "0": (7, 5, 5, 5, 7),
    "1": (2, 6, 2, 2, 7),
    "2": (7, 1, 7, 4, 7),
    "3": (7, 1, 7, 1, 7),
    "4": (5, 5, 7, 1, 1),
    "5": (7, 4, 7, 1, 7),
    "6": (7, 4, 7, 5, 7),
    "7": (7, 1, 1, 1, 1),
    "8": (7, 5, 7, 5, 7),
    "9": (7, 5, 7, 1, 7),
    ".": (0, 0, 0, 0, 2),
    "-": (0, 0, 7, 0, 0),
    "e": (0, 7, 7, 4, 7),
    "+": (0, 2, 7, 2, 0),
}


class Canvas:
    """An RGB pixel buffer."""

    def __init__(self, width: int, height: int) -> None:
        self.width, self.height = width, height
        self.pixels = bytearray(bytes(BACKGROUND) * (width * height))

    def rect(self, x0: int, y0: int, x1: int, y1: int, color: tuple[int, int, int]) -> None:
        """Fill [x0, x1) x [y0, y1), clipped."""
        x0, x1 = max(0, x0), min(self.width, x1)
        y0, y1 = max(0, y0), min(self.height, y1)
        if x0 >= x1:
            return
        line = bytes(color) * (x1 - x0)
        for y in range(y0, y1):
            start = (y * self.width + x0) * 3
            self.pixels[start : start + len(line)] = line

    def text(self, x: int, y: int, text: str, color: tuple[int, int, int] = AXIS) -> None:
        """Draw text with the 3x5 font, top-left at (x, y)."""
        for char in text:
            for row, bits in enumerate(_GLYPHS.get(char, (0, 0, 0, 0, 0))):
                for col in range(3):
                    if bits & (4 >> col):
                        x0, y0 = x + col * SCALE, y + row * SCALE
                        self.rect(x0, y0, x0 + SCALE, y0 + SCALE, color)
            x += 4 * SCALE

    def png(self) -> bytes:
        """Encode as an 8-bit RGB PNG."""
        stride = self.width * 3
        raw = b"".join(
            b"\x00" + bytes(self.pixels[y * stride : (y + 1) * stride]) for y in range(self.height)
        )
        header = struct.pack(">IIBBBBB", self.width, self.height, 8, 2, 0, 0, 0)
        return (
            b"\x89PNG\r\n\x1a\n"
            + _chunk(b"IHDR", header)
            + _chunk(b"IDAT", zlib.compress(raw, 9))
            + _chunk(b"IEND", b"")
        )


def _chunk(kind: bytes, data: bytes) -> bytes:
    crc = zlib.crc32(kind + data) & 0xFFFFFFFF
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)


def _label(value: float) -> str:
    return f"{value:g}" if abs(value) < 1e5 else f"{value:.1e}"


def histogram_png(counts: list[int], low: float, high: float) -> bytes:
    """A bar per bin over [low, high]; y axis from 0 to the largest count."""
    canvas = Canvas(WIDTH, HEIGHT)
    plot_w = WIDTH - MARGIN_LEFT - MARGIN_RIGHT
    plot_h = HEIGHT - MARGIN_TOP - MARGIN_BOTTOM
    top = max(counts) if counts and max(counts) > 0 else 1
    bins = max(len(counts), 1)
    for i, count in enumerate(counts):
        x0 = MARGIN_LEFT + i * plot_w // bins
        x1 = MARGIN_LEFT + (i + 1) * plot_w // bins - 1
        height = round(count / top * plot_h)
        canvas.rect(x0, MARGIN_TOP + plot_h - height, x1, MARGIN_TOP + plot_h, BAR)
    canvas.rect(MARGIN_LEFT - 2, MARGIN_TOP, MARGIN_LEFT, MARGIN_TOP + plot_h + 2, AXIS)
    canvas.rect(
        MARGIN_LEFT - 2, MARGIN_TOP + plot_h, WIDTH - MARGIN_RIGHT, MARGIN_TOP + plot_h + 2, AXIS
    )
    baseline = MARGIN_TOP + plot_h + 8
    canvas.text(MARGIN_LEFT - 6, baseline, _label(low))
    high_text = _label(high)
    canvas.text(WIDTH - MARGIN_RIGHT - len(high_text) * 4 * SCALE, baseline, high_text)
    canvas.text(4, MARGIN_TOP, str(top))
    canvas.text(MARGIN_LEFT - 20, MARGIN_TOP + plot_h - 15, "0")
    return canvas.png()


def bin_counts(values: Iterable[float], low: float, high: float, bins: int) -> list[int]:
    """Counts of values in `bins` equal bins over [low, high] (high itself in the last bin)."""
    counts = [0] * bins
    width = (high - low) / bins or 1.0
    for value in values:
        index = int((value - low) / width)
        counts[min(max(index, 0), bins - 1)] += 1
    return counts
