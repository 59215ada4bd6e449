"""syncd's configuration: a flat YAML file, overridden by ``SYNCD_*`` environment variables.

:func:`load_config` reads the file, applies the environment, validates, and
returns a frozen :class:`Config`. Every problem is reported as one
:class:`~syncd.errors.ConfigError` whose message has one clause per problem,
each naming the key (``config syncd.yaml: sync_workers: must be an integer
>= 1 (got "four")``), joined with ``"; "`` so the CLI can print it as a single
line. _Password values never appear in a message, a ``repr`` or a summary.

Environment: ``SYNCD_<KEY>`` (upper case) overrides ``<key>`` for every scalar
key; ``tables`` and ``volatile_fields`` are structured and only come from the
file. We apply the environment ourselves on top of the YAML mapping instead of
using pydantic-settings: its YAML source would bypass our loader (line
numbers, duplicate-key detection), its errors could not say that a bad value
came from the environment, and it would also accept JSON for the structured
keys, a second syntax we would have to document and test. The whole job is a
dozen lines (:func:`_apply_env`).
"""

from __future__ import annotations

import difflib
import json
import math
import os
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit, urlunsplit

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    SecretStr,
    ValidationError,
    model_validator,
)
from pydantic_core import ErrorDetails

from syncd.durations import format_duration, parse_duration
from syncd.errors import ConfigError
from syncd.keys import KeyRule

__all__ = [
    "ENV_PREFIX",
    "NETWORK_SCHEMES",
    "SUPPORTED_SCHEMES",
    "Config",
    "TableConfig",
    "is_identifier",
    "load_config",
    "redact_url",
    "sdk_url",
]

#: Prefix of the environment variables that override file keys.
ENV_PREFIX = "SYNCD_"

#: URL schemes the SurrealDB SDK (2.0) can connect with.
SUPPORTED_SCHEMES = (
    "ws",
    "wss",
    "http",
    "https",
    "mem",
    "memory",
    "surrealkv",
    "surrealkv+versioned",
    "file",
)
#: Schemes that reach a server over the network, so the URL must name a host.
NETWORK_SCHEMES = ("ws", "wss", "http", "https")

_SCHEME_HINT = "use ws, wss, http, https, mem, memory, surrealkv, file"
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_IDENTIFIER_RULE = "letters, digits and underscores, not starting with a digit"
_TRUE = frozenset({"true", "yes", "on", "1"})
_FALSE = frozenset({"false", "no", "off", "0"})
# _Password keys: their values are never echoed, whatever went wrong.
_SECRET_KEYS = frozenset({"secondary_pass", "primary_pass"})
# Structured keys: not overridable from the environment (see module docstring).
_STRUCTURED_KEYS = frozenset({"tables", "volatile_fields"})


# --------------------------------------------------------------------------
# Helpers shared by the validators and the error formatter.


def _show(value: object) -> str:
    """Render an offending value for an error message: JSON-like, one line, bounded."""
    if isinstance(value, str):
        text = json.dumps(value)
    else:
        try:
            text = json.dumps(value, default=str)
        except (TypeError, ValueError):
            text = repr(value)
    # A whole YAML mapping pasted into the message would drown the key name.
    return text if len(text) <= 80 else text[:77] + "..."


def _kind(value: object) -> str:
    """A YAML-flavoured name for the type of ``value`` ("a list", "a string")."""
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    return f"a {type(value).__name__}"


def is_identifier(name: object) -> bool:
    """Whether ``name`` is a plain SurrealDB identifier (safe to splice into SurrealQL)."""
    return isinstance(name, str) and _IDENTIFIER.fullmatch(name) is not None


def sdk_url(url: str) -> str:
    """The URL to hand to the SDK: ``url`` without one trailing ``/rpc`` (or ``/``).

    ``AsyncSurreal("ws://h:8000")`` appends ``/rpc`` itself, and config files
    conventionally carry it (``ws://h:8000/rpc``), so we accept both spellings
    and normalise here. Embedded URLs (``mem://``, ``surrealkv://path``) are
    returned unchanged.
    """
    parts = urlsplit(url)
    if parts.scheme.lower() not in NETWORK_SCHEMES:
        return url
    path = parts.path.rstrip("/")
    if path.endswith("/rpc"):
        path = path[: -len("/rpc")]
    path = path.rstrip("/")
    return urlunsplit((parts.scheme, parts.netloc, path, parts.query, parts.fragment))


def redact_url(url: str) -> str:
    """``url`` with any password in its user-info replaced by ``***`` (for logs and summaries)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    if parts.password is None:
        return url
    userinfo = f"{parts.username or ''}:***"
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit((parts.scheme, f"{userinfo}@{host}", parts.path, parts.query, parts.fragment))


# --------------------------------------------------------------------------
# Validators. Each one turns the raw YAML (or environment string) value into
# the field's type and raises ValueError with the exact text the user sees.
# Writing them by hand, rather than leaning on pydantic's coercion, is what
# keeps every message short, consistent and aware of env strings ("4", "true").


def _int_at_least(minimum: int) -> Callable[[object], int]:
    def check(value: object) -> int:
        number: int | None = None
        if isinstance(value, int) and not isinstance(value, bool):
            number = value
        elif isinstance(value, str):
            try:
                number = int(value.strip())
            except ValueError:
                number = None
        if number is None or number < minimum:
            raise ValueError(f"must be an integer >= {minimum} (got {_show(value)})")
        return number

    return check


def _duration(*, allow_zero: bool) -> Callable[[object], float]:
    bound = ">= 0" if allow_zero else "> 0"
    expected = f'must be a duration {bound} such as "5s", "250ms" or "1m30s"'

    def check(value: object) -> float:
        if isinstance(value, bool):
            raise ValueError(f"{expected} (got {_show(value)})")
        if isinstance(value, int | float):
            try:
                seconds = float(value)
            except OverflowError:
                seconds = math.inf
        elif isinstance(value, str):
            seconds = parse_duration(value)  # its ValueError already quotes the text
        else:
            raise ValueError(f"{expected} (got {_show(value)})")
        if not math.isfinite(seconds) or seconds < 0 or (seconds == 0 and not allow_zero):
            raise ValueError(f"{expected} (got {_show(value)})")
        return seconds

    return check


def _bool(value: object) -> bool:
    if isinstance(value, bool):
        return value
    # Strings come from the environment; YAML already turns yes/no/true/false into bools.
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    raise ValueError(f"must be true or false (got {_show(value)})")


def _optional_bool(value: object) -> bool | None:
    # null (or "auto"/"" from the environment, which cannot say null) means "decide at run time".
    if value is None or (isinstance(value, str) and value.strip().lower() in ("", "auto")):
        return None
    try:
        return _bool(value)
    except ValueError:
        raise ValueError(f"must be true, false or null for auto (got {_show(value)})") from None


def _string(*, non_empty: bool) -> Callable[[object], str]:
    def check(value: object) -> str:
        # YAML turns `database: 2024` into an int; silently str()-ing it would
        # also turn `0123` into "83", so ask for quotes instead.
        if not isinstance(value, str):
            raise ValueError(f"must be a string; quote it in YAML (got {_show(value)})")
        if non_empty and not value.strip():
            raise ValueError("must not be empty")
        return value

    return check


def _secret(value: object) -> object:
    # Never echo the value: a password typed as a bare number is still a password.
    if isinstance(value, str | SecretStr):
        return value
    raise ValueError("must be a string; quote it in YAML (value not shown)")


def _url(value: object) -> str:
    example = 'e.g. "ws://127.0.0.1:8000/rpc" or "mem://"'
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"must be a URL, {example} (got {_show(value)})")
    text = value.strip()
    if "://" not in text:
        # urlsplit("localhost:8000") reads "localhost" as the scheme; say what is missing instead.
        raise ValueError(f"must be a URL with a scheme, {example} (got {_show(redact_url(text))})")
    try:
        parts = urlsplit(text)
        scheme = parts.scheme.lower()
        if scheme not in SUPPORTED_SCHEMES:
            raise ValueError(f'scheme "{parts.scheme}" is not supported ({_SCHEME_HINT})')
        if scheme in NETWORK_SCHEMES:
            if not parts.hostname:
                raise ValueError(
                    f"a {scheme}:// URL needs a host, e.g. "
                    f'"{scheme}://127.0.0.1:8000" (got {_show(redact_url(text))})'
                )
            _ = parts.port  # raises ValueError for a non-numeric or out-of-range port
    except ValueError as exc:
        message = str(exc)
        if message.startswith(("scheme ", "a ")):
            raise
        raise ValueError(f"is not a valid URL: {message} (got {_show(redact_url(text))})") from None
    return text


def _listen(value: object) -> str | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None  # metrics endpoint disabled
    expected = 'must be "host:port" with a port 0-65535, or null to disable'
    if not isinstance(value, str):
        raise ValueError(f"{expected} (got {_show(value)})")
    text = value.strip()
    host, sep, port = text.rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]  # bracketed IPv6 literal, e.g. [::1]:9464
    if not sep or not host or not port.isdigit() or int(port) > 65535:
        raise ValueError(f"{expected} (got {_show(value)})")
    return text


def _log_level(value: object) -> str:
    choices = ("debug", "info", "warning", "error")
    if isinstance(value, str) and value.strip().lower() in choices:
        return value.strip().lower()
    raise ValueError(f"must be one of {', '.join(choices)} (got {_show(value)})")


def _identifier(kind: str, *, echo: bool = True) -> Callable[[object], str]:
    # echo=False for mapping keys: the error path already ends with the name.
    def check(value: object) -> str:
        if not is_identifier(value):
            what = f"{_show(value)} is" if echo else "is"
            raise ValueError(f"{what} not a valid {kind} ({_IDENTIFIER_RULE})")
        assert isinstance(value, str)  # for mypy: is_identifier checked it
        return value

    return check


def _field_names(*, non_empty: bool) -> Callable[[object], list[str]]:
    check_name = _identifier("field name")

    def check(value: object) -> list[str]:
        if value is None and not non_empty:
            return []
        if not isinstance(value, list) or (non_empty and not value):
            wanted = "a non-empty list" if non_empty else "a list"
            raise ValueError(f"must be {wanted} of field names (got {_show(value)})")
        names = [check_name(item) for item in value]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"lists {_show(duplicates[0])} more than once")
        return names

    return check


def _tables(value: object) -> object:
    if value is None:
        return None  # every table of the primary database
    if isinstance(value, list):
        # Shorthand: `tables: [events, entities]` = each with default options.
        if not all(isinstance(item, str) for item in value):
            raise ValueError(f"must be a mapping of table name to options (got {_show(value)})")
        value = dict.fromkeys(value)
    if not isinstance(value, Mapping):
        raise ValueError(f"must be a mapping of table name to options (got {_show(value)})")
    if not value:
        raise ValueError("must name at least one table (omit the key to replicate every table)")
    # `events:` with nothing after it is YAML null: a table with default options.
    return {name: ({} if options is None else options) for name, options in value.items()}


_Duration = Annotated[float, BeforeValidator(_duration(allow_zero=False))]
_DurationOrZero = Annotated[float, BeforeValidator(_duration(allow_zero=True))]
_Password = Annotated[SecretStr, BeforeValidator(_secret)]
_Url = Annotated[str, BeforeValidator(_url)]
_Text = Annotated[str, BeforeValidator(_string(non_empty=False))]
_Name = Annotated[str, BeforeValidator(_string(non_empty=True))]
_Bool = Annotated[bool, BeforeValidator(_bool)]
_TableName = Annotated[str, BeforeValidator(_identifier("table name", echo=False))]
_KeyFields = Annotated[list[str], BeforeValidator(_field_names(non_empty=True))]
_FieldNames = Annotated[list[str], BeforeValidator(_field_names(non_empty=False))]
_LogLevel = Annotated[Literal["debug", "info", "warning", "error"], BeforeValidator(_log_level)]


_AtLeastOne = Annotated[int, BeforeValidator(_int_at_least(1))]
_AtLeastZero = Annotated[int, BeforeValidator(_int_at_least(0))]


# --------------------------------------------------------------------------
# Models.


class TableConfig(BaseModel):
    """Per-table options under ``tables:``."""

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)

    key: _KeyFields | None = None
    """Fields that identify "the same record" for dedup and upsert; ``None``: the record id."""

    volatile_fields: _FieldNames = []
    """Fields ``verify`` ignores in this table (on top of the global ``volatile_fields``)."""


class Config(BaseModel):
    """The validated, immutable configuration of syncd (daemon, library and tools).

    Durations are ``float`` seconds. Build one with :func:`load_config` (file +
    environment) or :meth:`Config.from_mapping` (a dict, e.g. in tests).
    """

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)

    # Keys of the original module: same names, meanings and defaults.
    secondary_url: _Url = "ws://127.0.0.1:8000/rpc"
    """Where replicated writes go (``ws``/``wss``/``http``/``https``, or embedded)."""
    secondary_user: _Text = "root"
    """User to sign in to the secondary as."""
    secondary_pass: _Password = SecretStr("")
    """_Password for ``secondary_user``; empty: do not sign in."""
    secondary_namespace: _Name = "remembrances"
    """Namespace on the secondary."""
    secondary_database: _Name = "production"
    """Database on the secondary."""
    sync_enabled: _Bool = True
    """Master switch: false means writes go to the primary only and nothing is replicated."""
    sync_retry_interval: _Duration = 5.0
    """Wait between attempts to write a failed operation to the secondary."""
    sync_batch_size: _AtLeastOne = 100
    """Most operations a worker writes in one round trip."""
    sync_max_retries: _AtLeastZero = 3
    """Retries of an operation the secondary rejects before it goes to the dead-letter file."""
    sync_workers: _AtLeastOne = 4
    """Concurrent writers to the secondary."""
    health_check_interval: _Duration = 30.0
    """How often the secondary is pinged."""
    reconnect_backoff: _Duration = 10.0
    """Wait before reconnecting after the secondary connection is lost."""

    # The primary: used by the daemon and the tools; the library uses the app's own connection.
    primary_url: _Url = "mem://"
    """The database being replicated."""
    primary_user: _Text = "root"
    """User to sign in to the primary as."""
    primary_pass: _Password = SecretStr("")
    """_Password for ``primary_user``; empty: do not sign in."""
    primary_namespace: _Name = "remembrances"
    """Namespace on the primary."""
    primary_database: _Name = "production"
    """Database on the primary."""

    tables: Annotated[dict[_TableName, TableConfig] | None, BeforeValidator(_tables)] = None
    """Tables to replicate and their options; ``None``: every table of the primary database."""
    state_dir: _Name = "./syncd-state"
    """Directory of the checkpoint, spool and dead-letter file (relative: to the working dir)."""
    metrics_listen: Annotated[str | None, BeforeValidator(_listen)] = "127.0.0.1:9464"
    """``host:port`` serving /metrics, /healthz and /readyz; ``None``: disabled."""

    queue_size: _AtLeastOne = 10000
    """Operations held in memory before spilling to the on-disk spool."""
    batch_timeout: _DurationOrZero = 0.02
    """How long a worker waits to fill a batch before writing a partial one."""
    write_timeout: _Duration = 10.0
    """Deadline on each write round trip to the secondary."""
    connect_timeout: _Duration = 5.0
    """Deadline on connecting and signing in to either database."""
    query_timeout: _Duration = 2.0
    """Deadline on the secondary half of a merged read."""
    drain_timeout: _Duration = 30.0
    """On clean shutdown, how long to keep writing queued operations."""
    log_level: _LogLevel = "info"
    """``debug``, ``info``, ``warning`` or ``error``."""
    log_json: Annotated[bool | None, BeforeValidator(_optional_bool)] = None
    """JSON log lines; ``None``: JSON when stdout is not a TTY."""
    changefeed_retention: _Duration = 7 * 86400.0
    """How long the primary keeps changefeed entries (the daemon's catch-up window)."""
    changefeed_auto_enable: _Bool = True
    """Define changefeeds on replicated tables that lack one."""
    changefeed_poll_interval: _Duration = 0.2
    """Pause between changefeed reads when the last read was empty."""
    readyz_down_threshold: _Duration = 30.0
    """/readyz reports not ready once the secondary has been unreachable this long."""
    volatile_fields: _FieldNames = []
    """Fields ``verify`` ignores in every table (timestamps the secondary sets, etc.)."""

    @model_validator(mode="after")
    def _not_into_itself(self) -> Config:
        # Replicating a database into itself would write every change back to
        # its own changefeed, forever.
        same_target = (
            sdk_url(self.primary_url).lower() == sdk_url(self.secondary_url).lower()
            and self.primary_namespace == self.secondary_namespace
            and self.primary_database == self.secondary_database
        )
        # Two "mem://" URLs are two separate embedded databases, not one.
        if same_target and urlsplit(self.primary_url).scheme.lower() in NETWORK_SCHEMES:
            raise ValueError(
                "secondary_url: same server, namespace and database as the primary "
                "(a database cannot replicate into itself)"
            )
        return self

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
                f"{prefix}top level must be a mapping of keys to values (got {_kind(data)})"
            )
        # str(): YAML allows `1: x` or `null: x`; report those as unknown keys, not a crash.
        merged: dict[str, object] = {str(key): value for key, value in data.items()}
        from_env = _apply_env(merged, env) if env is not None else set()
        try:
            return cls.model_validate(merged)
        except ValidationError as exc:
            problems = [_describe(error, from_env) for error in exc.errors()]
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

    @property
    def secondary_sdk_url(self) -> str:
        """``secondary_url`` as the SDK wants it (see :func:`sdk_url`)."""
        return sdk_url(self.secondary_url)

    @property
    def primary_sdk_url(self) -> str:
        """``primary_url`` as the SDK wants it (see :func:`sdk_url`)."""
        return sdk_url(self.primary_url)

    def replicates(self, table: str) -> bool:
        """Whether ``table`` is replicated: every table when ``tables`` is ``None``."""
        return self.tables is None or table in self.tables

    def table_key(self, table: str) -> list[str] | None:
        """The natural-key fields of ``table``, or ``None`` for "the record id"."""
        options = self.tables.get(table) if self.tables is not None else None
        return list(options.key) if options is not None and options.key else None

    def key_rule(self) -> KeyRule:
        """The one key rule of this config (see :class:`syncd.keys.KeyRule`)."""
        tables = self.tables or {}
        return KeyRule({name: options.key for name, options in tables.items()})

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
        out: dict[str, object] = {}
        for name in type(self).model_fields:
            value = getattr(self, name)
            if isinstance(value, SecretStr):
                out[name] = "***" if value.get_secret_value() else None
            elif isinstance(value, float):  # every float field is a duration
                out[name] = format_duration(value)
            elif name in ("secondary_url", "primary_url"):
                out[name] = redact_url(value)
            elif name == "tables":
                out[name] = (
                    None
                    if value is None
                    else {t: opts.model_dump(mode="json") for t, opts in value.items()}
                )
            elif isinstance(value, list):
                out[name] = list(value)
            else:
                out[name] = value
        return out


# --------------------------------------------------------------------------
# Loading.


class _Loader(yaml.SafeLoader):
    """SafeLoader that rejects duplicate keys (PyYAML silently keeps the last one)."""


def _construct_mapping(loader: yaml.SafeLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    seen: dict[object, int] = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=True)
        try:
            first = seen.get(key)
        except TypeError:  # unhashable key: construct_mapping reports it properly below
            continue
        if first is not None:
            raise yaml.constructor.ConstructorError(
                None,
                None,
                f"duplicate key {_show(key)} (first defined on line {first})",
                key_node.start_mark,
            )
        seen[key] = key_node.start_mark.line + 1
    return loader.construct_mapping(node, deep=True)


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def _apply_env(data: dict[str, object], env: Mapping[str, str]) -> set[str]:
    """Overwrite scalar keys of ``data`` from ``SYNCD_<KEY>`` variables; return the keys set."""
    used: set[str] = set()
    for key in Config.model_fields:
        if key in _STRUCTURED_KEYS:
            continue
        name = ENV_PREFIX + key.upper()
        if name in env:
            data[key] = env[name]
            used.add(key)
    return used


def _describe(error: ErrorDetails, from_env: set[str]) -> str:
    """One clause of a ConfigError message for one pydantic error."""
    loc = [part for part in error["loc"] if part != "[key]"]
    path = ""
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) and path else f"{'.' if path else ''}{part}"
    kind = error["type"]
    if kind == "extra_forbidden":
        parent_fields = TableConfig.model_fields if len(loc) > 1 else Config.model_fields
        close = difflib.get_close_matches(str(loc[-1]), list(parent_fields), n=1, cutoff=0.6)
        hint = f' (did you mean "{close[0]}"?)' if close else ""
        return f'unknown key "{path}"{hint}'
    secret = bool(loc) and loc[0] in _SECRET_KEYS
    if kind == "value_error":
        cause = error.get("ctx", {}).get("error")
        message = str(cause) if cause is not None else error["msg"]
    elif secret:
        message = "is not valid (value not shown)"
    elif kind in ("model_type", "model_attributes_type", "dict_type"):
        message = f"must be a mapping (got {_show(error['input'])})"
    else:
        message = f"{error['msg'][:1].lower()}{error['msg'][1:]} (got {_show(error['input'])})"
    if not path:
        return message  # model-level checks name their keys themselves
    origin = f" (from {ENV_PREFIX}{str(loc[0]).upper()})" if loc[0] in from_env else ""
    return f"{path}{origin}: {message}"


def _read_yaml(path: Path) -> object:
    """The parsed YAML document at ``path``; ConfigError naming the file on any failure."""
    prefix = f"config {path}: "
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(prefix + "file not found") from None
    except IsADirectoryError:
        raise ConfigError(prefix + "is a directory, not a file") from None
    except PermissionError:
        raise ConfigError(prefix + "permission denied") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(prefix + f"not UTF-8 text (byte {exc.start})") from None
    except OSError as exc:
        raise ConfigError(prefix + f"cannot read: {exc.strerror or exc}") from None
    try:
        return yaml.load(text, Loader=_Loader)  # _Loader is a SafeLoader: no arbitrary objects
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = exc.problem or exc.context or "syntax error"
        context = f" ({exc.context})" if exc.problem and exc.context else ""
        # Only the problem and its position: PyYAML's full text quotes the
        # offending line, which could be a password.
        raise ConfigError(f"{prefix}invalid YAML{where}: {problem}{context}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(prefix + "invalid YAML: " + " ".join(str(exc).split())) from None


def load_config(
    path: str | os.PathLike[str] | None,
    *,
    env: Mapping[str, str] | None = None,
) -> Config:
    """Load the YAML file at ``path``, apply ``SYNCD_*`` overrides, and validate.

    ``path=None`` means no file: defaults plus environment. An empty file also
    means defaults. ``env`` defaults to ``os.environ``.

    Raises:
        ConfigError: the file is missing, unreadable or not YAML, its top level
            is not a mapping, or values are invalid; one line naming the file
            and every offending key.
    """
    environment = os.environ if env is None else env
    if path is None:
        return Config.from_mapping({}, env=environment)
    file = Path(path)
    document = _read_yaml(file)
    if document is not None and not isinstance(document, Mapping):
        raise ConfigError(
            f"config {file}: top level must be a mapping of keys to values (got {_kind(document)})"
        )
    return Config.from_mapping(document, env=environment, source=str(file))
