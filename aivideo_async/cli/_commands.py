"""
Every ``aivideo`` command, registered on one typer app.

Example:
    >>> from aivideo_async.cli._commands import app
    >>> app.info.name
    'aivideo'
"""

from __future__ import annotations

from . import _batch as _batch  # registers batch, jobs, resume, reconcile
from . import _providers as _providers  # registers miraflow, aivideomaker, nemo
from ._app import app

__all__ = ["app"]
