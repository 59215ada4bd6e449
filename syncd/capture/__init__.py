"""Sources: where operations come from — the library wrapper, the changefeed, backfill.

Sources talk to the pipeline through :mod:`syncd.pipeline.intake` only.
May import: ``syncd.reads``, ``syncd.pipeline``, ``syncd.sink``, ``syncd.surreal``, the basics.
"""
