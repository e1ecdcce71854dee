"""
The ``aivideo`` command line (see ``aivideo --help``).

It needs the ``cli`` extra (typer and rich): ``pip install 'aivideo-async[cli]'``.

Example:
    >>> from aivideo_async.cli import main
    >>> callable(main)
    True
"""

from __future__ import annotations

import sys

__all__ = ["main"]

INSTALL_HINT = "aivideo needs the cli extra: pip install 'aivideo-async[cli]'"


def main(argv: list[str] | None = None) -> int:
    """
    Entry point of the ``aivideo`` console script; returns the exit code.

    Example::

        raise SystemExit(main(["demo", "--jobs", "12"]))
    """
    try:
        import rich  # noqa: F401
        import typer  # noqa: F401
    except ImportError:
        sys.stderr.write(INSTALL_HINT + "\n")
        return 2
    from ._commands import app

    try:
        app(args=argv, prog_name="aivideo")
    except SystemExit as exc:
        if exc.code is None:
            return 0
        return exc.code if isinstance(exc.code, int) else 1
    return 0
