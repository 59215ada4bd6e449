"""syncd's benchmark suite: ``python -m bench`` (see ``bench/__main__.py`` and BENCHMARKS.md).

Each figure is a ratio of two runs made side by side, in interleaved rounds,
in one process on this machine: absolute numbers move with the machine's
load, ratios much less.
"""
