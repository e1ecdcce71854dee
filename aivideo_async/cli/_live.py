"""
Live progress of many jobs: a rich table on a terminal, plain lines otherwise.

The view is stateless about jobs: every refresh reads the :class:`Row` list
(each row points at its :class:`JobHandle` once it has one), so nothing has to
subscribe per job and 100k rows cost a list, not 100k tasks.
"""

from __future__ import annotations

import collections
import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import anyio
import attrs
from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from ._api import AIVideoError, InvalidInput, JobError, JobHandle, JobState

__all__ = [
    "TERMINAL",
    "EventLog",
    "LiveView",
    "Row",
    "make_console",
    "outcome_of",
    "paused_providers",
    "phase_of",
]

_STYLE = {
    "planned": "dim",
    "submitting": "cyan",
    "queued": "cyan",
    "running": "yellow",
    "streaming": "yellow",
    "succeeded": "green",
    "failed": "red",
    "rejected": "red",
    "not sent": "red",
    "invalid": "red",
    "unknown": "magenta",
    "cancelled": "red",
    "timed out": "red",
    "not found": "red",
}

TERMINAL = frozenset(
    {
        "succeeded",
        "failed",
        "rejected",
        "not sent",
        "invalid",
        "cancelled",
        "timed out",
        "not found",
    }
)
"""Row states that never change again (``unknown`` may still be reconciled)."""


@attrs.define(eq=False)
class Row:
    """
    One job as the live view shows it.

    ``phase`` is what happened before there was a handle (``planned``,
    ``submitting``, ``unknown``, ``rejected``, ``not sent``); once ``handle``
    is set, its status decides.

    Example:
        >>> row = Row(key="demo/img-1", provider="miraflow", kind="image", label="a red fox")
        >>> row.state, row.progress
        ('planned', None)
    """

    key: str
    provider: str
    kind: str
    label: str = ""
    handle: JobHandle | None = None
    phase: str = "planned"
    note: str = ""
    manual_progress: float | None = None
    downloaded: str | None = None

    @property
    def job_id(self) -> str | None:
        """The provider's job id, once known."""
        return None if self.handle is None else self.handle.job_id

    @property
    def state(self) -> str:
        """A short word: planned, submitting, queued, running, succeeded, failed ..."""
        handle = self.handle
        if handle is None:
            return self.phase
        status = handle.handle_status
        if status.is_terminal:
            return status.value.replace("_", " ")
        if handle.status is not None and handle.status.state is JobState.RUNNING:
            return "running"
        return "queued"

    @property
    def progress(self) -> float | None:
        """Fraction done in ``[0, 1]`` when known."""
        if self.handle is None:
            return self.manual_progress
        if self.handle.handle_status.is_terminal:
            return 1.0 if self.state == "succeeded" else None
        status = self.handle.status
        return None if status is None else status.progress

    @property
    def terminal(self) -> bool:
        """Whether the row will not change again."""
        return self.state in TERMINAL

    @property
    def message(self) -> str:
        """The failure message of a finished job, else the note."""
        handle = self.handle
        if handle is not None and handle.done():
            try:
                handle.result_nowait()
            except JobError as exc:
                return exc.message or type(exc).__name__
        return self.note


def phase_of(exc: AIVideoError) -> str:
    """
    The row state of a submit that raised: ``rejected`` (the provider said no),
    ``invalid`` (refused locally: a key reused for another request ...) or
    ``not sent``.

    Example:
        >>> phase_of(InvalidInput(field="key", value="k", expected="a new key"))
        'invalid'
    """
    if isinstance(exc, InvalidInput):
        return "invalid"
    return "rejected" if exc.status_code else "not sent"


def outcome_of(rows: Iterable[Row]) -> dict[str, int]:
    """
    Count rows by state.

    Example:
        >>> outcome_of([Row(key="a", provider="p", kind="k"), Row(key="b", provider="p", kind="k")])
        {'planned': 2}
    """
    counts: collections.Counter[str] = collections.Counter(row.state for row in rows)
    return dict(sorted(counts.items()))


def paused_providers(scheduler_stats: Mapping[str, Any]) -> str | None:
    """
    The providers whose polls are paused (after 429s) and for how long, for a totals line.

    Example:
        >>> paused_providers({"providers": {"miraflow": {"paused_for": 2.5},
        ...                                 "nemovideo": {"paused_for": 0}}})
        'miraflow 2.5s'
        >>> paused_providers({}) is None
        True
    """
    paused = [
        f"{name} {info['paused_for']:.1f}s"
        for name, info in scheduler_stats.get("providers", {}).items()
        if info.get("paused_for", 0) > 0
    ]
    return ", ".join(paused) or None


class EventLog(logging.Handler):
    """
    Keeps the last events (retries, 429 pauses, breaker, unknown outcomes) for
    the view, and counts retries: it listens to the library's loggers.

    Example:
        >>> log = EventLog()
        >>> log.add("429 on a poll")
        >>> list(log.recent)
        ['429 on a poll']
    """

    _LOGGERS = ("aivideo_async.session", "aivideo_async.jobs")

    def __init__(self, *, keep: int = 6, on_event: Callable[[str], None] | None = None) -> None:
        super().__init__(level=logging.DEBUG)
        self.recent: collections.deque[str] = collections.deque(maxlen=keep)
        self.retries = 0
        self.counted: collections.Counter[str] = collections.Counter()
        self._on_event = on_event
        self._saved: list[tuple[logging.Logger, int, bool]] = []
        self._t0 = time.monotonic()

    def add(self, text: str) -> None:
        """Record one event line."""
        self.recent.append(text)
        if self._on_event is not None:
            self._on_event(text)

    def emit(self, record: logging.LogRecord) -> None:
        """Turn a library log record into an event (retries at DEBUG, the rest at INFO+)."""
        try:
            text = record.getMessage()
        except Exception:
            return
        if record.name == "aivideo_async.session":
            if ": retry " not in text:
                return
            self.retries += 1
            self.counted["retry"] += 1
        elif record.levelno < logging.INFO:
            return
        elif "pausing polls" in text:
            self.counted["pause"] += 1
        self.add(f"{time.monotonic() - self._t0:5.1f}s  {text}")

    def __enter__(self) -> EventLog:
        for name in self._LOGGERS:
            logger = logging.getLogger(name)
            self._saved.append((logger, logger.level, logger.propagate))
            logger.setLevel(logging.DEBUG)
            # The view shows these; the root handler (stderr) would tear the live display.
            logger.propagate = False
            logger.addHandler(self)
        return self

    def __exit__(self, *exc: object) -> None:
        for logger, level, propagate in self._saved:
            logger.removeHandler(self)
            logger.setLevel(level)
            logger.propagate = propagate
        self._saved.clear()


StatsFn = Callable[[], Mapping[str, Any]]


class LiveView:
    """
    Shows the rows and a totals line until stopped: a rich live table when
    ``console`` is a terminal, otherwise one line per state change and a totals
    line every few seconds.

    Args:
        console: where to draw.
        rows: the rows (the list may grow while the view runs).
        stats: returns extra totals (``http``, ``creates``, ``retries``, ``pauses`` ...).
        title: the table title.
        plain: force plain lines (``None``: plain unless a terminal).
        max_rows: the most job lines the live table shows (the rest are summed up).

    Example:
        >>> view = LiveView(Console(file=__import__("io").StringIO()), [], plain=True)
        >>> view.plain
        True
    """

    def __init__(
        self,
        console: Console,
        rows: Sequence[Row],
        *,
        stats: StatsFn | None = None,
        events: EventLog | None = None,
        title: str = "jobs",
        plain: bool | None = None,
        max_rows: int = 40,
        interval: float | None = None,
    ) -> None:
        self.console = console
        self.rows = rows
        self.stats = stats or dict
        self.events = events
        self.title = title
        self.plain = (not console.is_terminal) if plain is None else plain
        self.max_rows = max_rows
        self.interval = interval if interval is not None else (2.0 if self.plain else 0.125)
        self._t0 = time.monotonic()
        self._seen: dict[int, str] = {}
        self._stop = anyio.Event()
        self._last_totals = 0.0

    def stop(self) -> None:
        """End :meth:`run` after one last refresh."""
        self._stop.set()

    def elapsed(self) -> float:
        """Seconds since the view was made."""
        return time.monotonic() - self._t0

    async def run(self) -> None:
        """Refresh until :meth:`stop`."""
        if self.plain:
            await self._run_plain()
            return
        with Live(
            self.render(),
            console=self.console,
            auto_refresh=False,
            transient=False,
            vertical_overflow="crop",
        ) as live:
            while not self._stop.is_set():
                live.update(self.render(), refresh=True)
                with anyio.move_on_after(self._pace()):
                    await self._stop.wait()
            live.update(self.render(), refresh=True)

    def _pace(self, base: float | None = None) -> float:
        # Each refresh reads every row: slow down for huge batches (100k rows).
        return (self.interval if base is None else base) * max(1.0, len(self.rows) / 2000)

    # -- plain ---------------------------------------------------------------------

    def event_line(self, text: str) -> None:
        """Print an event at once in plain mode (the live table shows the last few)."""
        if self.plain:
            self._print(f"  ! {text}")

    async def _run_plain(self) -> None:
        while True:
            self._plain_changes()
            now = time.monotonic()
            if now - self._last_totals >= 2.0 or self._stop.is_set():
                self._last_totals = now
                self._print(self.totals_line())
            if self._stop.is_set():
                return
            with anyio.move_on_after(self._pace(0.1)):
                await self._stop.wait()

    def _plain_changes(self) -> None:
        for number, row in enumerate(list(self.rows), start=1):
            state = row.state
            if self._seen.get(id(row)) == state:
                continue
            self._seen[id(row)] = state
            job = f" job {row.job_id}" if row.job_id else ""
            extra = f": {row.message}" if row.message and state != "running" else ""
            self._print(
                f"{self.elapsed():5.1f}s  #{number:<3} {row.provider}/{row.kind} "
                f"{row.key}{job} {state}{extra}"
            )

    def _print(self, text: str) -> None:
        self.console.print(text, markup=False, highlight=False, soft_wrap=True)

    # -- shared ------------------------------------------------------------------------

    def totals_line(self) -> str:
        """``12.3s  30 jobs: 10 running, 18 succeeded ... | HTTP 231 | ...``."""
        counts = outcome_of(self.rows)
        parts = ", ".join(f"{n} {state}" for state, n in counts.items())
        extra = " | ".join(
            f"{name} {value}" for name, value in self.stats().items() if value not in ("", None)
        )
        line = f"{self.elapsed():5.1f}s  {len(self.rows)} jobs: {parts}"
        return f"{line} | {extra}" if extra else line

    def render(self) -> RenderableType:
        """The live table, the totals and the recent events."""
        table = Table(title=self.title, expand=False, show_edge=False, pad_edge=False)
        table.add_column("#", justify="right", style="dim", min_width=2, no_wrap=True)
        table.add_column("job", no_wrap=True, max_width=26, overflow="ellipsis")
        table.add_column("provider/kind", no_wrap=True)
        table.add_column("state", no_wrap=True, min_width=9)
        table.add_column("progress", no_wrap=True, min_width=20)
        table.add_column("", justify="right", no_wrap=True, min_width=4)
        table.add_column("note", no_wrap=True, max_width=36, overflow="ellipsis")
        rows = list(self.rows)
        shown = {id(r) for r in rows}
        # Keep the totals and events on screen: a live display taller than the
        # terminal is cropped at the bottom.
        events = len(self.events.recent) if self.events is not None else 0
        limit = min(self.max_rows, max(5, self.console.size.height - 8 - events))
        if len(rows) > limit:
            # Unfinished first: they are the ones worth watching.
            busy = [r for r in rows if not r.terminal]
            done = [r for r in rows if r.terminal]
            shown = {id(r) for r in (busy + done[::-1])[:limit]}
        for number, row in enumerate(rows, start=1):
            if id(row) not in shown:
                continue
            state = row.state
            progress = row.progress
            bar = ProgressBar(
                total=1.0,
                completed=progress or 0.0,
                width=20,
                pulse=progress is None and state in ("queued", "running", "streaming"),
                complete_style="green" if state == "succeeded" else "yellow",
                finished_style="green" if state == "succeeded" else "red",
            )
            percent = "" if progress is None else f"{progress:4.0%}"
            table.add_row(
                str(number),
                row.key,
                f"{row.provider}/{row.kind}",
                Text(state, style=_STYLE.get(state, "")),
                bar,
                percent,
                row.message if state != "running" else row.note,
            )
        parts: list[RenderableType] = [table]
        hidden = len(rows) - len(shown)
        if hidden:
            parts.append(Text(f"... {hidden} more rows (unfinished shown first)", style="dim"))
        parts.append(Text(self.totals_line(), style="bold"))
        if self.events is not None and self.events.recent:
            for line in self.events.recent:
                parts.append(Text(line, style="dim", no_wrap=True, overflow="ellipsis"))
        return Group(*parts)


def make_console(*, stderr: bool = False, plain: bool = False) -> Console:
    """
    The console of a command: no markup (provider messages like ``[miraflow] ...``
    print as they are), and 200 columns when not a terminal (a pipe would get 80,
    folding ids and URLs mid-token). ``plain`` forces line output on a terminal.

    Example:
        >>> make_console().width >= 80
        True
    """
    console = Console(
        highlight=False, markup=False, stderr=stderr, force_terminal=False if plain else None
    )
    if not console.is_terminal:
        console.width = max(console.width, 200)
    return console
