"""Retry schedules: growth, cap, jitter bounds, determinism."""

from __future__ import annotations

import itertools
import random

import pytest

from syncd.backoff import exponential_backoff, retry_delay, with_jitter


def test_backoff_doubles_then_caps() -> None:
    delays = list(itertools.islice(exponential_backoff(0.5, 5.0), 7))
    assert delays == [0.5, 1.0, 2.0, 4.0, 5.0, 5.0, 5.0]


def test_backoff_initial_above_cap_is_capped() -> None:
    assert next(exponential_backoff(20.0, 10.0)) == 10.0


@pytest.mark.parametrize(("initial", "cap", "factor"), [(0, 1, 2), (1, 0, 2), (1, 1, 0.5)])
def test_backoff_rejects_nonsense(initial: float, cap: float, factor: float) -> None:
    with pytest.raises(ValueError):
        next(exponential_backoff(initial, cap, factor))


def test_jitter_keeps_half_and_never_exceeds() -> None:
    base = list(itertools.islice(exponential_backoff(0.2, 10.0), 50))
    jittered = list(with_jitter(iter(base), random.Random(7)))
    assert all(d / 2 <= j <= d for d, j in zip(base, jittered, strict=True))
    assert len(set(jittered)) > 1  # it does vary


def test_jitter_is_deterministic_for_a_seed() -> None:
    def run() -> list[float]:
        return list(itertools.islice(with_jitter(exponential_backoff(1, 8), random.Random(3)), 5))

    assert run() == run()


def test_retry_delay_grows_and_caps() -> None:
    assert [retry_delay(n, 5.0, 30.0) for n in (1, 2, 3, 4)] == [5.0, 10.0, 20.0, 30.0]
    with pytest.raises(ValueError):
        retry_delay(0, 5.0, 30.0)
