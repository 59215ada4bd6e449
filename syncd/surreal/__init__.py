"""The one door to SurrealDB: our RPC client, managed connections, errors, codec, dialect.

``rpc`` speaks SurrealDB's CBOR RPC over a WebSocket (or to an engine in this
process), ``connection`` keeps a session alive with deadlines and reconnects,
``errors`` translates every foreign exception, ``codec`` (on ``values``) and
``frames`` read and write the bytes exactly, ``sdkvalues`` turns the SDK's
values (what an application's connection returns) into syncd's, ``dialect``
and ``failures`` know what differs between server generations. Nothing
outside this folder (and ``syncd/dev``) imports the ``surrealdb`` SDK or
``websockets``; the SDK remains only what users hand to ``Replicator.wrap``
and the embedded engines.
May import: the basics (``syncd.config``, ``errors``, ``backoff``, ``logs``, ...).
"""
