"""Long-running wiring: the Replicator (one pipeline, its workers and metrics) and the daemon.

May import every folder below it: ``capture``, ``reads``, ``pipeline``, ``sink``,
``surreal``, the basics.
"""
