"""The one door to SurrealDB: our RPC client, managed connections, error translation, codec.

``rpc`` speaks SurrealDB's CBOR RPC over a WebSocket (or to an engine in this
process), ``connection`` keeps a session alive with deadlines and reconnects,
``errors`` translates every foreign exception, ``codec`` and ``frames`` read
and write the bytes. Nothing outside this folder (and ``syncd/dev``) imports
the ``surrealdb`` SDK or ``websockets``; the SDK remains only what users hand
to ``Replicator.wrap`` and the embedded engines.
May import: the basics (``syncd.config``, ``errors``, ``backoff``, ``logs``, ...).
"""
