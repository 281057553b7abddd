"""Text search over the raw rows: which rows contain a string (case-insensitive), cached.

A search reads every part once (the index holds no text), so its answer is kept per query and
extended with the parts committed after it ran.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from typing import Any

import numpy as np

from gym_operator.viewer.job import JobView

KEPT_SEARCHES = 8


class TextSearch:
    """Row masks of recent searches, per view and query."""

    def __init__(self) -> None:
        self._found: OrderedDict[tuple[int, int, str], list[Any]] = OrderedDict()
        self._lock = threading.Lock()

    def matches(self, view: JobView, text: str, rows: int) -> Any:
        """A boolean mask over the first `rows` rows of the view's index."""
        key = (id(view), view.generation, text.lower())
        needles = {
            text.lower().encode(),
            json.dumps(text.lower(), ensure_ascii=False)[1:-1].encode(),
        }
        with self._lock:  # one search at a time: each reads every part
            masks = self._found.pop(key, [])
            self._found[key] = masks
            while len(self._found) > KEPT_SEARCHES:
                self._found.popitem(last=False)
            scanned = sum(len(m) for m in masks)
            while scanned < rows:
                lines = view.read_part(len(masks))
                masks.append(np.fromiter((_has(line, needles) for line in lines), bool, len(lines)))
                scanned += len(lines)
            return np.concatenate(masks)[:rows] if masks else np.zeros(0, bool)


def _has(line: bytes, needles: set[bytes]) -> bool:
    low = line.lower()
    return any(n in low for n in needles)
