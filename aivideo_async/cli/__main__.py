"""
``python -m aivideo_async.cli``: the same as the ``aivideo`` command.

Example:
    Run the demo::

        python -m aivideo_async.cli demo
"""

from __future__ import annotations

from . import main

if __name__ == "__main__":
    raise SystemExit(main())
