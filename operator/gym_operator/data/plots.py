"""Charts as PNG or SVG bytes, drawn with matplotlib (Agg, object API: no pyplot global state).

Every chart has a title, labelled axes and its counts written on the bars, so it reads at a
glance; the dataset card and the viewer draw theirs here.
"""

from __future__ import annotations

import io
import threading
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from matplotlib.figure import Figure

BAR = "#4278c8"
SIZE = (7.0, 3.4)
DPI = 100
_SAVING = threading.Lock()  # rc_context changes global settings: one save at a time


def bin_counts(values: Iterable[float], low: float, high: float, bins: int) -> list[int]:
    """Counts of values in `bins` equal bins over [low, high] (high itself in the last bin)."""
    counts = [0] * bins
    width = (high - low) / bins or 1.0
    for value in values:
        index = int((value - low) / width)
        counts[min(max(index, 0), bins - 1)] += 1
    return counts


def _figure(title: str, xlabel: str, ylabel: str) -> tuple[Figure, Any]:
    from matplotlib.backends.backend_agg import FigureCanvasAgg  # imported on first chart
    from matplotlib.figure import Figure

    fig = Figure(figsize=SIZE, dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.spines[["top", "right"]].set_visible(False)
    return fig, ax


def _encode(fig: Figure, fmt: str) -> bytes:
    import matplotlib

    sink = io.BytesIO()
    # SVG keeps its text as text (searchable, selectable); PNG carries no timestamp.
    with _SAVING, matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": "gymops"}):
        fig.savefig(
            sink, format=fmt, metadata={"Software": None} if fmt == "png" else {"Date": None}
        )
    return sink.getvalue()


def _label_bars(ax: Any, bars: Any, counts: Sequence[float], text: Sequence[str]) -> None:
    top = max(counts, default=0)
    ax.set_ylim(0, top * 1.15 if top > 0 else 1)
    ax.bar_label(
        bars, labels=[t if c else "" for c, t in zip(counts, text, strict=True)], fontsize=8
    )


def histogram(
    counts: Sequence[int],
    low: float,
    high: float,
    *,
    title: str,
    xlabel: str,
    ylabel: str = "count",
    fmt: str = "png",
) -> bytes:
    """Bars of equal-width bins over [low, high], each labelled with its count."""
    fig, ax = _figure(title, xlabel, ylabel)
    bins = max(len(counts), 1)
    width = (high - low) / bins or 1.0
    lefts = [low + i * width for i in range(len(counts))]
    bars = ax.bar(lefts, counts, width=width * 0.92, align="edge", color=BAR)
    _label_bars(ax, bars, counts, [str(c) for c in counts])
    ax.set_xlim(low, low + width * bins)
    return _encode(fig, fmt)


def bar_chart(
    labels: Sequence[str],
    values: Sequence[float],
    *,
    title: str,
    xlabel: str,
    ylabel: str,
    value_text: Sequence[str] | None = None,
    fmt: str = "png",
) -> bytes:
    """One labelled bar per category (categories on the x axis)."""
    fig, ax = _figure(title, xlabel, ylabel)
    bars = ax.bar(range(len(values)), values, color=BAR)
    ax.set_xticks(range(len(labels)), labels, rotation=30 if len(labels) > 6 else 0, ha="right")
    _label_bars(ax, bars, values, value_text or [f"{v:g}" for v in values])
    return _encode(fig, fmt)


def line_chart(
    xs: Sequence[float],
    ys: Sequence[float],
    *,
    title: str,
    xlabel: str,
    ylabel: str,
    fmt: str = "png",
) -> bytes:
    """A line with markers, y from zero."""
    fig, ax = _figure(title, xlabel, ylabel)
    ax.plot(xs, ys, marker="o", markersize=3, color=BAR)
    ax.set_ylim(bottom=0)
    ax.grid(axis="y", alpha=0.3)
    return _encode(fig, fmt)
