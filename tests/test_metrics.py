"""Metrics: snapshot values, isolation between instances, the lag source."""

from __future__ import annotations

import math

from prometheus_client import CollectorRegistry, generate_latest

from syncd.metrics import Metrics


def test_snapshot_reflects_increments_summed_over_labels() -> None:
    m = Metrics()
    m.applied.labels(table="user").inc(3)
    m.applied.labels(table="post").inc()
    m.enqueued.labels(table="user", source="wrapper").inc(2)
    m.merged_reads.labels(secondary="secondary", outcome="merged").inc()
    m.queue_depth.set(4)
    m.secondary_up.set(1)
    m.batch_size.observe(5)
    m.batch_size.observe(7)

    snap = m.snapshot()

    assert snap["applied"] == 4.0
    assert snap["enqueued"] == 2.0
    assert snap["merged_reads"] == 1.0
    assert snap["queue_depth"] == 4.0
    assert snap["secondary_up"] == 1.0
    assert snap["batch_size_count"] == 2.0
    assert snap["batch_size_sum"] == 12.0
    # Never touched: present and zero, not missing.
    assert snap["dead_lettered"] == 0.0
    assert snap["reconnects"] == 0.0
    assert snap["lag_seconds"] == 0.0


def test_instances_do_not_share_state() -> None:
    a, b = Metrics(), Metrics()
    a.applied.labels(table="user").inc(5)
    a.queue_depth.set(9)

    assert a.registry is not b.registry
    assert b.snapshot()["applied"] == 0.0
    assert b.snapshot()["queue_depth"] == 0.0
    assert a.snapshot()["applied"] == 5.0


def test_uses_the_given_registry() -> None:
    registry = CollectorRegistry()
    m = Metrics(registry)
    m.reconnects.inc()

    assert m.registry is registry
    assert (
        registry.get_sample_value("syncd_secondary_reconnects_total", {"secondary": "secondary"})
        == 1.0
    )


def test_lag_source_shows_in_exposition_and_snapshot() -> None:
    m = Metrics()
    lag = [2.5]
    m.set_lag_source(lambda: lag[0])

    text = generate_latest(m.registry).decode()
    assert 'syncd_replication_lag_seconds{secondary="secondary"} 2.5' in text
    lag[0] = 0.0
    assert m.snapshot()["lag_seconds"] == 0.0


def test_raising_lag_source_reads_nan_without_breaking_exposition() -> None:
    m = Metrics()

    def broken() -> float:
        raise RuntimeError("boom")

    m.set_lag_source(broken)

    text = generate_latest(m.registry).decode()
    assert 'syncd_replication_lag_seconds{secondary="secondary"} NaN' in text
    assert math.isnan(m.snapshot()["lag_seconds"])


def test_every_metric_is_prefixed_and_documented() -> None:
    m = Metrics()
    families = list(m.registry.collect())
    assert len(families) >= 23
    for family in families:
        assert family.name.startswith("syncd_"), family.name
        assert len(family.documentation) > 10, family.name


def test_views_of_two_secondaries_share_the_families_and_keep_their_numbers_apart() -> None:
    m = Metrics(secondary="archive")
    other = m.for_secondary("analytics")
    m.applied.labels(table="user").inc(2)
    other.applied.labels(table="user").inc(5)
    other.queue_depth.set(7)
    other.set_lag_source(lambda: 1.5)

    sample = m.registry.get_sample_value
    assert other.registry is m.registry
    applied = "syncd_operations_applied_total"
    assert sample(applied, {"secondary": "archive", "table": "user"}) == 2
    assert sample(applied, {"secondary": "analytics", "table": "user"}) == 5
    assert sample("syncd_queue_depth_operations", {"secondary": "analytics"}) == 7
    assert sample("syncd_replication_lag_seconds", {"secondary": "analytics"}) == 1.5
    # Totals over every secondary, or one secondary's own.
    assert m.snapshot()["applied"] == 7.0
    assert m.snapshot("archive")["applied"] == 2.0
    assert m.snapshot("analytics")["queue_depth"] == 7.0
    # No series for a secondary nobody configured.
    assert sample("syncd_queue_depth_operations", {"secondary": "secondary"}) is None
