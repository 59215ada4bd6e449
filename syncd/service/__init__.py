"""Long-running wiring: the Replicator (a replica per secondary, reads, metrics) and the daemon.

May import every folder below it: ``capture``, ``reads``, ``pipeline``, ``sink``,
``surreal``, the basics.
"""
