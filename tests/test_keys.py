"""Record keys: the opaque hash that names a record in logs."""

from __future__ import annotations

import hashlib

from syncd.keys import key_hash


def test_key_hash_is_stable_opaque_and_short() -> None:
    key = 'kv_memories|["user-SECRET","note"]'
    assert key_hash(key) == hashlib.sha256(key.encode()).hexdigest()[:12]
    assert key_hash(key) == key_hash(key) and key_hash(key) != key_hash(key + " ")
    assert len(key_hash(key)) == 12 and "SECRET" not in key_hash(key)
