"""syncd: one-way SurrealDB replication with merged reads.

This module re-exports the public names and nothing else; see the README.
"""

from syncd.config import Config, TableConfig, load_config
from syncd.errors import (
    ConfigError,
    DeadLetterError,
    PrimaryUnavailable,
    RecordRejected,
    SecondaryUnavailable,
    SpoolCorrupt,
    SyncdError,
)
from syncd.merger import OrderTerm, key_for_table, merge_rows
from syncd.ops import Operation
from syncd.replicator import Replicator
from syncd.wrapper import ReplicatedConnection

__all__ = [
    "Config",
    "ConfigError",
    "DeadLetterError",
    "Operation",
    "OrderTerm",
    "PrimaryUnavailable",
    "RecordRejected",
    "ReplicatedConnection",
    "Replicator",
    "SecondaryUnavailable",
    "SpoolCorrupt",
    "SyncdError",
    "TableConfig",
    "key_for_table",
    "load_config",
    "merge_rows",
]
