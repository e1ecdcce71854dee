"""
What the commands print: JSON for scripts, list tables, field tables, and the
confirmation question.

The list and field tables of the command line are drawn here, so they look alike: no
outer edge, long ids and URLs folded rather than cut.

Example:
    >>> import io
    >>> from rich.console import Console
    >>> console = Console(file=io.StringIO(), width=60)
    >>> print_table([("fox", "a-1"), ("owl", None)], ("name", "id"), numbered=True,
    ...             console=console)
    >>> rows = console.file.getvalue().splitlines()[2:]
    >>> [row.split() for row in rows]  # a None cell is blank
    [['1', '│', 'fox', '│', 'a-1'], ['2', '│', 'owl', '│']]
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import attrs
import typer
from rich.console import Console
from rich.table import Table

from ._app import fail
from ._errors import ExitCode
from ._live import make_console

__all__ = [
    "Listing",
    "confirm_or_exit",
    "emit_json",
    "field_table",
    "print_fields",
    "print_table",
    "public_fields",
]


def emit_json(data: Any) -> None:
    """
    Write ``data`` to stdout as indented JSON (what ``--json`` prints).

    Example:
        >>> emit_json({"job_id": "v-1"})
        {
          "job_id": "v-1"
        }
    """
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")


def public_fields(obj: Any) -> dict[str, Any]:
    """
    An attrs model as a dict, without its ``raw`` provider payload.

    Example:
        >>> @attrs.frozen
        ... class Voice:
        ...     id: str
        ...     raw: dict[str, Any]
        >>> public_fields(Voice("v-1", {"id": "v-1"}))
        {'id': 'v-1'}
    """
    return {k: v for k, v in attrs.asdict(obj).items() if k != "raw"}


def print_table(
    rows: Iterable[Sequence[Any]],
    columns: Sequence[str],
    *,
    title: str | None = None,
    numbered: bool = False,
    console: Console | None = None,
) -> None:
    """
    Print a list as a table; ``None`` cells are blank, ``numbered`` adds a ``#`` column.

    Example:
        See the module docstring.
    """
    table = Table(title=title, show_edge=False)
    if numbered:
        table.add_column("#", justify="right", style="dim")
    for column in columns:
        table.add_column(column, overflow="fold")
    for number, row in enumerate(rows, start=1):
        cells = ["" if v is None else str(v) for v in row]
        table.add_row(*([str(number), *cells] if numbered else cells))
    (console or make_console()).print(table)


@attrs.frozen
class Listing:
    """
    How a list command prints its items: a numbered table of ``columns`` (the
    cells of an item come from ``cells``), or with ``--json`` every public field.

    Example:
        >>> @attrs.frozen
        ... class Voice:
        ...     name: str
        ...     id: str
        >>> voices = Listing("voices", ("name", "id"), lambda v: (v.name, v.id))
        >>> voices.printer(json_output=True)([Voice("Ava", "v-1")])
        [
          {
            "name": "Ava",
            "id": "v-1"
          }
        ]
    """

    title: str
    columns: Sequence[str]
    cells: Callable[[Any], Sequence[Any]]

    def printer(self, json_output: bool) -> Callable[[Sequence[Any]], None]:
        """What prints a fetched list (``json_output``: as JSON)."""

        def show(items: Sequence[Any]) -> None:
            if json_output:
                emit_json([public_fields(item) for item in items])
            else:
                rows = [self.cells(item) for item in items]
                print_table(rows, self.columns, title=self.title, numbered=True)

        return show


def field_table(fields: Iterable[tuple[str, str]], *, edge: bool = False) -> Table:
    """
    A two-column ``name value`` table (a job's status, a task, a create's preview).

    Example:
        >>> field_table([("state", "running")]).row_count
        1
    """
    table = Table(show_header=False, show_edge=edge)
    table.add_column("field", style="bold")
    table.add_column("value", overflow="fold")
    for name, value in fields:
        table.add_row(name, value)
    return table


def print_fields(fields: Iterable[tuple[str, str]]) -> None:
    """
    Print :func:`field_table` to stdout.

    Example::

        print_fields([("state", "running"), ("progress", "40%")])
    """
    make_console().print(field_table(fields))


def confirm_or_exit(question: str, *, no_answer: str) -> None:
    """
    Ask ``question`` on stderr; anything but yes exits with ``NOT_CONFIRMED``.

    ``no_answer`` is the error when there is no answer at all (stdin closed):
    it should say how to skip the question.

    Example::

        if not yes:
            confirm_or_exit("Cancel it?", no_answer="no confirmation (pass --yes)")
    """
    try:
        ok = typer.confirm(question, default=False, err=True)
    except typer.Abort:
        fail(no_answer, ExitCode.NOT_CONFIRMED)
    if not ok:
        fail("not confirmed; nothing was sent", ExitCode.NOT_CONFIRMED)
