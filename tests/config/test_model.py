"""Config: defaults, the example file, environment overrides, and every rejection."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pydantic import SecretStr, ValidationError

from syncd.config import (
    Config,
    TableConfig,
    is_identifier,
    load_config,
    redact_url,
    sdk_url,
)
from syncd.config.model import config_keys
from syncd.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "config" / "syncd.example.yaml"
# The one key without a default: every config names its secondary.
SECONDARY = "ws://archive:8000/rpc"
REQUIRED = {"secondary_url": SECONDARY}


def write(tmp_path: Path, text: str, name: str = "syncd.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def problem(data: dict[str, object], env: dict[str, str] | None = None) -> str:
    """The ConfigError message for ``data``; fails the test if it validates."""
    with pytest.raises(ConfigError) as info:
        Config.from_mapping({**REQUIRED, **data}, env=env, source="t.yaml")
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith("config t.yaml: ")
    return message


# --------------------------------------------------------------------------- defaults


def test_defaults() -> None:
    config = load_config(None, env={"SYNCD_SECONDARY_URL": SECONDARY})
    assert config == Config(secondary_url=SECONDARY)
    assert config.secondary_url == SECONDARY
    assert config.secondary_user == "root"
    assert config.secondary_pass.get_secret_value() == ""
    assert (config.secondary_namespace, config.secondary_database) == ("remembrances", "production")
    assert config.sync_enabled is True
    assert config.sync_retry_interval == 5.0
    assert (config.sync_batch_size, config.sync_max_retries, config.sync_workers) == (100, 3, 4)
    assert (config.health_check_interval, config.reconnect_backoff) == (30.0, 10.0)
    assert config.primary_url == "mem://"
    assert config.primary_user == "root"
    assert config.primary_pass.get_secret_value() == ""
    assert (config.primary_namespace, config.primary_database) == ("remembrances", "production")
    assert config.tables is None
    assert config.state_dir == "./syncd-state"
    assert config.metrics_listen == "127.0.0.1:9464"
    assert config.queue_size == 10000
    assert config.batch_timeout == pytest.approx(0.02)
    assert (config.write_timeout, config.connect_timeout) == (10.0, 5.0)
    assert (config.query_timeout, config.drain_timeout) == (2.0, 30.0)
    assert (config.log_level, config.log_json) == ("info", None)
    assert config.changefeed_retention == 7 * 86400
    assert config.changefeed_auto_enable is True
    assert config.changefeed_poll_interval == pytest.approx(0.05)
    assert config.readyz_down_threshold == 30.0
    assert config.status_lag_threshold == 60.0
    assert config.log_record_ids is False
    assert config.volatile_fields == []


def test_secondary_url_is_required() -> None:
    for data in (None, {}, {"sync_workers": 2}):
        with pytest.raises(ConfigError) as info:
            Config.from_mapping(data, source="t.yaml")
        assert str(info.value) == (
            "config t.yaml: secondary_url: required, where replicated writes go, e.g. "
            '"ws://archive:8000/rpc" (or SYNCD_SECONDARY_URL in the environment, '
            "or a secondaries: list)"
        )
    with pytest.raises(ConfigError, match="secondary_url: required"):
        load_config(None, env={})


@pytest.mark.parametrize("text", ["", "\n", "# only a comment\n", "---\n"])
def test_empty_file_means_defaults_but_the_secondary_must_be_named(
    tmp_path: Path, text: str
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError, match=f"config {path}: secondary_url: required"):
        load_config(path, env={})
    assert load_config(path, env={"SYNCD_SECONDARY_URL": SECONDARY}) == Config(**REQUIRED)


def test_durations_are_float_seconds() -> None:
    config = Config.from_mapping(
        {
            **REQUIRED,
            "sync_retry_interval": "1m30s",
            "write_timeout": 3,
            "batch_timeout": "0",
            "query_timeout": 0.5,
        }
    )
    assert config.sync_retry_interval == 90.0
    assert isinstance(config.write_timeout, float) and config.write_timeout == 3.0
    assert config.batch_timeout == 0.0  # zero is meaningful here: never wait
    assert config.query_timeout == 0.5


# --------------------------------------------------------------------------- example file


def test_example_loads() -> None:
    config = load_config(EXAMPLE, env={})
    assert config.secondary_url == "ws://secondary-db:8000/rpc"
    assert sdk_url(config.secondary("secondary").url) == "ws://secondary-db:8000"
    assert config.secondary_names() == ["secondary"]  # the flat keys: one, named "secondary"
    assert config.state_path == Path("/var/lib/syncd")
    assert config.tables is not None
    assert list(config.tables) == [
        "kv_memories",
        "vector_memories",
        "events",
        "entities",
        "knowledge_base",
    ]
    assert config.table_key("kv_memories") == ["user_id", "key"]
    assert config.table_key("knowledge_base") == ["file_path"]
    assert config.table_key("events") is None
    assert config.table_key("not_listed") is None
    assert config.replicates("events")
    assert not config.replicates("sessions")


def test_example_documents_every_key() -> None:
    text = EXAMPLE.read_text(encoding="utf-8")
    for key in config_keys():
        # secondaries is shown commented out: the example uses the flat form.
        assert f"\n{key}:" in text or f"\n# {key}:" in text, key
        if key not in ("tables", "volatile_fields", "secondaries"):
            assert f"SYNCD_{key.upper()}" in text, key


# --------------------------------------------------------------------------- environment


def test_env_overrides_file(tmp_path: Path) -> None:
    path = write(tmp_path, 'sync_workers: 4\nsecondary_pass: "from-file"\nmetrics_listen: ":1"\n')
    env = {
        "SYNCD_SYNC_WORKERS": "8",
        "SYNCD_SECONDARY_PASS": "from-env",
        "SYNCD_PRIMARY_PASS": "p",
        "SYNCD_SECONDARY_URL": "wss://replica.example.com/rpc",
        "SYNCD_SYNC_ENABLED": "false",
        "SYNCD_WRITE_TIMEOUT": "250ms",
        "SYNCD_METRICS_LISTEN": "",  # the environment's way to say null
        "SYNCD_LOG_JSON": "auto",
        "SYNCD_LOG_LEVEL": "DEBUG",
        "SYNCD_CONFIG": "/ignored/here.yaml",  # names the file, not a key
        "UNRELATED": "x",
    }
    config = load_config(path, env=env)
    assert config.sync_workers == 8
    assert config.secondary_pass.get_secret_value() == "from-env"
    assert config.primary_pass.get_secret_value() == "p"
    assert config.secondary_url == "wss://replica.example.com/rpc"
    assert config.sync_enabled is False
    assert config.write_timeout == 0.25
    assert config.metrics_listen is None
    assert config.log_json is None
    assert config.log_level == "debug"


def test_env_is_read_from_os_environ_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SYNCD_SECONDARY_PASS", "s3cret")
    monkeypatch.setenv("SYNCD_QUEUE_SIZE", "5")
    monkeypatch.setenv("SYNCD_SECONDARY_URL", SECONDARY)
    config = load_config(None)
    assert config.secondary_pass.get_secret_value() == "s3cret"
    assert config.queue_size == 5


def test_from_mapping_ignores_environment_unless_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SYNCD_SYNC_WORKERS", "9")
    assert Config.from_mapping(REQUIRED).sync_workers == 4


@pytest.mark.parametrize("name", ["SYNCD_TABLES", "SYNCD_VOLATILE_FIELDS", "SYNCD_SECONDARIES"])
def test_structured_keys_do_not_come_from_env(name: str) -> None:
    message = problem({}, env={name: "events"})
    assert f"{name}: {name[6:].lower()} comes only from the config file" in message


@pytest.mark.parametrize(
    ("name", "hint"),
    [
        ("SYNCD_SYNC_WORKER", "SYNCD_SYNC_WORKERS"),
        ("SYNCD_SECONDARY_PASSWORD", "SYNCD_SECONDARY_PASS"),
        ("SYNCD_CONFIGG", "SYNCD_CONFIG"),
    ],
)
def test_unknown_env_variable_is_refused_with_a_hint(name: str, hint: str) -> None:
    message = problem({}, env={name: "x"})
    expected = f'unknown environment variable "{name}" (did you mean "{hint}"?)'
    assert message == f"config t.yaml: {expected}"
    assert '"x"' not in message  # a value might be a password


def test_env_variables_that_are_not_keys_are_accepted() -> None:
    env = {
        "SYNCD_CONFIG": "syncd.yaml",
        "SYNCD_DEVSERVER_ENGINE": "3",
        "SYNCD_DEVSERVER_PASS": "p",
        "SYNCD_BENCH_NO_PIN": "1",
        "SYNCD_SECONDARIES_ARCHIVE_PASS": "p",
        "SYNCD_SECONDARY_PASS": "p",
        "SYNCD_CONTROL_TOKEN": "t",
        "OTHER_SYNC_WORKER": "8",
    }
    assert Config.from_mapping(REQUIRED, env=env).secondary_pass.get_secret_value() == "p"


def test_bad_env_value_names_the_variable() -> None:
    message = problem({"sync_workers": 2}, env={"SYNCD_SYNC_WORKERS": "many"})
    assert 'sync_workers (from SYNCD_SYNC_WORKERS): must be an integer >= 1 (got "many")' in message


@pytest.mark.parametrize(("text", "value"), [("true", True), ("0", False), ("off", False)])
def test_env_booleans(text: str, value: bool) -> None:
    config = Config.from_mapping(REQUIRED, env={"SYNCD_CHANGEFEED_AUTO_ENABLE": text})
    assert config.changefeed_auto_enable is value


# --------------------------------------------------------------------------- tables


def test_tables_shorthands() -> None:
    config = Config.from_mapping(
        {**REQUIRED, "tables": {"events": None, "kv": {"key": ["user_id"]}}}
    )
    assert config.tables == {"events": TableConfig(), "kv": TableConfig(key=["user_id"])}
    listed = Config.from_mapping({**REQUIRED, "tables": ["events", "entities"]})
    assert listed.tables == {"events": TableConfig(), "entities": TableConfig()}
    assert Config.from_mapping({**REQUIRED, "tables": None}).tables is None


def test_volatile_fields_merge() -> None:
    config = Config.from_mapping(
        {
            **REQUIRED,
            "volatile_fields": ["updated_at"],
            "tables": {"events": {"volatile_fields": ["seen_at", "updated_at"]}, "kv": {}},
        }
    )
    assert config.table_volatile_fields("events") == ["updated_at", "seen_at"]
    assert config.table_volatile_fields("kv") == ["updated_at"]
    assert config.table_volatile_fields("other") == ["updated_at"]


@pytest.mark.parametrize(
    ("name", "ok"),
    [
        ("events", True),
        ("_x", True),
        ("kv_2", True),
        ("2kv", False),
        ("bad-name", False),
        ("", False),
    ],
)
def test_is_identifier(name: str, ok: bool) -> None:
    assert is_identifier(name) is ok


# --------------------------------------------------------------------------- URLs and listen


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("ws://h:8000/rpc", "ws://h:8000"),
        ("ws://h:8000", "ws://h:8000"),
        ("wss://h/rpc/", "wss://h"),
        ("http://h:8000/rpc", "http://h:8000"),
        ("ws://h:8000/surreal/rpc", "ws://h:8000/surreal"),
        ("ws://h:8000/rpc/rpc", "ws://h:8000/rpc"),  # exactly one is stripped
        ("mem://", "mem://"),
        ("surrealkv://data/rpc", "surrealkv://data/rpc"),  # embedded: untouched
    ],
)
def test_sdk_url(url: str, expected: str) -> None:
    assert sdk_url(url) == expected


@pytest.mark.parametrize(
    "url",
    [
        "ws://db:8000/rpc",
        "wss://db.example.com",
        "http://10.0.0.1:8000",
        "https://db.example.com/rpc",
        "mem://",
        "memory://",
        "surrealkv://var/lib/data",
        "file:///var/lib/data",
        "ws://[::1]:8000/rpc",
    ],
)
def test_accepted_urls(url: str) -> None:
    assert Config.from_mapping({**REQUIRED, "secondary_url": url}).secondary_url == url


def test_redact_url() -> None:
    assert redact_url("ws://u:pw@h:8000/rpc") == "ws://u:***@h:8000/rpc"
    assert redact_url("ws://h:8000/rpc") == "ws://h:8000/rpc"


@pytest.mark.parametrize(
    ("listen", "address"),
    [
        ("127.0.0.1:9464", ("127.0.0.1", 9464)),
        ("0.0.0.0:0", ("0.0.0.0", 0)),
        ("[::1]:9464", ("::1", 9464)),
        ("localhost:65535", ("localhost", 65535)),
        (None, None),
        ("", None),
    ],
)
def test_metrics_address(listen: str | None, address: tuple[str, int] | None) -> None:
    assert Config.from_mapping({**REQUIRED, "metrics_listen": listen}).metrics_address == address


# --------------------------------------------------------------------------- rejections


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"sync_wokers": 4}, 'unknown key "sync_wokers" (did you mean "sync_workers"?)'),
        ({"zzz": 1}, 'unknown key "zzz"'),
        ({"sync_workers": "four"}, 'sync_workers: must be an integer >= 1 (got "four")'),
        ({"sync_workers": 0}, "sync_workers: must be an integer >= 1 (got 0)"),
        ({"sync_workers": 2.5}, "sync_workers: must be an integer >= 1 (got 2.5)"),
        ({"sync_workers": True}, "sync_workers: must be an integer >= 1 (got true)"),
        ({"sync_max_retries": -1}, "sync_max_retries: must be an integer >= 0 (got -1)"),
        ({"queue_size": 0}, "queue_size: must be an integer >= 1"),
        ({"sync_batch_size": None}, "sync_batch_size: must be an integer >= 1 (got null)"),
        ({"sync_retry_interval": "5x"}, 'sync_retry_interval: invalid duration "5x"'),
        ({"write_timeout": "-1s"}, 'write_timeout: must be a duration > 0 such as "5s"'),
        ({"write_timeout": 0}, "write_timeout: must be a duration > 0"),
        ({"connect_timeout": "0s"}, "connect_timeout: must be a duration > 0"),
        ({"batch_timeout": -0.1}, "batch_timeout: must be a duration >= 0"),
        ({"drain_timeout": True}, "drain_timeout: must be a duration > 0"),
        ({"query_timeout": [1]}, "query_timeout: must be a duration > 0"),
        ({"changefeed_retention": float("inf")}, "changefeed_retention: must be a duration > 0"),
        ({"sync_enabled": "maybe"}, 'sync_enabled: must be true or false (got "maybe")'),
        ({"log_json": 3}, "log_json: must be true, false or null for auto (got 3)"),
        (
            {"log_level": "verbose"},
            'log_level: must be one of debug, info, warning, error (got "verbose")',
        ),
        (
            {"secondary_url": "ftp://h/x"},
            'secondary_url: scheme "ftp" is not supported (use ws, wss,',
        ),
        ({"primary_url": "ws:///rpc"}, "primary_url: a ws:// URL needs a host"),
        ({"primary_url": "https://:8000"}, "primary_url: a https:// URL needs a host"),
        ({"secondary_url": "db:8000"}, "secondary_url: must be a URL with a scheme"),
        ({"secondary_url": "ws://h:99999/rpc"}, "secondary_url: is not a valid URL"),
        ({"secondary_url": 8000}, "secondary_url: must be a URL"),
        ({"secondary_url": ""}, "secondary_url: must be a URL"),
        ({"metrics_listen": "9464"}, 'metrics_listen: must be "host:port" with a port 0-65535'),
        ({"metrics_listen": "h:65536"}, "metrics_listen: must be"),
        ({"metrics_listen": ":9464"}, "metrics_listen: must be"),
        ({"metrics_listen": "h:port"}, "metrics_listen: must be"),
        ({"metrics_listen": 9464}, "metrics_listen: must be"),
        ({"secondary_database": 2024}, "secondary_database: must be a string; quote it in YAML"),
        ({"secondary_namespace": " "}, "secondary_namespace: must not be empty"),
        ({"state_dir": ""}, "state_dir: must not be empty"),
        ({"tables": {"bad-name": {}}}, "tables.bad-name: is not a valid table name"),
        ({"tables": {"2fast": {}}}, "tables.2fast: is not a valid table name"),
        ({"tables": {}}, "tables: must name at least one table"),
        ({"tables": "events"}, "tables: must be a mapping of table name to options"),
        ({"tables": [["events"]]}, "tables: must be a mapping of table name to options"),
        ({"tables": {"kv": {"key": []}}}, "tables.kv.key: must be a non-empty list of field names"),
        ({"tables": {"kv": {"key": "user_id"}}}, "tables.kv.key: must be a non-empty list"),
        (
            {"tables": {"kv": {"key": ["user-id"]}}},
            'tables.kv.key: "user-id" is not a valid field name',
        ),
        ({"tables": {"kv": {"key": ["a", "a"]}}}, 'tables.kv.key: lists "a" more than once'),
        ({"tables": {"kv": {"kye": ["a"]}}}, 'unknown key "tables.kv.kye" (did you mean "key"?)'),
        ({"tables": {"kv": "yes"}}, 'tables.kv: must be a mapping (got "yes")'),
        ({"volatile_fields": "updated_at"}, "volatile_fields: must be a list of field names"),
        ({"volatile_fields": [""]}, 'volatile_fields: "" is not a valid field name'),
        (
            {"primary_url": "ws://db:8000/rpc", "secondary_url": "WS://DB:8000"},
            "secondary_url: same server, namespace and database as the primary",
        ),
    ],
)
def test_rejections(data: dict[str, object], expected: str) -> None:
    assert expected in problem(data)


def test_secondary_place_defaults_to_the_primarys() -> None:
    config = Config.from_mapping(
        {**REQUIRED, "primary_namespace": "app", "primary_database": "main"}
    )
    assert (config.secondary_namespace, config.secondary_database) == ("app", "main")
    # From the environment too: SYNCD_PRIMARY_* is applied before the default is taken.
    env = {"SYNCD_PRIMARY_NAMESPACE": "shop", "SYNCD_PRIMARY_DATABASE": "orders"}
    config = Config.from_mapping(REQUIRED, env=env)
    assert (config.secondary_namespace, config.secondary_database) == ("shop", "orders")


def test_explicit_secondary_place_stands() -> None:
    config = Config.from_mapping(
        {**REQUIRED, "primary_namespace": "app", "secondary_database": "archive"}
    )
    assert (config.secondary_namespace, config.secondary_database) == ("app", "archive")
    env = {"SYNCD_SECONDARY_NAMESPACE": "cold", "SYNCD_PRIMARY_NAMESPACE": "app"}
    assert Config.from_mapping(REQUIRED, env=env).secondary_namespace == "cold"


def test_listed_secondaries_follow_the_primary_unless_told() -> None:
    config = Config.from_mapping(
        {
            "primary_namespace": "app",
            "primary_database": "main",
            "secondaries": [
                {"name": "a", "url": "ws://a:8000"},
                {"name": "b", "url": "ws://b:8000", "namespace": "x", "priority": 1},
            ],
        }
    )
    a, b = config.secondary("a"), config.secondary("b")
    assert (a.namespace, a.database) == ("app", "main")
    assert (b.namespace, b.database) == ("x", "main")


def test_same_server_other_database_is_fine() -> None:
    config = Config.from_mapping(
        {
            **REQUIRED,
            "primary_url": "ws://db:8000/rpc",
            "secondary_url": "ws://db:8000/rpc",
            "secondary_database": "replica",
        }
    )
    assert config.secondary_database == "replica"
    # Two embedded in-memory databases are distinct.
    assert Config.from_mapping({**REQUIRED, "secondary_url": "mem://"}).primary_url == "mem://"


def test_several_problems_on_one_line() -> None:
    message = problem({"sync_workers": 0, "log_level": "loud", "nope": 1})
    assert message.count("; ") == 2
    assert "sync_workers:" in message and "log_level:" in message and '"nope"' in message


def test_top_level_must_be_a_mapping() -> None:
    with pytest.raises(ConfigError, match=r"top level must be a mapping .* \(got a list\)"):
        Config.from_mapping([1, 2])  # type: ignore[arg-type]


def test_non_string_top_level_key_is_an_unknown_key() -> None:
    assert 'unknown key "1"' in problem({1: "x"})  # type: ignore[dict-item]


# --------------------------------------------------------------------------- secrets


@pytest.mark.parametrize("key", ["secondary_pass", "primary_pass", "control_token"])
@pytest.mark.parametrize(
    "value", [987654321, 3.14159265, ["hunter2hunter2"], {"pw": "hunter2hunter2"}]
)
def test_password_values_are_never_echoed(key: str, value: object) -> None:
    message = problem({key: value})
    assert f"{key}: must be a string" in message
    for secret in ("987654321", "3.14159265", "hunter2hunter2"):
        assert secret not in message


def test_validation_error_is_not_chained() -> None:
    # The pydantic error's own text includes input values (passwords too);
    # a traceback of the ConfigError must not print it.
    with pytest.raises(ConfigError) as info:
        Config.from_mapping({**REQUIRED, "secondary_pass": 12345678, "sync_workers": 0})
    assert info.value.__cause__ is None
    assert info.value.__suppress_context__


def test_summary_masks_secrets() -> None:
    config = Config.from_mapping(
        {
            **REQUIRED,
            "secondary_pass": "hunter2hunter2",
            "secondary_url": "ws://me:urlsecret@db:8000/rpc",
            "tables": {"kv": {"key": ["user_id"]}},
        }
    )
    summary = config.summary()
    assert summary["secondary_pass"] == "***"
    assert summary["primary_pass"] is None
    assert summary["secondary_url"] == "ws://me:***@db:8000/rpc"
    assert summary["sync_retry_interval"] == "5s"
    assert summary["batch_timeout"] == "20ms"
    assert summary["tables"] == {
        "kv": {
            "key": ["user_id"],
            "volatile_fields": [],
            "version": None,
            "prefer": "primary",
            "schema": None,
            "events": False,
            "unmergeable": "raise",
        }
    }
    assert summary["schema"] == {"mode": "mirror", "mirror_removals": False}
    assert list(summary) == config_keys()
    rendered = repr(summary) + repr(config) + str(config)
    assert "hunter2hunter2" not in rendered
    assert "urlsecret" not in repr(summary)


def test_passwords_are_secretstr() -> None:
    config = Config.from_mapping({**REQUIRED, "primary_pass": "pw"})
    assert isinstance(config.primary_pass, SecretStr)
    assert config.primary_pass.get_secret_value() == "pw"


def test_frozen() -> None:
    config = Config(**REQUIRED)
    with pytest.raises(ValidationError):
        # setattr: with or without the pydantic mypy plugin, this type-checks.
        setattr(config, "sync_workers", 9)  # noqa: B010


# --------------------------------------------------------------------------- files


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.yaml"
    with pytest.raises(ConfigError, match=r"^config .*nope\.yaml: file not found$"):
        load_config(path, env={})


def test_directory(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="is a directory"):
        load_config(tmp_path, env={})


def test_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "bin.yaml"
    path.write_bytes(b"sync_workers: \xff\n")
    with pytest.raises(ConfigError, match=r"bin\.yaml: not UTF-8 text"):
        load_config(path, env={})


def test_yaml_error_has_line_number(tmp_path: Path) -> None:
    path = write(tmp_path, "sync_workers: 4\nsync_batch_size: [1, 2\nlog_level: info\n")
    with pytest.raises(ConfigError, match=r"syncd\.yaml: invalid YAML at line 3, column \d+: "):
        load_config(path, env={})


def test_yaml_error_does_not_quote_the_line(tmp_path: Path) -> None:
    path = write(tmp_path, 'secondary_pass: "hunter2hunter2\nsync_workers: 4\n')
    with pytest.raises(ConfigError) as info:
        load_config(path, env={})
    assert "hunter2hunter2" not in str(info.value)
    assert "\n" not in str(info.value)


def test_duplicate_keys_are_rejected(tmp_path: Path) -> None:
    path = write(tmp_path, "sync_workers: 4\n\nsync_workers: 8\n")
    with pytest.raises(ConfigError, match=r'line 3.*duplicate key "sync_workers" .*line 1'):
        load_config(path, env={})


@pytest.mark.parametrize(
    ("text", "kind"), [("- a\n- b\n", "a list"), ("hello\n", "a string"), ("42\n", "a number")]
)
def test_top_level_not_a_mapping(tmp_path: Path, text: str, kind: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(
        ConfigError, match=rf"syncd\.yaml: top level must be a mapping .*\(got {kind}\)"
    ):
        load_config(path, env={})


def test_file_errors_name_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, f"secondary_url: {SECONDARY}\nsync_workers: 0\n", name="prod.yaml")
    with pytest.raises(ConfigError, match=r"^config .*prod\.yaml: sync_workers: "):
        load_config(path, env={})


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (0, 0),
        (4096, 4096),
        ("4096", 4096),
        ("512MiB", 512 << 20),
        ("1GiB", 1 << 30),
        ("10 kb", 10_000),
    ],
)
def test_spool_max_bytes_takes_sizes(value: object, expected: int) -> None:
    assert Config.from_mapping({**REQUIRED, "spool_max_bytes": value}).spool_max_bytes == expected


def test_spool_keys_defaults_and_rejections() -> None:
    config = Config.from_mapping(REQUIRED)
    assert (config.spool_max_bytes, config.capture_fsync_interval) == (1 << 30, 0.5)
    with pytest.raises(ConfigError, match="spool_max_bytes: must be a size in bytes >= 0 such as"):
        Config.from_mapping({**REQUIRED, "spool_max_bytes": "lots"})
    with pytest.raises(ConfigError, match="spool_max_bytes: must be a size"):
        Config.from_mapping({**REQUIRED, "spool_max_bytes": -1})
    with pytest.raises(ConfigError, match="capture_fsync_interval"):
        Config.from_mapping({**REQUIRED, "capture_fsync_interval": "0s"})


def test_control_token_is_a_secret_from_the_environment_too() -> None:
    config = Config.from_mapping(REQUIRED, env={"SYNCD_CONTROL_TOKEN": "tok-hunter2hunter2"})
    assert isinstance(config.control_token, SecretStr)
    assert config.control_token.get_secret_value() == "tok-hunter2hunter2"
    assert config.summary()["control_token"] == "***"
    assert "tok-hunter2hunter2" not in repr(config) + str(config.summary())
    assert Config.from_mapping(REQUIRED).summary()["control_token"] is None


def test_a_flat_password_left_in_the_environment_is_named_with_a_list() -> None:
    data = {"secondaries": [{"name": "archive", "url": "ws://archive:8000"}]}
    with pytest.raises(ConfigError) as info:
        Config.from_mapping(data, env={"SYNCD_SECONDARY_PASS": "hunter2"})
    message = str(info.value)
    assert "SYNCD_SECONDARY_PASS" in message and "SYNCD_SECONDARIES_<NAME>_PASS" in message
    assert "hunter2" not in message


def test_secondaries_list_passwords_from_env_and_credentials(tmp_path: Path) -> None:
    (tmp_path / "secondaries_archive_pass").write_text("from-credential\n")
    (tmp_path / "secondaries_b-2_pass").write_text("cred-b")
    data = {
        "secondaries": [
            {"name": "archive", "url": "ws://archive:8000", "pass": "from-file", "priority": 2},
            {"name": "b-2", "url": "ws://b:8000", "priority": 1},
        ]
    }
    env = {"CREDENTIALS_DIRECTORY": str(tmp_path), "SYNCD_SECONDARIES_B_2_PASS": "from-env"}
    config = Config.from_mapping(data, env=env)
    assert config.secondary_names() == ["b-2", "archive"]  # lowest priority number first
    archive, b2 = config.secondary("archive"), config.secondary("b-2")
    assert archive.password.get_secret_value() == "from-credential"  # over the file
    assert b2.password.get_secret_value() == "from-env"  # over the credential
    assert config.secondary_state("archive") == config.state_path / "secondaries" / "archive"
    shown = repr(config.summary())
    assert "from-credential" not in shown and "from-env" not in shown and "***" in shown
    # The library's default reads no environment: the file's password stands.
    assert Config.from_mapping(data).secondary("archive").password.get_secret_value() == (
        "from-file"
    )


@pytest.mark.parametrize(
    ("secondaries", "problem"),
    [
        ([], "must be a list of secondaries"),
        ("archive", "must be a list of secondaries"),
        ([{"name": "Archive", "url": "ws://a:1"}], "secondaries[0].name: must be lower-case"),
        ([{"name": "a", "url": "ws://a:1"}, {"name": "a", "url": "ws://b:1"}], "given twice"),
        ([{"name": "a", "url": "ws://a:1", "priority": "high"}], "secondaries[0].priority"),
        ([{"name": "a", "url": "ws://a:1", "colour": 1}], 'unknown key "secondaries[0].colour"'),
        ([{"name": "a"}], "secondaries[0].url"),
    ],
)
def test_a_bad_secondaries_list_is_one_line_naming_the_problem(
    secondaries: object, problem: str
) -> None:
    with pytest.raises(ConfigError) as info:
        Config.from_mapping({"secondaries": secondaries})
    assert problem in str(info.value) and "\n" not in str(info.value)


def test_both_forms_of_secondaries_are_refused() -> None:
    with pytest.raises(ConfigError, match=r"not both \(secondary_url also set"):
        Config.from_mapping(
            {"secondary_url": "ws://a:1", "secondaries": [{"name": "b", "url": "ws://b:1"}]}
        )


def test_the_example_config_documents_every_key() -> None:
    text = EXAMPLE.read_text(encoding="utf-8")
    documented = set(re.findall(r"^#?\s*([a-z_]+):", text, re.M))
    missing = [k for k in config_keys() if k not in documented]
    missing += [f"tables.*.{k}" for k in config_keys(TableConfig) if k not in documented]
    assert not missing, f"config/syncd.example.yaml says nothing of {missing}"
    load_config(EXAMPLE, env={})  # and it loads
