"""Merged reads: the primary and the secondary asked in parallel, rows deduplicated, primary wins.

``merge.py``, ``plan.py`` and ``statements.py`` are pure; ``merged.py`` and ``union.py`` do the I/O.
May import: ``syncd.pipeline`` (for its types only), ``syncd.sink``, ``syncd.surreal``, the basics.
"""
