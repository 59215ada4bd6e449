"""Rates of the last minute from counter snapshots (pure: the test owns the clock)."""

from __future__ import annotations

import threading

import pytest

from syncd.service.rates import RateSampler


def test_first_answer_is_unknown_then_rates_are_delta_over_elapsed() -> None:
    sampler = RateSampler(window=60)
    first = sampler.observe(0.0, {"applied": 0})
    assert first.seconds == 0.0
    assert first.as_dict() == {"applied_per_second": None, "window_seconds": 0.0}
    rates = sampler.observe(10.0, {"applied": 500})
    assert rates.seconds == 10.0
    assert rates.per_second == {"applied": 50.0}


def test_rate_covers_about_the_last_window_not_since_start() -> None:
    sampler = RateSampler(window=60)
    for t in range(0, 121):  # a steady 10/s for two minutes, then 100/s
        sampler.observe(float(t), {"n": 10.0 * t})
    for t in range(121, 181):
        sampler.observe(float(t), {"n": 1200 + 100.0 * (t - 120)})
    rates = sampler.observe(181.0, {"n": 1200 + 100.0 * 61})
    assert rates.per_second["n"] == pytest.approx(100.0)
    assert 59.0 <= rates.seconds <= 61.0


def test_ring_stays_small_however_often_asked() -> None:
    sampler = RateSampler(window=60, min_spacing=1.0)
    for i in range(10_000):
        sampler.observe(i * 0.1, {"n": float(i)})  # ten questions a second
    assert len(sampler) <= 62


def test_a_long_silence_uses_the_last_snapshot_before_the_window() -> None:
    sampler = RateSampler(window=60)
    sampler.observe(0.0, {"n": 0})
    rates = sampler.observe(300.0, {"n": 3000})
    assert rates.seconds == 300.0  # the span actually measured is reported
    assert rates.per_second["n"] == 10.0


def test_a_snapshot_too_recent_is_not_a_baseline() -> None:
    sampler = RateSampler(window=60, min_spacing=1.0)
    sampler.observe(0.0, {"n": 0})
    sampler.observe(30.0, {"n": 300})
    rates = sampler.observe(30.2, {"n": 302})  # 0.2 s after the last: measured from t=0
    assert rates.seconds == pytest.approx(30.2)


def test_a_counter_that_went_down_counts_as_zero() -> None:
    sampler = RateSampler(window=60)
    sampler.observe(0.0, {"n": 100})
    assert sampler.observe(5.0, {"n": 20}).per_second["n"] == 0.0


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError):
        RateSampler(window=0)
    with pytest.raises(ValueError):
        RateSampler(window=10, min_spacing=20)


def test_threads_can_ask_at_once() -> None:
    sampler = RateSampler(window=60, min_spacing=0.001)
    errors: list[BaseException] = []

    def ask(offset: int) -> None:
        try:
            for i in range(2000):
                sampler.observe(offset + i * 0.01, {"n": float(i)})
        except BaseException as exc:  # pragma: no cover - the failure being tested for
            errors.append(exc)

    threads = [threading.Thread(target=ask, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
