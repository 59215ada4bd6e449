"""syncd: one-way SurrealDB replication with merged reads.

This module re-exports the public names and nothing else; see the README.
"""

from syncd.capture.blocking import BlockingReplicatedConnection
from syncd.capture.wrapper import ReplicatedConnection
from syncd.config import Config, TableConfig, load_config
from syncd.errors import (
    AuthenticationFailed,
    ConfigError,
    DatabaseUnavailable,
    DeadLetterError,
    MergeUnsupported,
    PrimaryUnavailable,
    RecordRejected,
    SecondaryUnavailable,
    ServerError,
    SpoolCorrupt,
    SyncdError,
)
from syncd.reads.merge import OrderTerm, key_for_table, merge_rows
from syncd.service.blocking import BlockingReplicator
from syncd.service.replicator import Replicator
from syncd.sink.operation import Operation

__all__ = [
    "AuthenticationFailed",
    "BlockingReplicatedConnection",
    "BlockingReplicator",
    "Config",
    "ConfigError",
    "DatabaseUnavailable",
    "DeadLetterError",
    "MergeUnsupported",
    "Operation",
    "OrderTerm",
    "PrimaryUnavailable",
    "RecordRejected",
    "ReplicatedConnection",
    "Replicator",
    "SecondaryUnavailable",
    "ServerError",
    "SpoolCorrupt",
    "SyncdError",
    "TableConfig",
    "key_for_table",
    "load_config",
    "merge_rows",
]
