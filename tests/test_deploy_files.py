"""The files in deploy/ stay consistent with the code.

Pure and fast: no network, no database, no Docker. The production config must
load; every metric the alerts and the dashboard name must be one syncd
exports; the alert rules, the dashboard and the compose file must have the
shape their tools expect. When ``promtool`` is installed (Debian package
``prometheus``) the rules, their unit tests and every dashboard query are also
checked by Prometheus itself.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import Counter, Gauge, Histogram, generate_latest

import syncd
from syncd.metrics import Metrics

DEPLOY = Path(__file__).resolve().parent.parent / "deploy"
PRODUCTION_YAML = DEPLOY / "syncd.production.yaml"
PROMETHEUS_YML = DEPLOY / "prometheus" / "prometheus.yml"
PROMETHEUS_COMPOSE_YML = DEPLOY / "prometheus" / "prometheus.compose.yml"
ALERTS_YML = DEPLOY / "prometheus" / "alerts.yml"
ALERTS_TEST_YML = DEPLOY / "prometheus" / "alerts.test.yml"
DASHBOARD_JSON = DEPLOY / "grafana" / "syncd-dashboard.json"
COMPOSE_YML = DEPLOY / "docker-compose.yml"
DOCKERFILE = DEPLOY / "Dockerfile"

METRIC_NAME = re.compile(r"syncd_[a-z_]+")
SEVERITIES = {"info", "warning", "critical"}
REMEMBRANCES_TABLES: dict[str, list[str] | None] = {
    "kv_memories": ["user_id", "key"],
    "vector_memories": None,
    "events": None,
    "entities": None,
    "relationships": None,
    "knowledge_base": ["file_path"],
}


def exposed_metric_names() -> set[str]:
    """Every series name a fresh :class:`Metrics` can expose.

    From the text exposition: sample names, plus the family names of the
    ``# TYPE`` lines (a labelled counter has no sample until a label set is
    used, but its TYPE line carries the ``_total`` name), plus ``_bucket``,
    ``_sum`` and ``_count`` of every histogram.
    """
    names: set[str] = set()
    for line in generate_latest(Metrics().registry).decode().splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split()
            names.add(name)
            if kind == "histogram":
                names.update(f"{name}{suffix}" for suffix in ("_bucket", "_sum", "_count"))
        elif line and not line.startswith("#"):
            names.add(re.split(r"[{ ]", line, maxsplit=1)[0])
    return names


def referenced_metric_names(text: str) -> set[str]:
    return set(METRIC_NAME.findall(text))


def per_secondary_metric_names() -> set[str]:
    """Every series name (``_total``, ``_bucket``... included) of a family labelled by secondary."""
    metrics = Metrics()
    families = [
        family
        for family in [*vars(metrics).values(), *metrics.families.values()]
        # No public accessor for a family's label names; a bound child has values.
        if isinstance(family, Counter | Gauge | Histogram)
        and not family._labelvalues
        and "secondary" in family._labelnames
    ]
    names: set[str] = set()
    for family in families:
        for collected in family.collect():
            suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count")}
            names.add(collected.name)
            names.update(collected.name + s for s in suffixes.get(collected.type, ()))
    return names & exposed_metric_names()


# PromQL aggregations that fold series together: by (...) must keep `secondary`
# (without (...) must not drop it). topk, bottomk and limitk keep the labels
# of the series they pick, so they are not among them.
AGGREGATION = re.compile(
    r"\b(sum|min|max|avg|count|group|stddev|stdvar|quantile|count_values)\s*"
    r"(?:(by|without)\s*\(([^)]*)\))?\s*\(",
)
CLAUSE_AFTER = re.compile(r"\s*(by|without)\s*\(([^)]*)\)")
IGNORING = re.compile(r"\bignoring\s*\(([^)]*)\)")


def _closing(expr: str, opening: int) -> int:
    """The index of the parenthesis closing the one at ``opening``."""
    depth = 0
    for index in range(opening, len(expr)):
        depth += {"(": 1, ")": -1}.get(expr[index], 0)
        if depth == 0:
            return index
    raise AssertionError(f"unbalanced parentheses in {expr!r}")


def secondary_label_problems(expr: str, per_secondary: set[str]) -> list[str]:
    """How ``expr`` folds away the ``secondary`` label of a per-secondary metric it reads.

    An aggregation over such a metric must say ``by (..., secondary, ...)``
    (before or after its argument) or ``without (...)`` not naming it; a
    vector match must not ignore it. Empty: the label is kept.
    """
    problems = []
    for match in AGGREGATION.finditer(expr):
        end = _closing(expr, match.end() - 1)
        argument = expr[match.end() : end]
        if not referenced_metric_names(argument) & per_secondary:
            continue
        clause = match.group(2), match.group(3)
        after = CLAUSE_AFTER.match(expr, end + 1)
        if match.group(2) is None and after is not None:
            clause = after.group(1), after.group(2)
        kind, labels = clause
        names = {label.strip() for label in (labels or "").split(",")}
        if kind is None or (kind == "by") != ("secondary" in names):
            problems.append(f"{match.group(1)}(...) over {argument.strip()!r} drops `secondary`")
    for match in IGNORING.finditer(expr):
        if "secondary" in {label.strip() for label in match.group(1).split(",")}:
            problems.append("ignoring(secondary) in a vector match")
    return problems


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def alert_rules() -> list[dict[str, Any]]:
    document = load_yaml(ALERTS_YML)
    return [rule for group in document["groups"] for rule in group["rules"]]


def dashboard() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(DASHBOARD_JSON.read_text(encoding="utf-8"))
    return data


def dashboard_exprs() -> list[str]:
    return [target["expr"] for panel in dashboard()["panels"] for target in panel["targets"]]


# --------------------------------------------------------------------------
# The production config.


@pytest.fixture
def production_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Only the two password variables, as systemd or compose would set them."""
    for name in list(os.environ):
        if name.startswith("SYNCD_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("SYNCD_PRIMARY_PASS", "primary-secret")
    monkeypatch.setenv("SYNCD_SECONDARY_PASS", "secondary-secret")


@pytest.mark.usefixtures("production_env")
def test_production_config_loads() -> None:
    config = syncd.load_config(PRODUCTION_YAML)

    assert config.primary_url == "ws://primary-db:8000/rpc"
    assert config.secondary_url == "ws://secondary-db:8000/rpc"
    assert config.primary_pass.get_secret_value() == "primary-secret"
    assert config.secondary_pass.get_secret_value() == "secondary-secret"
    assert config.state_dir == "/var/lib/syncd"
    assert config.metrics_address == ("127.0.0.1", 9464)
    assert config.tables is not None
    assert set(config.tables) == set(REMEMBRANCES_TABLES)
    for table, key in REMEMBRANCES_TABLES.items():
        assert config.table_key(table) == key, table


def test_production_config_holds_no_password() -> None:
    document = load_yaml(PRODUCTION_YAML)
    assert "primary_pass" not in document
    assert "secondary_pass" not in document
    text = PRODUCTION_YAML.read_text(encoding="utf-8")
    assert "SYNCD_PRIMARY_PASS" in text
    assert "SYNCD_SECONDARY_PASS" in text
    assert "LoadCredential=" in text
    assert "EnvironmentFile=" in text


# --------------------------------------------------------------------------
# Metric names.


def test_exposed_names_cover_every_kind() -> None:
    """The reference set itself: counters with _total, histograms with their series."""
    names = exposed_metric_names()
    assert "syncd_operations_dead_lettered_total" in names  # labelled, never incremented
    assert "syncd_secondary_reconnects_total" in names
    assert "syncd_apply_duration_seconds_bucket" in names
    assert "syncd_replication_lag_seconds" in names
    assert "syncd_operations_dead_lettered" not in names


@pytest.mark.parametrize(
    "path", [ALERTS_YML, ALERTS_TEST_YML, DASHBOARD_JSON], ids=lambda p: p.name
)
def test_every_referenced_metric_exists(path: Path) -> None:
    referenced = referenced_metric_names(path.read_text(encoding="utf-8"))
    assert referenced, f"{path.name} names no syncd metric"
    unknown = referenced - exposed_metric_names()
    assert not unknown, f"{path.name} names metrics syncd does not export: {sorted(unknown)}"


# --------------------------------------------------------------------------
# Prometheus.


def test_alert_rules_are_complete() -> None:
    rules = alert_rules()
    assert rules
    for rule in rules:
        name = rule.get("alert")
        assert isinstance(name, str) and name, rule
        assert isinstance(rule.get("expr"), str) and rule["expr"].strip(), name
        assert re.fullmatch(r"\d+[smh]", str(rule.get("for"))), name
        assert rule.get("labels", {}).get("severity") in SEVERITIES, name
        annotations = rule.get("annotations", {})
        for key in ("summary", "description", "runbook"):
            assert isinstance(annotations.get(key), str) and annotations[key].strip(), (name, key)
        assert re.search(r"`syncd [a-z]", annotations["runbook"]), (
            name,
            "runbook names no command",
        )
    assert len({rule["alert"] for rule in rules}) == len(rules), "duplicate alert names"


def test_per_secondary_metrics_are_known() -> None:
    """The reference set: the metrics about one secondary, and none of the process-wide ones."""
    names = per_secondary_metric_names()
    for name in (
        "syncd_replication_lag_seconds",
        "syncd_secondary_up",
        "syncd_operations_applied_total",
        "syncd_apply_duration_seconds_bucket",
        "syncd_resync_pending",
        "syncd_paused",
        "syncd_merged_reads_total",
    ):
        assert name in names, name
    for name in (
        "syncd_checkpoint_timestamp_seconds",
        "syncd_changefeed_changes_total",
        "syncd_uncaptured_writes_total",
        "syncd_primary_up",
    ):
        assert name not in names, name


@pytest.mark.parametrize(
    ("expr", "kept"),
    [
        ("syncd_replication_lag_seconds > 60", True),
        ("increase(syncd_operations_dead_lettered_total[15m]) > 0", True),
        ("max by (instance, secondary, table) (syncd_resync_pending) > 0", True),
        ("sum(rate(syncd_operations_applied_total[5m])) by (secondary)", True),
        ("sum without (table) (rate(syncd_operations_applied_total[5m]))", True),
        ("max by (instance, table) (syncd_resync_pending) > 0", False),
        ("max(syncd_replication_lag_seconds) > 60", False),
        ("sum(rate(syncd_operations_applied_total[5m])) by (instance)", False),
        ("sum without (secondary) (syncd_spool_depth_operations)", False),
        ("syncd_paused == 1 and ignoring (secondary) syncd_paused_since_seconds > 0", False),
        # Process-wide metrics have no secondary label to keep.
        ("sum by (instance) (rate(syncd_changefeed_changes_total[5m])) > 0", True),
        (
            "histogram_quantile(0.99, sum by (secondary, le) "
            "(rate(syncd_apply_duration_seconds_bucket[5m])))",
            True,
        ),
        (
            "histogram_quantile(0.99, sum by (le) (rate(syncd_apply_duration_seconds_bucket[5m])))",
            False,
        ),
    ],
)
def test_secondary_label_check(expr: str, kept: bool) -> None:
    """The checker itself: it finds an aggregation or match that drops the label."""
    assert (secondary_label_problems(expr, per_secondary_metric_names()) == []) == kept


def test_every_alert_is_per_secondary() -> None:
    """An alert on a metric about one secondary fires per secondary and names it."""
    per_secondary = per_secondary_metric_names()
    checked = 0
    for rule in alert_rules():
        if not referenced_metric_names(rule["expr"]) & per_secondary:
            continue
        checked += 1
        problems = secondary_label_problems(rule["expr"], per_secondary)
        assert not problems, (rule["alert"], problems)
        assert "{{ $labels.secondary }}" in rule["annotations"]["summary"], rule["alert"]
    assert checked >= 10


@pytest.mark.parametrize(
    ("alert", "expr_part", "severity", "duration"),
    [
        ("SyncdReplicationLagHigh", "syncd_replication_lag_seconds > 60", "warning", "5m"),
        ("SyncdReplicationLagCritical", "syncd_replication_lag_seconds > 600", "critical", "5m"),
        ("SyncdSecondaryDown", "syncd_secondary_up == 0", "critical", "2m"),
        (
            "SyncdDeadLettersGrowing",
            "increase(syncd_operations_dead_lettered_total[15m]) > 0",
            "warning",
            None,
        ),
        (
            "SyncdCheckpointStalled",
            "time() - syncd_checkpoint_timestamp_seconds > 300",
            "warning",
            None,
        ),
        ("SyncdSpoolGrowing", "syncd_spool_depth_operations > 100000", "warning", None),
        ("SyncdDown", 'up{job="syncd"} == 0', "critical", None),
        ("SyncdUncapturedWrites", "increase(syncd_uncaptured_writes_total[1h]) > 0", "info", None),
        (
            "SyncdPausedLong",
            "syncd_paused == 1 and (time() - syncd_paused_since_seconds) > 3600",
            "warning",
            None,
        ),
        (
            "SyncdSecondaryAuthRefused",
            'syncd_connection_failures_total{role="secondary",reason="auth"}',
            "warning",
            "0m",
        ),
        ("SyncdSecondaryFlapping", "syncd_secondary_reconnects_total[1h]) > 6", "warning", None),
        ("SyncdDeadLettersWaiting", "syncd_dead_letters > 0", "info", "24h"),
        ("SyncdResyncPending", "by (instance, job, secondary, table)", "warning", None),
    ],
)
def test_alert_rule(alert: str, expr_part: str, severity: str, duration: str | None) -> None:
    rules = {rule["alert"]: rule for rule in alert_rules()}
    assert alert in rules
    rule = rules[alert]
    assert expr_part in " ".join(rule["expr"].split())
    assert rule["labels"]["severity"] == severity
    if duration is not None:
        assert rule["for"] == duration
    if alert == "SyncdCheckpointStalled":
        assert "rate(syncd_changefeed_changes_total[5m])" in rule["expr"]


@pytest.mark.parametrize(
    ("path", "target"),
    [(PROMETHEUS_YML, "127.0.0.1:9464"), (PROMETHEUS_COMPOSE_YML, "syncd:9464")],
    ids=["host", "compose"],
)
def test_scrape_config(path: Path, target: str) -> None:
    document = load_yaml(path)
    for rule_file in document["rule_files"]:
        assert (path.parent / rule_file).is_file(), rule_file
    jobs = {job["job_name"]: job for job in document["scrape_configs"]}
    assert "syncd" in jobs  # the SyncdDown alert selects up{job="syncd"}
    targets = [t for sc in jobs["syncd"]["static_configs"] for t in sc["targets"]]
    assert targets == [target]


# --------------------------------------------------------------------------
# Grafana.


def test_dashboard_shape() -> None:
    board = dashboard()
    assert 36 <= board["schemaVersion"] <= 41
    assert board["uid"] and board["title"]
    assert any(
        i["name"] == "DS_PROMETHEUS" and i["type"] == "datasource" for i in board["__inputs"]
    )
    panels = board["panels"]
    assert panels
    ids = [panel["id"] for panel in panels]
    assert len(set(ids)) == len(ids), "duplicate panel ids"
    for panel in panels:
        title = panel.get("title")
        assert isinstance(title, str) and title.strip(), panel.get("id")
        assert panel["datasource"]["uid"] == "${DS_PROMETHEUS}", title
        targets = panel.get("targets")
        assert targets, f"panel {title!r} has no targets"
        ref_ids = [target["refId"] for target in targets]
        assert len(set(ref_ids)) == len(ref_ids), title
        for target in targets:
            assert target["expr"].strip(), title
            assert target["datasource"]["uid"] == "${DS_PROMETHEUS}", title


def test_dashboard_panels_do_not_overlap() -> None:
    taken: dict[tuple[int, int], str] = {}
    for panel in dashboard()["panels"]:
        grid = panel["gridPos"]
        assert grid["x"] >= 0 and grid["w"] > 0 and grid["x"] + grid["w"] <= 24, panel["title"]
        for x in range(grid["x"], grid["x"] + grid["w"]):
            for y in range(grid["y"], grid["y"] + grid["h"]):
                assert (x, y) not in taken, f"{panel['title']!r} overlaps {taken[(x, y)]!r}"
                taken[(x, y)] = panel["title"]


def test_dashboard_covers_the_metrics_asked_for() -> None:
    exprs = "\n".join(dashboard_exprs())
    for name in (
        "syncd_replication_lag_seconds",
        "syncd_operations_applied_total",
        "syncd_operations_enqueued_total",
        "syncd_queue_depth_operations",
        "syncd_spool_depth_operations",
        "syncd_secondary_up",
        "syncd_secondary_reconnects_total",
        "syncd_operations_dead_lettered_total",
        "syncd_merged_reads_total",
        "syncd_checkpoint_timestamp_seconds",
    ):
        assert name in exprs, name
    for histogram in (
        "syncd_batch_size_operations",
        "syncd_apply_duration_seconds",
        "syncd_end_to_end_lag_seconds",
    ):
        assert f"histogram_quantile(0.99, sum by (secondary, le) (rate({histogram}_bucket" in exprs
    assert (
        "histogram_quantile(0.5, sum by (secondary, le) (rate(syncd_apply_duration_seconds_bucket"
        in exprs
    )
    assert "sum by (secondary, outcome)" in exprs
    assert "sum by (secondary, table)" in exprs
    assert "syncd_paused{" in exprs


SELECTOR = re.compile(r"(syncd_[a-z_]+)(\{[^}]*\})?")


def dashboard_targets() -> list[tuple[str, dict[str, Any]]]:
    return [
        (panel["title"], target) for panel in dashboard()["panels"] for target in panel["targets"]
    ]


def test_dashboard_has_a_secondary_variable() -> None:
    variables = {v["name"]: v for v in dashboard()["templating"]["list"]}
    secondary = variables["secondary"]
    assert secondary["type"] == "query"
    assert secondary["multi"] is True and secondary["includeAll"] is True
    assert secondary["allValue"] == ".*"
    query = secondary["query"]["query"]
    assert query == secondary["definition"]
    assert re.fullmatch(
        r'label_values\(syncd_[a-z_]+\{job="syncd", instance=~"\$instance"\}, secondary\)', query
    )
    assert referenced_metric_names(query) <= per_secondary_metric_names()


def test_dashboard_shows_one_series_per_secondary() -> None:
    """Every query of a per-secondary metric keeps the label, follows the variable and
    names the secondary in its legend; process-wide metrics are not filtered by it
    (they have no such label: a chosen secondary would hide them)."""
    per_secondary = per_secondary_metric_names()
    checked = 0
    for title, target in dashboard_targets():
        expr = target["expr"]
        selectors = SELECTOR.findall(expr)
        if not referenced_metric_names(expr) & per_secondary:
            for name, labels in selectors:
                assert "$secondary" not in labels, (title, name)
            continue
        checked += 1
        assert not secondary_label_problems(expr, per_secondary), (title, expr)
        assert "{{secondary}}" in target["legendFormat"], title
        for name, labels in selectors:
            if name in per_secondary:
                assert 'secondary=~"$secondary"' in labels, (title, name)
                assert 'instance=~"$instance"' in labels, (title, name)
    assert checked >= 20


# --------------------------------------------------------------------------
# Containers (structure only: Docker cannot run on the developers' machine).


def test_compose_file() -> None:
    compose = load_yaml(COMPOSE_YML)
    services = compose["services"]
    assert {"primary-db", "secondary-db", "syncd"} <= set(services)
    for name in ("primary-db", "secondary-db"):
        service = services[name]
        assert service["image"] == "surrealdb/surrealdb:v2.3.10"
        assert service["command"][0] == "start"
        assert service["command"][-1] in ("memory", "rocksdb:/data/db")
        assert service["environment"]["SURREAL_PASS"].startswith("${SYNCD_"), name

    # The config's URLs name the database services.
    config = load_yaml(PRODUCTION_YAML)
    for key, service in (("primary_url", "primary-db"), ("secondary_url", "secondary-db")):
        assert f"//{service}:8000" in config[key]

    daemon = services["syncd"]
    build = daemon["build"]
    assert (COMPOSE_YML.parent / build["context"] / build["dockerfile"]).resolve() == DOCKERFILE
    assert "./syncd.production.yaml:/etc/syncd/syncd.yaml:ro" in daemon["volumes"]
    assert any(volume.endswith(":/var/lib/syncd") for volume in daemon["volumes"])
    for variable in ("SYNCD_PRIMARY_PASS", "SYNCD_SECONDARY_PASS"):
        assert daemon["environment"][variable].startswith("${" + variable), variable
    assert "/healthz" in " ".join(daemon["healthcheck"]["test"])
    assert set(daemon["depends_on"]) == {"primary-db", "secondary-db"}

    # Optional Prometheus: behind a profile, and its mounted files exist.
    prometheus = services["prometheus"]
    assert prometheus["profiles"] == ["monitoring"]
    assert prometheus["image"].startswith("prom/prometheus:")
    for volume in prometheus["volumes"]:
        source = volume.split(":", 1)[0]
        if source.startswith("./"):
            assert (COMPOSE_YML.parent / source).is_file(), source

    assert "Docker is not available" in COMPOSE_YML.read_text(encoding="utf-8")


def test_dockerfile() -> None:
    lines = [
        line.strip()
        for line in DOCKERFILE.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    assert lines[0] == "FROM python:3.11-slim"
    users = [line.split(None, 1)[1] for line in lines if line.startswith("USER ")]
    assert users and users[-1].split(":")[0] not in ("root", "0")
    assert any(line.startswith("RUN pip install") for line in lines)
    assert 'ENTRYPOINT ["syncd"]' in lines
    assert 'CMD ["run", "-c", "/etc/syncd/syncd.yaml"]' in lines
    healthcheck = next(line for line in lines if line.startswith('CMD ["python"'))
    assert "/healthz" in healthcheck and "urllib" in healthcheck


# --------------------------------------------------------------------------
# promtool, when installed.

PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(PROMTOOL is None, reason="promtool not installed")


def promtool(*args: str, cwd: Path) -> None:
    assert PROMTOOL is not None
    result = subprocess.run(
        [PROMTOOL, *args], cwd=cwd, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


@needs_promtool
def test_promtool_check_rules() -> None:
    promtool("check", "rules", ALERTS_YML.name, cwd=ALERTS_YML.parent)


@needs_promtool
def test_promtool_alert_unit_tests() -> None:
    promtool("test", "rules", ALERTS_TEST_YML.name, cwd=ALERTS_TEST_YML.parent)


@needs_promtool
@pytest.mark.parametrize("path", [PROMETHEUS_YML, PROMETHEUS_COMPOSE_YML], ids=lambda p: p.name)
def test_promtool_check_config(path: Path) -> None:
    promtool("check", "config", path.name, cwd=path.parent)


@needs_promtool
def test_promtool_parses_dashboard_queries(tmp_path: Path) -> None:
    """Every dashboard query is valid PromQL once Grafana's variables are filled in."""
    rules = [
        {
            "record": f"dashboard:query_{index}",
            "expr": expr.replace("$__rate_interval", "5m")
            .replace("$instance", ".*")
            .replace("$secondary", ".*"),
        }
        for index, expr in enumerate(dashboard_exprs())
    ]
    rule_file = tmp_path / "dashboard_rules.yml"
    rule_file.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    promtool("check", "rules", rule_file.name, cwd=tmp_path)
