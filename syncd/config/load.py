"""Reading the config: YAML (no duplicate keys), the environment over it, one-line errors.

We apply the environment ourselves on top of the YAML mapping instead of
using pydantic-settings: its YAML source would bypass our loader (line
numbers, duplicate-key detection), its errors could not say that a bad value
came from the environment, and it would also accept JSON for the structured
keys, a second syntax we would have to document and test.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic_core import ErrorDetails

from syncd.config.values import ENV_PREFIX, SECRET_KEYS, STRUCTURED_KEYS, show_value
from syncd.errors import ConfigError

#: What a required key is for, said when it is missing.
REQUIRED_EXAMPLES = {"secondary_url": ', where replicated writes go, e.g. "ws://archive:8000/rpc"'}

__all__ = ["apply_env", "describe", "read_yaml", "unknown_env"]

#: ``SYNCD_*`` variables that are not config keys: read by the CLI, the dev server, benches.
OTHER_VARIABLES = frozenset({"SYNCD_CONFIG", "SYNCD_DEVSERVER_ENGINE", "SYNCD_DEVSERVER_PASS"})
#: Prefixes of ``SYNCD_*`` variables owned by tools outside the config (benchmarks).
OTHER_PREFIXES = ("SYNCD_BENCH_",)
_SECONDARY_PASSWORD = re.compile(r"SYNCD_SECONDARIES_[A-Z0-9_]+_PASS")


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
                f"duplicate key {show_value(key)} (first defined on line {first})",
                key_node.start_mark,
            )
        seen[key] = key_node.start_mark.line + 1
    return loader.construct_mapping(node, deep=True)


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def read_yaml(path: Path) -> object:
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


def apply_env(data: dict[str, object], env: Mapping[str, str], keys: Iterable[str]) -> set[str]:
    """Overwrite scalar keys of ``data`` from ``SYNCD_<KEY>`` variables; return the keys set."""
    used: set[str] = set()
    for key in keys:
        if key in STRUCTURED_KEYS:
            continue
        name = ENV_PREFIX + key.upper()
        if name in env:
            data[key] = env[name]
            used.add(key)
    return used


def unknown_env(env: Mapping[str, str], keys: Iterable[str]) -> str | None:
    """The first ``SYNCD_*`` variable of ``env`` that nothing reads, as a problem; else ``None``.

    A typo (``SYNCD_SYNC_WORKER``) would otherwise be ignored while the
    operator believes it applied, exactly as an unknown key in the file would.
    The structured keys cannot come from the environment: saying so beats
    ignoring them.
    """
    keys = list(keys)
    settable = [ENV_PREFIX + k.upper() for k in keys if k not in STRUCTURED_KEYS]
    known = {*settable, *OTHER_VARIABLES}
    for name in sorted(env):
        if not name.startswith(ENV_PREFIX) or name in known:
            continue
        if name.startswith(OTHER_PREFIXES) or _SECONDARY_PASSWORD.fullmatch(name):
            continue
        key = name[len(ENV_PREFIX) :].lower()
        if key in STRUCTURED_KEYS:
            return f"{name}: {key} comes only from the config file, not the environment"
        candidates = [*settable, *OTHER_VARIABLES, "SYNCD_SECONDARIES_<NAME>_PASS"]
        close = difflib.get_close_matches(name, candidates, n=1, cutoff=0.6)
        hint = f' (did you mean "{close[0]}"?)' if close else ""
        return f'unknown environment variable "{name}"{hint}'
    return None


def describe(
    error: ErrorDetails,
    from_env: set[str],
    config_keys: Iterable[str],
    table_keys: Iterable[str],
) -> str:
    """One clause of a ConfigError message for one pydantic error."""
    loc = [part for part in error["loc"] if part != "[key]"]
    path = ""
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) and path else f"{'.' if path else ''}{part}"
    kind = error["type"]
    if kind == "missing":
        example = REQUIRED_EXAMPLES.get(path, "")
        return f"{path}: required{example} (or {ENV_PREFIX}{path.upper()} in the environment)"
    if kind == "extra_forbidden":
        parent_fields = table_keys if len(loc) > 1 else config_keys
        if loc[0] == "secondaries":
            parent_fields = ("name", "url", "user", "pass", "namespace", "database", "priority")
        close = difflib.get_close_matches(str(loc[-1]), list(parent_fields), n=1, cutoff=0.6)
        hint = f' (did you mean "{close[0]}"?)' if close else ""
        return f'unknown key "{path}"{hint}'
    secret = bool(loc) and loc[0] in SECRET_KEYS
    if kind == "value_error":
        cause = error.get("ctx", {}).get("error")
        message = str(cause) if cause is not None else error["msg"]
    elif secret:
        message = "is not valid (value not shown)"
    elif kind in ("model_type", "model_attributes_type", "dict_type"):
        message = f"must be a mapping (got {show_value(error['input'])})"
    else:
        message = f"{error['msg'][:1].lower()}{error['msg'][1:]} (got {show_value(error['input'])})"
    if not path:
        return message  # model-level checks name their keys themselves
    origin = f" (from {ENV_PREFIX}{str(loc[0]).upper()})" if loc[0] in from_env else ""
    return f"{path}{origin}: {message}"
