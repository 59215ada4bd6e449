"""From capture to apply: lanes, the bounded queue, its durable spool, workers, dead letters.

Ordered (one record's operations in one lane), bounded (memory, then disk),
durable (the spool and the dead-letter file). May import: ``syncd.sink``,
``syncd.surreal`` and the basics.
"""
