"""The ``syncd`` command line: one module per command; ``app.py`` is shared, ``main.py`` registers.

May import every other folder (it is the top of the stack); nothing imports it.
"""

from syncd.cli.main import main

__all__ = ["main"]
