"""The low watermark over unfinished positions (pure)."""

from __future__ import annotations

import random

import pytest

from syncd.pipeline.watermark import Watermark


def test_empty_has_no_low() -> None:
    w = Watermark()
    assert w.low() is None
    assert w.safe_through(41) == 41


def test_low_is_smallest_unfinished() -> None:
    w = Watermark()
    for p in (5, 3, 9):
        w.add(p)
    assert w.low() == 3
    w.finish(3)
    assert w.low() == 5
    assert w.safe_through(9) == 4


def test_shared_positions_are_counted() -> None:
    w = Watermark()
    w.add(7)
    w.add(7)
    w.finish(7)
    assert w.low() == 7  # one operation of the transaction is still out
    w.finish(7)
    assert w.low() is None


def test_out_of_order_finish_does_not_advance_past_a_gap() -> None:
    w = Watermark()
    for p in range(1, 6):
        w.add(p)
    for p in (2, 3, 5):
        w.finish(p)
    assert w.safe_through(5) == 0
    w.finish(1)
    assert w.safe_through(5) == 3


def test_finishing_unknown_position_raises() -> None:
    with pytest.raises(KeyError):
        Watermark().finish(1)


def test_matches_a_naive_model() -> None:
    rng = random.Random(11)
    w, model = Watermark(), []
    for step in range(2000):
        if model and rng.random() < 0.5:
            p = model.pop(rng.randrange(len(model)))
            w.finish(p)
        else:
            p = rng.randrange(step + 1)
            model.append(p)
            w.add(p)
        assert w.low() == (min(model) if model else None)
        assert len(w) == len(model)
