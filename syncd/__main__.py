"""``python -m syncd``: the same command line as the ``syncd`` script."""

from syncd.cli.main import main

if __name__ == "__main__":
    main()
