"""syncd: one-way SurrealDB replication with merged reads.

Public names only; see the README for the contract.
"""

from syncd.errors import (
    ConfigError,
    DeadLetterError,
    PrimaryUnavailable,
    RecordRejected,
    SecondaryUnavailable,
    SpoolCorrupt,
    SyncdError,
)

__all__ = [
    "ConfigError",
    "DeadLetterError",
    "PrimaryUnavailable",
    "RecordRejected",
    "SecondaryUnavailable",
    "SpoolCorrupt",
    "SyncdError",
]
