"""The one door to SurrealDB: managed connections, error translation, the CBOR codec, the dialect.

Nothing outside this folder (and ``syncd/dev``) imports the ``surrealdb`` SDK.
May import: the basics (``syncd.config``, ``errors``, ``backoff``, ``logs``, ...).
"""
