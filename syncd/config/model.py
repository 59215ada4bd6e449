"""syncd's configuration: a flat YAML file, overridden by ``SYNCD_*`` environment variables.

:func:`load_config` reads the file, applies the environment, validates, and
returns a frozen :class:`Config`. Every problem is reported as one
:class:`~syncd.errors.ConfigError` whose message has one clause per problem,
each naming the key (``config syncd.yaml: sync_workers: must be an integer
>= 1 (got "four")``), joined with ``"; "`` so the CLI can print it as a single
line. _Password values never appear in a message, a ``repr`` or a summary.

Environment: ``SYNCD_<KEY>`` (upper case) overrides ``<key>`` for every scalar
key (:func:`syncd.config.load.apply_env`, which says why not pydantic-settings);
``tables``, ``volatile_fields`` and ``secondaries`` come only from the file,
the secondaries' passwords also from ``SYNCD_SECONDARIES_<NAME>_PASS`` or a
systemd credential (:mod:`syncd.config.secondaries`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    model_validator,
)

from syncd.config.load import apply_env, describe, read_yaml, unknown_env
from syncd.config.schema import SchemaConfig, TablePolicy, schema_value
from syncd.config.secondaries import (
    FLAT_NAME,
    Endpoint,
    SecondaryConfig,
    apply_secret_sources,
    env_conflict,
    follow_primary,
    form_problem,
    into_itself,
    secondaries_value,
)
from syncd.config.show import summarize
from syncd.config.tables import TableConfig
from syncd.config.values import (
    ENV_PREFIX,
    NETWORK_SCHEMES,
    SUPPORTED_SCHEMES,
    AtLeastOne,
    AtLeastZero,
    Bool,
    ByteSize,
    Duration,
    DurationOrZero,
    FieldNames,
    LogLevel,
    Name,
    Password,
    TableName,
    Text,
    Url,
    is_identifier,
    kind_of,
    listen_value,
    optional_bool,
    redact_url,
    sdk_url,
    tables_value,
)
from syncd.errors import ConfigError
from syncd.keys import KeyRule

__all__ = [
    "ENV_PREFIX",
    "NETWORK_SCHEMES",
    "SUPPORTED_SCHEMES",
    "Config",
    "Endpoint",
    "SchemaConfig",
    "SecondaryConfig",
    "TableConfig",
    "is_identifier",
    "load_config",
    "redact_url",
    "sdk_url",
]


#: Tables syncd keeps for itself on the primary are never replicated.
INTERNAL_PREFIX = "syncd_"

# --------------------------------------------------------------------------
# Models.

#: The primary's namespace and database when the config does not name them.
PRIMARY_PLACE = {"primary_namespace": "remembrances", "primary_database": "production"}


class Config(BaseModel):
    """The validated, immutable configuration of syncd (daemon, library and tools).

    Durations are ``float`` seconds. Build one with :func:`load_config` (file +
    environment) or :meth:`Config.from_mapping` (a dict, e.g. in tests).
    """

    model_config = ConfigDict(
        extra="forbid", frozen=True, use_attribute_docstrings=True, populate_by_name=True
    )

    # Keys of the original module: same names, meanings and defaults.
    secondary_url: Url | None = None
    """Where replicated writes go (``ws``/``wss``/``http``/``https``, or embedded); required
    unless ``secondaries`` lists them."""
    secondary_user: Text = "root"
    """User to sign in to the secondary as."""
    secondary_pass: Password = SecretStr("")
    """Password for ``secondary_user``; empty: do not sign in."""
    secondary_namespace: Name = "remembrances"
    """Namespace on the secondary; not given: ``primary_namespace``."""
    secondary_database: Name = "production"
    """Database on the secondary; not given: ``primary_database``."""
    sync_enabled: Bool = True
    """Master switch: false means writes go to the primary only and nothing is replicated."""
    sync_retry_interval: Duration = 5.0
    """Wait between attempts to write a failed operation to the secondary."""
    sync_batch_size: AtLeastOne = 100
    """Most operations a worker writes in one round trip."""
    sync_max_retries: AtLeastZero = 3
    """Retries of an operation the secondary rejects before it goes to the dead-letter file."""
    sync_workers: AtLeastOne = 4
    """Concurrent writers to the secondary."""
    health_check_interval: Duration = 30.0
    """How often the secondary is pinged."""
    reconnect_backoff: Duration = 10.0
    """Wait before reconnecting after the secondary connection is lost."""

    # The primary: used by the daemon and the tools; the library uses the app's own connection.
    primary_url: Url = "mem://"
    """The database being replicated; ``syncd run`` refuses the in-process ``mem://``."""
    primary_user: Text = "root"
    """User to sign in to the primary as."""
    primary_pass: Password = SecretStr("")
    """Password for ``primary_user``; empty: do not sign in."""
    primary_namespace: Name = PRIMARY_PLACE["primary_namespace"]
    """Namespace on the primary (and every secondary that names none)."""
    primary_database: Name = PRIMARY_PLACE["primary_database"]
    """Database on the primary (and every secondary that names none)."""

    secondaries: Annotated[list[SecondaryConfig] | None, BeforeValidator(secondaries_value)] = None
    """Several secondaries (instead of the flat ``secondary_*`` keys), each named."""
    tables: Annotated[dict[TableName, TableConfig] | None, BeforeValidator(tables_value)] = None
    """Tables to replicate and their options; ``None``: every table of the primary database."""
    state_dir: Name = "./syncd-state"
    """Directory of the checkpoint, spool and dead-letter file (relative: to the working dir)."""
    metrics_listen: Annotated[str | None, BeforeValidator(listen_value)] = "127.0.0.1:9464"
    """``host:port`` serving /metrics, /healthz and /readyz; ``None``: disabled."""
    control_token: Password = SecretStr("")
    """Bearer token POST /pause and /resume require from every client; empty: loopback only."""

    queue_size: AtLeastOne = 10000
    """Operations held in memory; beyond that they wait in the on-disk spool only."""
    spool_max_bytes: ByteSize = 1 << 30
    """Bound on the spool; 0: none. Beyond it the library records tables to re-sync."""
    capture_fsync_interval: Duration = 0.5
    """How often the spool is fsynced: what a power loss may cost (a kill costs nothing)."""
    batch_timeout: DurationOrZero = 0.02
    """How long a worker waits to fill a batch before writing a partial one."""
    write_timeout: Duration = 10.0
    """Deadline on each write round trip to the secondary."""
    connect_timeout: Duration = 5.0
    """Deadline on connecting and signing in to either database."""
    query_timeout: Duration = 2.0
    """Deadline on the secondary half of a merged read."""
    merge_max_rows: AtLeastOne = 100000
    """Most rows a merged read takes from one database; a merge needing more raises
    ``MergeUnsupported`` instead of exhausting memory."""
    drain_timeout: Duration = 30.0
    """On clean shutdown, how long to keep writing queued operations."""
    log_level: LogLevel = "info"
    """``debug``, ``info``, ``warning`` or ``error``."""
    log_json: Annotated[bool | None, BeforeValidator(optional_bool)] = None
    """JSON log lines; ``None``: JSON when stdout is not a TTY."""
    changefeed_retention: Duration = 7 * 86400.0
    """How long the primary keeps changefeed entries (the daemon's catch-up window)."""
    changefeed_auto_enable: Bool = True
    """Define changefeeds on replicated tables that lack one."""
    changefeed_poll_interval: Duration = 0.05
    """Pause between changefeed reads when the last read was empty (50 ms: a write
    landing just after an empty read waits at most that long; see BENCHMARKS.md)."""
    readyz_down_threshold: Duration = 30.0
    """/readyz reports not ready once the secondary has been unreachable this long."""
    status_lag_threshold: Duration = 60.0
    """``syncd status`` reports degraded (exit 1) once the replication lag exceeds this."""
    log_summary_interval: DurationOrZero = 60.0
    """How often ``syncd run`` logs one ``replication_summary`` line (applied, lag,
    backlog, each secondary's state) at info level; ``0``: never."""
    log_record_ids: Bool = False
    """Log record ids and natural keys (debugging); by default only a hash of the key."""
    volatile_fields: FieldNames = []
    """Fields ``verify`` ignores in every table (timestamps the secondary sets, etc.)."""
    # Spelled ``schema`` in YAML (pydantic's BaseModel has a ``schema`` of its own).
    schema_: Annotated[SchemaConfig, BeforeValidator(schema_value)] = Field(
        default_factory=SchemaConfig, alias="schema"
    )
    """``mirror`` (default) or ``off``: the primary's definitions reach every secondary;
    long form ``{mode: mirror, mirror_removals: true}``."""
    schema_poll_interval: Duration = 10.0
    """How often the daemon reads the primary's definitions for new or changed ones."""

    @model_validator(mode="before")
    @classmethod
    def _secondaries_follow_the_primary(cls, data: object) -> object:
        # A secondary's namespace and database not given are the primary's:
        # the data lands under the names the application uses, not under the
        # original module's "remembrances"/"production".
        if not isinstance(data, Mapping):
            return data
        return follow_primary(data, PRIMARY_PLACE)

    @model_validator(mode="after")
    def _secondaries_well_formed(self) -> Config:
        flat = sorted(n for n in self.model_fields_set if n.startswith("secondary_"))
        listed = self.secondaries is not None
        if (
            listed
            and self.secondary_url is not None
            and self.secondaries == [self._flat_secondary()]
        ):
            listed = False  # a config dumped and loaded again: the list is the flat keys'
        problem = form_problem(listed, flat, self.secondary_url is not None)
        if problem is not None:
            raise ValueError(problem)
        if not listed:
            # The flat keys are one secondary named FLAT_NAME: from here on every
            # part reads one list, whichever form the file used.
            object.__setattr__(self, "secondaries", [self._flat_secondary()])
        if urlsplit(self.primary_url).scheme.lower() in NETWORK_SCHEMES:
            # Two "mem://" URLs are two separate embedded databases: only a server can repeat.
            primary = (sdk_url(self.primary_url), self.primary_namespace, self.primary_database)
            problem = into_itself(primary, self.secondary_list(), flat=self.is_flat)
        if problem is not None:
            raise ValueError(problem)
        return self

    def _flat_secondary(self) -> SecondaryConfig:
        return SecondaryConfig.model_validate(
            {
                "name": FLAT_NAME,
                "url": self.secondary_url,
                "user": self.secondary_user,
                "pass": self.secondary_pass,
                "namespace": self.secondary_namespace,
                "database": self.secondary_database,
            }
        )

    # ---------------------------------------------------------------- builders

    @classmethod
    def from_mapping(
        cls,
        data: Mapping[str, object] | None,
        *,
        env: Mapping[str, str] | None = None,
        source: str | None = None,
    ) -> Config:
        """Validate ``data`` (the YAML file's mapping) into a :class:`Config`.

        ``env`` (e.g. ``os.environ``) overrides scalar keys through
        ``SYNCD_<KEY>`` variables; by default the environment is not read, so
        a library caller gets exactly what it passed. ``source`` names the
        origin in error messages (``config <source>: ...``).

        Raises:
            ConfigError: one message listing every problem, each naming its key.
        """
        prefix = f"config {source}: " if source else "config: "
        if data is None:
            data = {}
        if not isinstance(data, Mapping):
            raise ConfigError(
                f"{prefix}top level must be a mapping of keys to values (got {kind_of(data)})"
            )
        # str(): YAML allows `1: x` or `null: x`; report those as unknown keys, not a crash.
        merged: dict[str, object] = {str(key): value for key, value in data.items()}
        from_env: set[str] = set()
        if env is not None:
            stray = unknown_env(env, config_keys())
            if stray is not None:
                raise ConfigError(prefix + stray)
            try:
                apply_secret_sources(merged, env)
            except ValueError as exc:
                raise ConfigError(f"{prefix}{exc}") from None
            from_env = apply_env(merged, env, config_keys())
            conflict = env_conflict(merged.get("secondaries") is not None, from_env)
            if conflict is not None:
                raise ConfigError(prefix + conflict)
        try:
            return cls.model_validate(merged)
        except ValidationError as exc:
            problems = [
                describe(error, from_env, config_keys(), config_keys(TableConfig))
                for error in exc.errors()
            ]
            # from None: the ValidationError's own text carries input values,
            # passwords included, and would show up in any traceback.
            raise ConfigError(prefix + "; ".join(problems)) from None

    # ---------------------------------------------------------------- derived

    @property
    def state_path(self) -> Path:
        """``state_dir`` as a path (``~`` expanded)."""
        return Path(self.state_dir).expanduser()

    @property
    def metrics_address(self) -> tuple[str, int] | None:
        """``metrics_listen`` as ``(host, port)`` for a server to bind, or ``None`` if disabled."""
        if self.metrics_listen is None:
            return None
        host, _, port = self.metrics_listen.rpartition(":")
        return host.strip("[]"), int(port)

    def secondary_list(self) -> list[SecondaryConfig]:
        """Every secondary, lowest priority number first (the flat keys: one, ``secondary``)."""
        assert self.secondaries is not None  # filled from the flat keys at validation
        return sorted(self.secondaries, key=lambda s: s.priority)

    @property
    def is_flat(self) -> bool:
        """Whether the file used the flat ``secondary_*`` keys (one secondary, ``secondary``)."""
        return self.secondary_url is not None

    def secondary_names(self) -> list[str]:
        """The secondaries' names, lowest priority number first."""
        return [s.name for s in self.secondary_list()]

    def secondary(self, name: str) -> SecondaryConfig:
        """Secondary ``name``'s own settings (``KeyError`` for an unknown name)."""
        for secondary in self.secondary_list():
            if secondary.name == name:
                return secondary
        raise KeyError(name)

    @property
    def primary(self) -> Endpoint:
        """The primary's connection settings (the ``primary_*`` keys)."""
        return Endpoint.model_validate(
            {
                "url": self.primary_url,
                "user": self.primary_user,
                "pass": self.primary_pass,
                "namespace": self.primary_namespace,
                "database": self.primary_database,
            }
        )

    def secondary_state(self, name: str) -> Path:
        """Where secondary ``name`` keeps its spool, dead letters and re-sync ledger.

        The one flat secondary keeps them in ``state_dir`` itself (where they
        always were); named ones under ``state_dir/secondaries/<name>``.
        """
        if name == FLAT_NAME:
            return self.state_path
        return self.state_path / "secondaries" / name

    @property
    def primary_sdk_url(self) -> str:
        """``primary_url`` as the SDK wants it (see :func:`sdk_url`)."""
        return sdk_url(self.primary_url)

    def schema_policy(self, table: str) -> TablePolicy | None:
        """How ``table``'s definitions are mirrored; None when it is not replicated."""
        if not self.replicates(table):
            return None
        options = self.tables.get(table) if self.tables is not None else None
        mode = options.schema_ if options is not None else None
        events = options.events if options is not None else False
        return TablePolicy(mirror=(mode or self.schema_.mode) == "mirror", events=events)

    def replicates(self, table: str) -> bool:
        """Whether ``table`` is replicated: every table when ``tables`` is ``None``, never
        one syncd keeps for itself (``syncd_*``) — the one table rule of every path."""
        if table.startswith(INTERNAL_PREFIX):
            return False
        return self.tables is None or table in self.tables

    def table_key(self, table: str) -> list[str] | None:
        """The natural-key fields of ``table``, or ``None`` for "the record id"."""
        options = self.tables.get(table) if self.tables is not None else None
        return list(options.key) if options is not None and options.key else None

    def key_rule(self) -> KeyRule:
        """The one key rule of this config (see :class:`syncd.keys.KeyRule`)."""
        tables = self.tables or {}
        return KeyRule({name: options.key for name, options in tables.items()})

    def versions(self) -> dict[str, str]:
        """The tables that declare a ``version`` field, and that field."""
        tables = self.tables or {}
        return {name: t.version for name, t in tables.items() if t.version is not None}

    def newest_fields(self) -> dict[str, str]:
        """The tables whose merged reads prefer the newest row, and their version field."""
        tables = self.tables or {}
        return {
            name: t.version
            for name, t in tables.items()
            if t.prefer == "newest" and t.version is not None
        }

    def primary_unmergeable(self) -> frozenset[str]:
        """The tables whose unmergeable reads take the primary's answer alone."""
        tables = self.tables or {}
        return frozenset(name for name, t in tables.items() if t.unmergeable == "primary")

    def table_volatile_fields(self, table: str) -> list[str]:
        """Fields ``verify`` ignores in ``table``: the global list, then the table's own."""
        options = self.tables.get(table) if self.tables is not None else None
        extra = options.volatile_fields if options is not None else []
        return list(dict.fromkeys([*self.volatile_fields, *extra]))

    def summary(self) -> dict[str, object]:
        """Every key and its effective value, safe to print or log.

        Passwords show as ``"***"`` when set and ``None`` when empty; URL
        user-info passwords are masked; durations are rendered (``"5s"``).
        """
        return summarize(self)


def config_keys(model: type[BaseModel] | None = None) -> list[str]:
    """The keys a config file spells (a field's alias where it has one)."""
    fields = (model or Config).model_fields
    return [info.alias or name for name, info in fields.items()]


# --------------------------------------------------------------------------
# Loading.


def load_config(
    path: str | os.PathLike[str] | None,
    *,
    env: Mapping[str, str] | None = None,
) -> Config:
    """Load the YAML file at ``path``, apply ``SYNCD_*`` overrides, and validate.

    ``path=None`` means no file: defaults plus environment. An empty file also
    means defaults (``secondary_url`` has none: it must come from one of
    them). ``env`` defaults to ``os.environ``.

    Raises:
        ConfigError: the file is missing, unreadable or not YAML, its top level
            is not a mapping, or values are invalid; one line naming the file
            and every offending key.
    """
    environment = os.environ if env is None else env
    if path is None:
        return Config.from_mapping({}, env=environment)
    file = Path(path)
    document = read_yaml(file)
    if document is not None and not isinstance(document, Mapping):
        raise ConfigError(
            f"config {file}: top level must be a mapping of keys to values "
            f"(got {kind_of(document)})"
        )
    return Config.from_mapping(document, env=environment, source=str(file))
