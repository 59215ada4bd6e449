"""Every Prometheus metric syncd exports, in one place.

Conventions: names start with ``syncd_`` and carry their unit
(``_seconds``, ``_bytes``, ``_operations``, ``_total`` for counters); labels
are low-cardinality only (table names, a fixed set of sources, reasons and
outcomes), never record keys or ids.

Every metric about one secondary's pipeline carries a ``secondary`` label
(its name; ``secondary`` for the flat ``secondary_*`` keys). A
:class:`Metrics` is bound to one secondary's name — its attributes are the
labelled children of that name — and :meth:`Metrics.for_secondary` gives a view
bound to another, over the same families and registry. The pipeline's parts
take a bound view and never say which secondary they serve.

Each :class:`Metrics` owns its own :class:`~prometheus_client.CollectorRegistry`
(one per Replicator, one per test), never the process-global default, so two
replicators in one process, or two tests, never see each other's numbers.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Iterable, Iterator
from typing import Generic, TypeVar

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client import Metric as PromMetric

# Batches are counted in operations: 1 (a lone write) up to the largest batch
# size anyone should configure.
BATCH_SIZE_BUCKETS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000)
# One round trip to the secondary: a local engine answers in ~1 ms, a stalled
# one hits the request timeout (seconds).
APPLY_SECONDS_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
# Enqueue to applied: milliseconds when healthy, up to a minute through
# retries and brief outages (longer ones show in the lag gauge instead).
END_TO_END_SECONDS_BUCKETS = (0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)

Metric = Counter | Gauge | Histogram
M = TypeVar("M", Counter, Gauge, Histogram)

#: The name the flat ``secondary_*`` keys give their one secondary.
DEFAULT_SECONDARY = "secondary"


class Labelled(Generic[M]):
    """A family with a ``secondary`` label and others, bound to one secondary's name.

    ``labels("events")`` is the family's ``labels(name, "events")``.
    """

    def __init__(self, family: M, secondary: str) -> None:
        self.family: M = family
        self.secondary = secondary

    def labels(self, *values: str, **named: str) -> M:
        """The child for these further label values, under this secondary."""
        if named:
            return self.family.labels(secondary=self.secondary, **named)
        return self.family.labels(self.secondary, *values)

    def remove(self, *values: str) -> None:
        """Drop the child for these further label values, under this secondary."""
        self.family.remove(self.secondary, *values)


class Metrics:
    """The metrics of one replicator or daemon, registered in their own registry.

    Attributes are ``prometheus_client`` objects; callers use them directly
    (``metrics.applied.labels(table="user").inc()``). Those about a secondary
    are bound to :attr:`secondary` (see the module docstring).
    """

    # Bound to one secondary (see _bind); declared here for the type checker.
    enqueued: Labelled[Counter]
    applied: Labelled[Counter]
    retried: Labelled[Counter]
    dead_lettered: Labelled[Counter]
    superseded: Labelled[Counter]
    schema_applied: Labelled[Counter]
    schema_refused: Labelled[Counter]
    schema_archived: Gauge
    resync_pending: Labelled[Gauge]
    queue_depth: Gauge
    spool_depth: Gauge
    spool_bytes: Gauge
    spool_frames_lost: Counter
    batch_size: Histogram
    apply_seconds: Histogram
    lag_seconds: Gauge
    end_to_end_seconds: Histogram
    secondary_up: Gauge
    secondary_state_since: Gauge
    reconnects: Counter
    dead_letters: Gauge

    def __init__(
        self, registry: CollectorRegistry | None = None, *, secondary: str = DEFAULT_SECONDARY
    ) -> None:
        """Create every metric in ``registry`` (a fresh one when ``None``), bound to
        ``secondary`` (the first secondary's name)."""
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        #: The families labelled by secondary, by attribute name.
        self.families: dict[str, Metric] = {}
        f = self.families

        # Flow of operations through the pipeline.
        f["enqueued"] = Counter(
            "syncd_operations_enqueued_total",
            "Operations queued for the secondary, by table and by where they came from "
            "(wrapper, changefeed, backfill, replay, repair).",
            ["secondary", "table", "source"],
            registry=r,
        )
        f["applied"] = Counter(
            "syncd_operations_applied_total",
            "Operations the secondary accepted.",
            ["secondary", "table"],
            registry=r,
        )
        f["retried"] = Counter(
            "syncd_operations_retried_total",
            "Operations sent again after a retriable failure.",
            ["secondary", "table"],
            registry=r,
        )
        f["dead_lettered"] = Counter(
            "syncd_operations_dead_lettered_total",
            "Operations given up on and written to the dead-letter file.",
            ["secondary", "table"],
            registry=r,
        )
        f["superseded"] = Counter(
            "syncd_operations_superseded_total",
            "Unapplied operations dropped because a newer version of the same record was queued.",
            ["secondary", "table"],
            registry=r,
        )
        # The schema mirror (syncd.service.schemamirror).
        f["schema_applied"] = Counter(
            "syncd_schema_applied_total",
            "Definitions (DEFINE/REMOVE statements) a secondary accepted, by kind "
            "(TABLE, FIELD, INDEX, ANALYZER, FUNCTION, PARAM, EVENT).",
            ["secondary", "kind"],
            registry=r,
        )
        f["schema_refused"] = Counter(
            "syncd_schema_refused_total",
            "Definitions a secondary refused or its generation cannot express, by kind.",
            ["secondary", "kind"],
            registry=r,
        )
        f["schema_archived"] = Gauge(
            "syncd_schema_archived_definitions",
            "Definitions kept on a secondary that the primary has removed (at the last check).",
            ["secondary"],
            registry=r,
        )
        self.uncaptured_writes = Counter(
            "syncd_uncaptured_writes_total",
            "Writes through query() whose records the wrapper could not see "
            "(e.g. RETURN NONE), so they were not replicated.",
            ["reason"],
            registry=r,
        )

        # Backlog.
        f["queue_depth"] = Gauge(
            "syncd_queue_depth_operations",
            "Operations waiting in memory.",
            ["secondary"],
            registry=r,
        )
        f["spool_depth"] = Gauge(
            "syncd_spool_depth_operations",
            "Operations waiting in the on-disk spool.",
            ["secondary"],
            registry=r,
        )
        f["spool_bytes"] = Gauge(
            "syncd_spool_bytes",
            "Size of the on-disk spool.",
            ["secondary"],
            registry=r,
        )
        f["spool_frames_lost"] = Counter(
            "syncd_spool_frames_lost_total",
            "Operations lost to damaged spool files (each damaged frame; logged as "
            "spool_frames_lost).",
            ["secondary"],
            registry=r,
        )
        f["resync_pending"] = Gauge(
            "syncd_resync_pending",
            "1 for each table whose operations the spool could not keep (disk full or "
            "spool_max_bytes): it is copied again from the primary once the secondary is back.",
            ["secondary", "table"],
            registry=r,
        )

        # Apply path.
        f["batch_size"] = Histogram(
            "syncd_batch_size_operations",
            "Operations per batch sent to the secondary.",
            ["secondary"],
            buckets=BATCH_SIZE_BUCKETS,
            registry=r,
        )
        f["apply_seconds"] = Histogram(
            "syncd_apply_duration_seconds",
            "Round trip of one batch to the secondary.",
            ["secondary"],
            buckets=APPLY_SECONDS_BUCKETS,
            registry=r,
        )
        f["lag_seconds"] = Gauge(
            "syncd_replication_lag_seconds",
            "Age of the oldest operation not yet applied; 0 when idle.",
            ["secondary"],
            registry=r,
        )
        f["end_to_end_seconds"] = Histogram(
            "syncd_end_to_end_lag_seconds",
            "Time from enqueue to applied, per operation.",
            ["secondary"],
            buckets=END_TO_END_SECONDS_BUCKETS,
            registry=r,
        )

        # Secondary health.
        f["secondary_up"] = Gauge(
            "syncd_secondary_up",
            "1 when the secondary is reachable, 0 when not.",
            ["secondary"],
            registry=r,
        )
        f["secondary_state_since"] = Gauge(
            "syncd_secondary_state_since_timestamp_seconds",
            "Unix time when syncd_secondary_up last changed.",
            ["secondary"],
            registry=r,
        )
        f["reconnects"] = Counter(
            "syncd_secondary_reconnects_total",
            "Reconnections to the secondary after a lost connection.",
            ["secondary"],
            registry=r,
        )
        self.connection_failures = Counter(
            "syncd_connection_failures_total",
            "Failed attempts to connect and sign in, by database role (primary, secondary) "
            "and reason: auth (credentials refused), timeout, unreachable, server.",
            ["role", "reason", "secondary"],
            registry=r,
        )
        self.merged_reads = Counter(
            "syncd_merged_reads_total",
            "Reads answered, by outcome: merged, or primary only because the secondary "
            "was down, timed out or failed (unmergeable statements: syncd_unmerged_reads_total).",
            ["secondary", "outcome"],
            registry=r,
        )
        self.unmerged_reads = Counter(
            "syncd_unmerged_reads_total",
            "Merged reads answered by the primary alone because the statement cannot be "
            "merged like the union and its table says unmergeable: primary, by reason.",
            ["table", "reason"],
            registry=r,
        )
        f["dead_letters"] = Gauge(
            "syncd_dead_letters",
            "Entries currently in the dead-letter file (counted from the file, so a replay "
            "or purge by another process shows at once).",
            ["secondary"],
            registry=r,
        )

        # Pause and resume (syncd pause / resume), by secondary name.
        self.paused = Gauge(
            "syncd_paused",
            "1 while an operator has paused replication to this secondary (nothing is "
            "applied to it; capture goes on), 0 otherwise.",
            ["secondary"],
            registry=r,
        )
        self.paused_since = Gauge(
            "syncd_paused_since_seconds",
            "Unix time when the current pause of this secondary started; 0 when not paused.",
            ["secondary"],
            registry=r,
        )
        self.control_refused = Counter(
            "syncd_control_refused_total",
            "Requests to /pause or /resume refused with 403, by reason: not_loopback "
            "(no control_token configured), no_token, wrong_token.",
            ["reason"],
            registry=r,
        )

        # Daemon (changefeed tailing and backfill).
        self.checkpoint_position = Gauge(
            "syncd_checkpoint_position",
            "Changefeed sequence number up to which everything is applied.",
            registry=r,
        )
        self.checkpoint_timestamp = Gauge(
            "syncd_checkpoint_timestamp_seconds",
            "Unix time when the checkpoint last advanced.",
            registry=r,
        )
        self.changefeed_entries = Counter(
            "syncd_changefeed_changes_total",
            "Changes read from the primary's changefeeds.",
            ["table"],
            registry=r,
        )
        self.backfill_records = Counter(
            "syncd_backfill_records_total",
            "Records copied by a backfill.",
            ["table"],
            registry=r,
        )
        self.primary_up = Gauge(
            "syncd_primary_up",
            "1 when the primary is reachable, 0 when not.",
            registry=r,
        )

        self._bind(secondary)

    def _bind(self, secondary: str) -> None:
        #: The secondary this view's per-secondary attributes are about.
        self.secondary = secondary
        self._enqueued_children: dict[tuple[str, str], Counter] = {}
        for attr, family in self.families.items():
            labelled = len(family._labelnames) > 1  # more than "secondary"
            setattr(
                self, attr, Labelled(family, secondary) if labelled else family.labels(secondary)
            )
        self.set_lag_source(lambda: 0.0)

    def for_secondary(self, name: str) -> Metrics:
        """A view of these metrics bound to secondary ``name`` (same families, same registry)."""
        view = copy.copy(self)
        view._bind(name)
        return view

    def count_enqueued(self, table: str, source: str) -> None:
        """Count one operation enqueued (``enqueued``), on the application's write path.

        The labelled child is looked up once per (table, source): ``labels()``
        validates and locks, a measurable part of a write.
        """
        counter = self._enqueued_children.get((table, source))
        if counter is None:
            counter = self._enqueued_children[(table, source)] = self.enqueued.labels(table, source)
        counter.inc()

    def set_lag_source(self, fn: Callable[[], float]) -> None:
        """Compute ``syncd_replication_lag_seconds`` with ``fn`` at every read.

        ``fn`` runs on whichever thread collects (the HTTP server thread for
        a scrape), so it must only read simple attributes. If it raises, the
        gauge reads NaN ("unknown") rather than failing the whole scrape.
        """

        self.lag_seconds.set_function(_guarded(fn))

    def set_dead_letter_source(self, fn: Callable[[], float]) -> None:
        """Read ``syncd_dead_letters`` from ``fn`` at every collection (NaN if it raises).

        Same rules as :meth:`set_lag_source`: ``fn`` runs on the collecting thread.
        """
        self.dead_letters.set_function(_guarded(fn))

    def _metrics(self) -> dict[str, Metric]:
        """Every metric family by its attribute name."""
        own = {k: v for k, v in vars(self).items() if isinstance(v, Counter | Gauge | Histogram)}
        return {**own, **self.families}

    def snapshot(self, secondary: str | None = None) -> dict[str, float]:
        """Current values as a flat dict, summed over labels.

        Counters and gauges appear under their attribute name
        (``applied``, ``queue_depth``, ``lag_seconds``...); histograms as
        ``<name>_count`` and ``<name>_sum``. A labelled metric never
        incremented reads 0.0. ``secondary``: only that secondary's samples
        of the metrics labelled by secondary (the others as they are).
        """
        out: dict[str, float] = {}
        for attr, metric in self._metrics().items():
            if isinstance(metric, Histogram):
                wanted = {"_count": f"{attr}_count", "_sum": f"{attr}_sum"}
            elif isinstance(metric, Counter):
                # Counters also expose a "_created" timestamp sample: skip it.
                wanted = {"_total": attr}
            else:
                wanted = {"": attr}
            for key in wanted.values():
                out[key] = 0.0
            for family in metric.collect():
                for sample in family.samples:
                    suffix = sample.name[len(family.name) :]
                    if suffix not in wanted:
                        continue
                    if secondary is not None and sample.labels.get("secondary", secondary) != (
                        secondary
                    ):
                        continue
                    out[wanted[suffix]] += sample.value
        return out


class WithoutCreated:
    """A registry's metrics without the ``_created`` samples, for exposition.

    prometheus_client adds a ``<name>_created`` timestamp series to every
    counter and histogram child: half of /metrics, and nothing a dashboard or
    alert of syncd reads. ``prometheus_client.disable_created_metrics()`` would
    remove them process-wide, from an embedding application's metrics too; this
    filters syncd's registry only.
    """

    def __init__(self, registry: CollectorRegistry) -> None:
        """Expose ``registry`` without its ``_created`` samples."""
        self._registry = registry

    def collect(self) -> Iterator[PromMetric]:
        """The registry's families, each without its ``_created`` samples."""
        for family in self._registry.collect():
            kept = [s for s in family.samples if not s.name.endswith("_created")]
            if len(kept) != len(family.samples):
                family = copy.copy(family)
                family.samples = kept
            yield family

    def restricted_registry(self, names: Iterable[str]) -> WithoutCreated:
        """The same, over only ``names`` (``/metrics?name[]=...``)."""
        return WithoutCreated(self._registry.restricted_registry(names))  # type: ignore[arg-type]


def _guarded(fn: Callable[[], float]) -> Callable[[], float]:
    """``fn`` as a gauge function: NaN ("unknown") instead of failing the whole scrape."""

    def guarded() -> float:
        try:
            return float(fn())
        except Exception:
            return math.nan

    return guarded
