"""The ``aivideo`` command line (see ``aivideo --help``)."""

from __future__ import annotations

import sys

__all__ = ["main"]

_HELP = """\
usage: aivideo COMMAND [ARGS]

The aivideo_async command line. Commands arrive with the CLI release:
  demo        run the demo against the embedded emulator
  emulator    serve the provider emulator
"""


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``aivideo`` console script; prints help for now."""
    args = sys.argv[1:] if argv is None else argv
    sys.stdout.write(_HELP)
    return 0 if not args or args[0] in {"-h", "--help"} else 2
