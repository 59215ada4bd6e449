"""Reading the config file: YAML, duplicate keys refused, every failure one line naming the file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from syncd.configvalues import show_value
from syncd.errors import ConfigError

__all__ = ["read_yaml"]


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
