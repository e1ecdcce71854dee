"""``python -m aivideo_async ...`` runs the ``aivideo`` command (same as the console script)."""

from __future__ import annotations

from .cli import main

raise SystemExit(main())
