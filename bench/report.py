"""Output: the table for people, the JSON for machines, the timeline plot."""

from __future__ import annotations

import json
import math
import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.common import Result


def _fmt(value: float | None) -> str:
    if value is None or math.isnan(value):
        return "-"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    if abs(value) >= 100:
        return f"{value:.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.3g}"


def table(results: Sequence[Result]) -> str:
    """A plain-text table: per scenario its targets (met or not), then its other figures."""
    lines: list[str] = []
    for result in results:
        head = f"[{result.id}] {result.title}"
        if result.status != "ok":
            lines += [head, f"    {result.status.upper()}: {'; '.join(result.notes)}", ""]
            continue
        lines.append(f"{head}  ({result.seconds:.0f} s)")
        shown: set[str] = set()
        for target in result.targets:
            value = result.figures.get(target.figure, math.nan)
            verdict = "MET" if target.met(value) else "MISSED"
            lines.append(
                f"    {target.figure:<34} {_fmt(value):>12}   target {target.op} "
                f"{_fmt(target.limit)}: {verdict}"
            )
            shown.add(target.figure)
        for name, value in result.figures.items():
            if name not in shown:
                lines.append(f"    {name:<34} {_fmt(value):>12}")
        setup = ", ".join(f"{k}={v}" for k, v in result.setup.items() if _short(v))
        lines.append(f"    setup: {setup}")
        lines += [f"    note: {note}" for note in result.notes]
        lines.append("")
    return "\n".join(lines)


def _short(value: Any) -> bool:
    return isinstance(value, int | float | str) and len(str(value)) <= 90


def write_json(path: Path, results: Sequence[Result], meta: dict[str, Any]) -> None:
    """Write every result (and the plot series, under ``series``) to ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    data = {
        "meta": meta,
        "scenarios": {r.id: r.as_json() for r in results},
        "series": {
            r.id: {name: _clean(rows) for name, rows in r.series.items()}
            for r in results
            if r.series
        },
    }
    path.write_text(json.dumps(data, indent=1, allow_nan=False) + "\n")


def _clean(rows: list[list[float]]) -> list[list[float | None]]:
    """JSON has no NaN: an empty bin's figures become null."""
    return [[None if math.isnan(v) else round(v, 4) for v in row] for row in rows]


def plot(path: Path, results: Sequence[Result]) -> str | None:
    """Lag and throughput over time for the lag and catch-up scenarios; None if no matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from matplotlib.ticker import NullFormatter, ScalarFormatter
    except ImportError:
        return "matplotlib is not installed (pip install -e '.[bench]'): no plot"
    panels = [r for r in results if r.id.split("@")[0] in ("lag", "catchup") and r.series]
    if not panels:
        return "no lag or catch-up series to plot"
    fig, axes = plt.subplots(len(panels), 1, figsize=(11, 4.2 * len(panels)), squeeze=False)
    for ax, result in zip(axes[:, 0], panels, strict=True):
        rows = result.series["lag_ms_p50_p99_max_and_applied_per_s"]
        t = [r[0] for r in rows]
        ax.plot(t, [r[2] for r in rows], color="tab:red", label="lag p99 (ms)", lw=1)
        ax.plot(t, [r[1] for r in rows], color="tab:orange", label="lag p50 (ms)", lw=1)
        peak = max((r[2] for r in rows if not math.isnan(r[2])), default=0.0)
        if peak > 500:  # an outage: seconds of lag next to milliseconds
            ax.set_yscale("log")
            ax.yaxis.set_major_formatter(ScalarFormatter())
            ax.yaxis.set_minor_formatter(NullFormatter())
        else:
            ax.set_ylim(bottom=0)
        ax.axhline(50, color="tab:red", lw=0.8, ls=":", label="p99 target (50 ms)")
        ax.set_ylabel("lag, ms" + (" (log)" if peak > 500 else ""))
        ax.set_xlabel("seconds since the writer started")
        ax.set_title(result.title)
        ax2 = ax.twinx()
        ax2.plot(t, [r[4] for r in rows], color="tab:blue", label="applied / s", lw=1, alpha=0.7)
        if "queue_depth_and_spooled" in result.series:
            q = result.series["queue_depth_and_spooled"]
            ax2.plot(
                [r[0] for r in q],
                [r[1] + r[2] for r in q],
                color="tab:gray",
                label="backlog (ops)",
                lw=1,
                ls="--",
            )
        ax2.set_ylabel("operations/s  |  backlog")
        if "events_s" in result.series:
            down, back, caught = result.series["events_s"][0]
            ax.axvspan(down, back, color="tab:red", alpha=0.08, label="secondary down")
            ax.axvline(caught, color="tab:green", lw=1, ls=":", label="caught up")
        handles = ax.get_legend_handles_labels()
        handles2 = ax2.get_legend_handles_labels()
        ax.legend(handles[0] + handles2[0], handles[1] + handles2[1], loc="upper left", fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return None


def plot_drain(path: Path, results: Sequence[Result]) -> str | None:
    """Drain rate of every arm beside the engine's own limit, one panel per engine."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "matplotlib is not installed: no drain plot"
    drain = next((r for r in results if r.id == "drain" and r.status == "ok"), None)
    if drain is None:
        return "no drain result to plot"
    engines = drain.setup.get("engines", [])
    fig, axes = plt.subplots(1, len(engines), figsize=(5.5 * len(engines), 4.2), squeeze=False)
    for ax, engine in zip(axes[0], engines, strict=True):
        prefix = f"drain_e{engine}_"
        arms = [name[len(prefix) :] for name in drain.series if name.startswith(prefix)]
        rates = [[r[1] for r in drain.series[prefix + arm]] for arm in arms]
        meds = [statistics.median(v) if v else math.nan for v in rates]
        limit = drain.figures.get(f"e{engine}_engine_limit_records_per_s", math.nan)
        colors = ["tab:gray" if a.startswith(("engine", "limit")) else "tab:blue" for a in arms]
        ax.bar(range(len(arms)), meds, color=colors)
        for i, values in enumerate(rates):
            ax.scatter([i] * len(values), values, color="black", s=8, zorder=3)
        ax.axhline(limit, color="tab:red", lw=1, label="engine limit")
        ax.axhline(0.8 * limit, color="tab:red", lw=1, ls=":", label="0.8 x limit (target)")
        ax.set_xticks(range(len(arms)), arms, rotation=30, ha="right", fontsize=8)
        version = drain.setup.get(f"e{engine}_engine_version", f"engine {engine}")
        ax.set_title(f"{version}: records/s (bars: median; dots: rounds)", fontsize=9)
        ax.set_ylabel("records/s")
        ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return None
