"""SlotSet keeps committed slots compact and exact."""

from __future__ import annotations

import random

from gym_operator.storage.slots import SlotSet


def test_out_of_order_adds_merge_into_runs() -> None:
    slots = SlotSet()
    order = list(range(1000))
    random.Random(7).shuffle(order)
    for i in order[:600]:
        slots.add(i)
    assert len(slots) == 600
    assert all((i in slots) == (i in set(order[:600])) for i in range(1000))
    for i in order[600:]:
        slots.add(i)
    assert slots.intervals() == [(0, 1000)]


def test_ranges_and_roundtrip() -> None:
    slots = SlotSet([(10, 20), (0, 5)])
    slots.add_range(5, 10)
    slots.add_range(30, 31)
    assert slots.intervals() == [(0, 20), (30, 31)]
    assert SlotSet(slots.intervals()) == slots
    assert 20 not in slots and 30 in slots
