"""Typing JSONL files by their own rows: exemplar rows first, and files that lack a list get one.

`datasets` types a JSON-lines file from its first block (10 MB), and loaders such as verl's
RLHFDataset type every file on its own before concatenating them. A list that is empty in every
row there (`tool_calls` of messages, when no row of the block calls a tool) is typed as a list
of nulls, which later rows with tool calls cannot be cast to. So:

- within a file, for every list of the schema, the first row that fills it is moved to the top
  (`exemplars_first`);
- after the last file is written, a file that fills fewer lists than the split as a whole gets
  a row that fills the missing list from a file that has two or more of them, in exchange for
  one of its own rows (`Repair`); counts per file stay the same, no row is added or lost. A list
  that fewer rows fill than there are files cannot reach every file; `Repair.unrepaired` names
  those files (load such a split in one `load_dataset` call over all its files, or use parquet).
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from dataclasses import dataclass, field

import pyarrow as pa

from gym_operator.data import schemas
from gym_operator.storage.store import Storage
from gym_operator.storage.uri import StorageURI

log = logging.getLogger(__name__)

Paths = frozenset[str]


def exemplars_first(lines: list[bytes], paths: list[Paths]) -> tuple[list[bytes], list[Paths]]:
    """The lines with, for each list path, the first line that fills it moved to the top."""
    seen: set[str] = set()
    top, rest = [], []
    for i, filled in enumerate(paths):
        if filled - seen:
            seen |= filled
            top.append(i)
        else:
            rest.append(i)
    order = top + rest
    return [lines[i] for i in order], [paths[i] for i in order]


@dataclass
class _File:
    lines: list[bytes]
    paths: list[Paths]

    def counts(self) -> Counter[str]:
        return Counter(p for filled in self.paths for p in filled)


def _spare(file: _File, counts: Counter[str], want: str | None) -> int | None:
    """A line (filling `want`, if given) whose every list another line of the file also fills.

    The last such line, so that the file's first rows (its exemplars) stay.
    """
    for i in range(len(file.paths) - 1, -1, -1):
        filled = file.paths[i]
        if want is not None and want not in filled:
            continue
        if all(counts[p] >= 2 for p in filled):
            return i
    return None


@dataclass
class Repair:
    """Gives every file of a split the lists the split fills (see the module docstring)."""

    storage: Storage
    schema: pa.Schema
    files: dict[int, StorageURI]
    counts: dict[int, Counter[str]]
    unrepaired: list[tuple[str, str]] = field(default_factory=list)

    def run(self) -> None:
        """Exchange rows until every file fills every list the split fills (where possible)."""
        wanted = {p for c in self.counts.values() for p, n in c.items() if n}
        for number in sorted(self.files):
            missing = sorted(wanted - {p for p, n in self.counts[number].items() if n})
            if missing:
                self._repair(number, missing)

    def _load(self, number: int) -> _File:
        lines = self.storage.read_bytes(self.files[number]).splitlines(keepends=True)
        paths = [frozenset(schemas.filled_paths(json.loads(x), self.schema)) for x in lines]
        return _File(lines, paths)

    def _save(self, number: int, file: _File) -> None:
        file.lines, file.paths = exemplars_first(file.lines, file.paths)
        self.storage.write_bytes(self.files[number], b"".join(file.lines))
        self.counts[number] = file.counts()

    def _repair(self, number: int, missing: list[str]) -> None:
        target = self._load(number)
        for path in missing:
            if path in target.counts():
                continue
            if not self._take(number, target, path):
                self.unrepaired.append((str(self.files[number]), path))
                log.warning("%s: no row to spare fills %s", self.files[number], path)
        self._save(number, target)

    def _take(self, number: int, target: _File, path: str) -> bool:
        for donor_number in sorted(self.files):
            if donor_number == number or self.counts[donor_number][path] < 2:
                continue
            donor = self._load(donor_number)
            give = _spare(donor, donor.counts(), path)
            if give is None:
                continue
            line, filled = donor.lines.pop(give), donor.paths.pop(give)
            back = _spare(target, target.counts(), None)
            if back is not None:
                donor.lines.append(target.lines.pop(back))
                donor.paths.append(target.paths.pop(back))
            target.lines.insert(0, line)
            target.paths.insert(0, filled)
            self._save(donor_number, donor)
            return True
        return False
