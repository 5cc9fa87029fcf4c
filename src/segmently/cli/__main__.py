"""`python -m segmently.cli`."""

from segmently.cli import entry

if __name__ == "__main__":  # not on import (tests import every module of the package)
    entry()
