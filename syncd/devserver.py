"""``python -m syncd.devserver``, kept for scripts: the endpoint is :mod:`syncd.dev.devserver`."""

from syncd.dev.devserver import run_and_exit

if __name__ == "__main__":
    run_and_exit()
