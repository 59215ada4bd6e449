"""``--burn-cpus=N``: keep N processes spinning on the CPU for the whole test session.

``make stress`` runs the integration tests this way, so a test that depends on
its processes being scheduled promptly (a fixed sleep, a short deadline, a race
with a daemon) fails here instead of on one CI run in two. The burners are
plain Python, so a CI machine needs nothing installed; each one exits by itself
once pytest is gone, even if pytest was killed.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

# Spins, and looks up now and then whether its parent (pytest) is still there.
_BURNER = "import os, sys\nparent = int(sys.argv[1])\nwhile os.getppid() == parent:\n" + (
    "    for _ in range(1_000_000): pass\n"
)

_burners: list[subprocess.Popen[bytes]] = []


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--burn-cpus",
        type=int,
        default=0,
        metavar="N",
        help="keep N CPU-burning processes running during the session (0: none; -1: one per CPU)",
    )


def pytest_configure(config: pytest.Config) -> None:
    count = int(config.getoption("--burn-cpus"))
    if count < 0:
        count = os.cpu_count() or 1
    for _ in range(count):
        _burners.append(
            subprocess.Popen(
                [sys.executable, "-c", _BURNER, str(os.getpid())],
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # a Ctrl-C to pytest's group leaves them to us
            )
        )


def pytest_report_header(config: pytest.Config) -> str | None:
    return f"burning {len(_burners)} CPU(s) throughout" if _burners else None


def pytest_unconfigure(config: pytest.Config) -> None:
    for proc in _burners:
        proc.kill()
    for proc in _burners:
        proc.wait()
    _burners.clear()
