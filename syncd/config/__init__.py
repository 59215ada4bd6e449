"""syncd's configuration: the model, loading it from YAML and the environment, its values.

May import: the basics (errors, keys, durations) only.

``from syncd.config import Config, load_config`` is the import every part uses;
the modules say where each idea lives (:mod:`~syncd.config.model`,
:mod:`~syncd.config.load`, :mod:`~syncd.config.values`,
:mod:`~syncd.config.tables`, :mod:`~syncd.config.schema`, :mod:`~syncd.config.secondaries`,
:mod:`~syncd.config.show`).
"""

from syncd.config.model import (
    ENV_PREFIX,
    NETWORK_SCHEMES,
    SUPPORTED_SCHEMES,
    Config,
    Endpoint,
    SecondaryConfig,
    TableConfig,
    is_identifier,
    load_config,
    redact_url,
    sdk_url,
)

__all__ = [
    "ENV_PREFIX",
    "NETWORK_SCHEMES",
    "SUPPORTED_SCHEMES",
    "Config",
    "Endpoint",
    "SecondaryConfig",
    "TableConfig",
    "is_identifier",
    "load_config",
    "redact_url",
    "sdk_url",
]
