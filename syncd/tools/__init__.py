"""One-shot operator work: status, verify and repair, dead-letter replay.

May import: ``syncd.service`` and everything below it.
"""
