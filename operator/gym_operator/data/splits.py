"""Train/validation split by prompt: seeded, reproducible, streaming, no prompt in both splits.

A task's split is a pure function of (seed, rendered prompt): `rows.prompt_key` renders the
prompt as the chat messages the model sees, normalised (a string input, content parts and an
`instructions` field give the same messages), plus the tools offered; verifier fields are not part
of it, so tasks that differ only in them stay together. The first 8 bytes of a SHA-256 of that
key as a fraction in [0, 1) below `validationFraction` means validation. No global shuffle or task
list is needed, the same prompt from any source or shard always lands in the same split, and the
validation share is `validationFraction` in expectation (binomial spread).
"""

from __future__ import annotations

import hashlib

TRAIN = "train"
VALIDATION = "validation"
SPLITS = (TRAIN, VALIDATION)


def split_of(prompt_key: str, seed: int, validation_fraction: float) -> str:
    """The split of a task identified by its canonical prompt text."""
    if validation_fraction <= 0:
        return TRAIN
    digest = hashlib.sha256(f"{seed}\x00{prompt_key}".encode()).digest()
    point = int.from_bytes(digest[:8], "big") / 2.0**64
    return VALIDATION if point < validation_fraction else TRAIN
