"""
``aivideo batch``, ``jobs``, ``resume`` and ``reconcile``: many jobs through one
orchestrator and a durable journal.

A batch run is idempotent: every manifest line has a key; a key already in the
journal is answered from it (no create is sent again), so re-running the same
command after a crash or Ctrl-C only resumes polling what is still running.
"""

from __future__ import annotations

import csv
import hashlib
import inspect
import io
import json
import sys
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any, Final

import anyio
import attrs
import typer
from rich.console import Console

from ._api import (
    AIVideoError,
    AIVideoMaker,
    InvalidInput,
    JobError,
    JobHandle,
    JobSpec,
    JournalEntry,
    Miraflow,
    Orchestrator,
    ReconcileOutcome,
    SQLiteJournal,
    SubmissionOutcomeUnknown,
    SubmissionState,
)
from ._app import app, fail, run_async
from ._clients import Clients, download_result, extension, open_clients, poll_policy, safe_name
from ._errors import ExitCode
from ._live import EventLog, LiveView, Row, make_console, paused_providers, phase_of
from ._manifest import ManifestLine, ManifestProblem, parse_manifest
from ._options import base_url_option, with_options
from ._output import emit_json, print_table

__all__ = ["KINDS", "build_spec", "BatchRun"]

KINDS: Final[Mapping[str, tuple[str, ...]]] = {
    "miraflow": ("video", "video-from-audio", "image", "edit-image", "inpaint"),
    "aivideomaker": ("t2v", "i2v", "lv", "t2v_v3", "i2v_v3"),
    "nemovideo": ("render",),
}
"""The job kinds a manifest line may name, per provider."""


class _Builders:
    """Spec builders of the providers; they do no IO, so no key is needed to use them."""

    def __init__(self, clients: Clients | None = None) -> None:
        if clients is not None and "miraflow" in clients.by_provider:
            self.mira = clients.mira
        else:
            self.mira = Miraflow("offline-validation")
        if clients is not None and "aivideomaker" in clients.by_provider:
            self.avm = clients.avm
        else:
            self.avm = AIVideoMaker("offline-validation")


def _builder(builders: _Builders, provider: str, kind: str) -> Callable[..., JobSpec]:
    if provider == "miraflow":
        mira = builders.mira
        by_kind: dict[str, Callable[..., JobSpec]] = {
            "video": mira.video,
            "video-from-audio": mira.video_from_audio,
            "image": mira.image,
            "edit-image": mira.edit_image,
            "inpaint": mira.inpaint,
        }
        return by_kind[kind]
    avm = builders.avm
    if kind in ("t2v", "t2v_v3"):

        def t2v(**params: Any) -> JobSpec:
            return avm.text_to_video(model=kind, **params)

        t2v.__signature__ = _without(avm.text_to_video, "model")  # type: ignore[attr-defined]
        return t2v
    if kind in ("i2v", "i2v_v3"):

        def i2v(**params: Any) -> JobSpec:
            return avm.image_to_video(model=kind, **params)

        i2v.__signature__ = _without(avm.image_to_video, "model")  # type: ignore[attr-defined]
        return i2v
    return avm.long_video


def _without(fn: Callable[..., Any], name: str) -> inspect.Signature:
    sig = inspect.signature(fn)
    return sig.replace(parameters=[p for p in sig.parameters.values() if p.name != name])


def render_id_for(key: str) -> str:
    """
    The NemoVideo render id of a manifest key: derived from the key, so a re-run
    sends the same payload (and the journal recognises it).

    Example:
        >>> render_id_for("row-1")[:7], len(render_id_for("row-1"))
        ('render_', 39)
    """
    return "render_" + hashlib.sha256(key.encode()).hexdigest()[:32]


_RENDER_FIELDS: Final = frozenset({"session_id", "output_format", "quality"})


def check_line(line: ManifestLine, builders: _Builders | None = None) -> JobSpec | None:
    """
    Build the :class:`JobSpec` of one manifest line without any IO (``None`` for
    a NemoVideo render, whose draft is read from its session later).

    Raises:
        InvalidInput: params the builder refuses (unknown or missing names, bad values).

    Example:
        >>> line = ManifestLine(line=1, provider="miraflow", kind="image",
        ...                     params={"prompt": "a fox"}, key="k")
        >>> check_line(line).endpoint
        'POST /api/image/generate'
    """
    params = dict(line.params)
    if line.provider == "nemovideo":
        session_id = params.get("session_id")
        if not isinstance(session_id, str) or not session_id:
            raise InvalidInput(
                field="params.session_id", value=session_id, expected="the session to render"
            )
        extra = sorted(set(params) - _RENDER_FIELDS)
        if extra:
            raise InvalidInput(
                field="params", value=extra, expected="only " + ", ".join(sorted(_RENDER_FIELDS))
            )
        return None
    builder = _builder(builders or _Builders(), line.provider, line.kind)
    signature = inspect.signature(builder)
    try:
        signature.bind(**params)
    except TypeError as exc:
        names = ", ".join(p for p in signature.parameters if p not in ("key", "tag"))
        raise InvalidInput(
            field="params", value=sorted(params), expected=f"fields among {names} ({exc})"
        ) from None
    if line.provider == "miraflow" and line.kind.startswith("video"):
        params.setdefault("key", line.key)  # the name tag that lets a lost create be found
    return builder(**params)


async def build_spec(clients: Clients, line: ManifestLine) -> JobSpec:
    """
    The :class:`JobSpec` of one manifest line with the opened clients (a
    NemoVideo render reads its session's draft first; nothing is created).
    """
    spec = check_line(line, _Builders(clients))
    if spec is not None:
        return spec
    params = dict(line.params)
    session_id = str(params.pop("session_id"))
    state = await clients.nemo.state(session_id)
    # The render id comes from the key: a re-run sends the same payload.
    return clients.nemo.render_spec(session_id, state, render_id=render_id_for(line.key), **params)


def _problems(lines: Sequence[ManifestLine]) -> list[ManifestProblem]:
    problems: list[ManifestProblem] = []
    builders = _Builders()
    for line in lines:
        try:
            check_line(line, builders)
        except InvalidInput as exc:
            problems.append(ManifestProblem(line=line.line, reason=_reason(exc)))
    return problems


def _reason(exc: InvalidInput) -> str:
    text = str(exc)
    return text.split("]: ", 1)[1] if text.startswith("[") and "]: " in text else text


def _read_manifest(path: Path) -> tuple[list[ManifestLine], list[ManifestProblem]]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        fail(f"cannot read the manifest {path}: {exc.strerror}")
    except UnicodeDecodeError:
        fail(f"the manifest {path} is not UTF-8 text")
    return parse_manifest(text.splitlines(), kinds=KINDS)


def _count_lines(path: Path) -> int:
    text = path.read_text(encoding="utf-8")
    return sum(1 for raw in text.splitlines() if raw.strip() and not raw.strip().startswith("#"))


def _report_problems(problems: Sequence[ManifestProblem], total: int) -> None:
    for problem in problems:
        sys.stderr.write(f"error: manifest {problem}\n")
    sys.stderr.write(f"{len(problems)} bad line(s) out of {total}; nothing was submitted\n")


@attrs.define
class Outcome:
    """One line of the final report."""

    line: int | None
    key: str
    provider: str
    kind: str
    submission: str
    job_id: str | None
    outcome: str
    error: str
    file: str

    @property
    def ok(self) -> bool:
        """Whether the job succeeded."""
        return self.outcome == "succeeded"


class BatchRun:
    """Submit, track, download and report: shared by ``batch`` and ``resume``."""

    def __init__(
        self,
        orch: Orchestrator,
        clients: Clients,
        console: Console,
        *,
        concurrency: int,
        download: Path | None,
        title: str,
    ) -> None:
        self.orch = orch
        self.clients = clients
        self.console = console
        self.concurrency = concurrency
        self.download = download
        self.rows: list[Row] = []
        self.by_key: dict[str, Row] = {}
        self.lines: dict[str, int] = {}
        self.files: dict[str, str] = {}
        self.errors: dict[str, str] = {}
        self.handles: list[JobHandle] = []
        self.events = EventLog(on_event=self._event)
        self.view = LiveView(
            console, self.rows, stats=self._totals, events=self.events, title=title
        )

    def _event(self, text: str) -> None:
        self.view.event_line(text)

    def _totals(self) -> dict[str, Any]:
        stats = self.orch.stats()
        out: dict[str, Any] = {"create calls": stats["creates"], "from journal": stats["existing"]}
        out["retries"] = self.events.retries
        sched = self.orch.scheduler.stats()
        out["429s"] = sched.get("rate_limited", 0)
        out["paused"] = paused_providers(sched)
        if self.download is not None:
            out["downloaded"] = len(self.files)
        return out

    async def run(
        self, specs: Sequence[tuple[ManifestLine, JobSpec]], *, resume: bool = True
    ) -> list[Outcome]:
        with self.events:
            async with anyio.create_task_group() as tg:
                tg.start_soon(self.view.run)
                try:
                    if resume:
                        await self._resume()
                    limiter = anyio.Semaphore(self.concurrency)
                    async with anyio.create_task_group() as submits:
                        for line, spec in specs:
                            row = self._row(line.key, line.provider, line.kind, line.line)
                            submits.start_soon(self._submit, limiter, row, spec)
                    async with anyio.create_task_group() as finish:
                        async for handle in self.orch.as_completed(self.handles):
                            finish.start_soon(self._finished, handle)
                finally:
                    self.view.stop()
        return await self.outcomes()

    def _row(self, key: str, provider: str, kind: str, line: int | None) -> Row:
        if line is not None:
            self.lines[key] = line
        row = self.by_key.get(key)
        if row is None:
            row = Row(key=key, provider=provider, kind=kind)
            self.rows.append(row)
            self.by_key[key] = row
        return row

    async def _resume(self) -> None:
        """Re-attach unfinished jobs, then look for creates whose answer was lost."""
        for handle in await self.orch.resume():
            row = self._row(handle.key, handle.provider, handle.kind, None)
            row.handle = handle
            row.note = "resumed"
            self.handles.append(handle)
        if await self.orch.jobs(state=SubmissionState.UNKNOWN):
            for result in await self.orch.reconcile():
                if result.outcome is ReconcileOutcome.FOUND and result.handle is not None:
                    row = self._row(result.key, result.provider, result.handle.kind, None)
                    row.handle = result.handle
                    row.note = "reconciled"
                    self.handles.append(result.handle)
                    self.events.add(f"reconcile: {result.key} -> job {result.job_id} (found)")

    async def _submit(self, limiter: anyio.Semaphore, row: Row, spec: JobSpec) -> None:
        if row.handle is not None:
            return  # resumed or reconciled above
        async with limiter:
            row.phase = "submitting"
            try:
                handle = await self.orch.submit(spec, key=row.key)
            except SubmissionOutcomeUnknown:
                row.phase = "unknown"
                row.note = "create outcome unknown; never resent (aivideo reconcile)"
                return
            except AIVideoError as exc:
                row.phase = phase_of(exc)
                row.note = str(exc)[:200]
                self.errors[row.key] = str(exc)
                return
        row.handle = handle
        if handle not in self.handles:
            self.handles.append(handle)

    async def _finished(self, handle: JobHandle) -> None:
        if self.download is None:
            return
        try:
            result = handle.result_nowait()
        except JobError:
            return
        dest = self.download / (safe_name(handle.key) + extension(result.provider, result.kind))
        row = self._row(handle.key, handle.provider, handle.kind, None)
        if dest.exists():
            self.files[handle.key] = str(dest)  # downloaded by an earlier run
            return
        row.note = "downloading"
        try:
            path = await download_result(self.clients, result, dest)
        except AIVideoError as exc:
            row.note = f"download failed: {exc}"[:200]
            self.errors[handle.key] = f"download failed: {exc}"
            return
        self.files[handle.key] = str(path)
        row.note = f"-> {path}"

    async def outcomes(self) -> list[Outcome]:
        """The report: each row with what the journal says about it."""
        entries = {e.key: e for e in await self.orch.jobs()}
        out: list[Outcome] = []
        for row in self.rows:
            entry = entries.get(row.key)
            out.append(
                Outcome(
                    line=self.lines.get(row.key),
                    key=row.key,
                    provider=row.provider,
                    kind=row.kind,
                    submission=entry.state.value if entry else row.phase,
                    job_id=entry.job_id if entry else None,
                    outcome=_outcome(row, entry),
                    error=self.errors.get(row.key)
                    or (row.message if row.state != "succeeded" else ""),
                    file=self.files.get(row.key, ""),
                )
            )
        # Manifest order; jobs resumed from other runs of the journal last.
        out.sort(key=lambda o: (o.line is None, o.line or 0))
        return out


def _outcome(row: Row, entry: JournalEntry | None) -> str:
    if row.state == "invalid":
        return row.state  # the journal entry under this key is another request's
    if entry is not None and entry.outcome is not None and entry.outcome.final:
        return entry.outcome.value
    return row.state


def write_report(path: Path, outcomes: Sequence[Outcome]) -> None:
    """Write the report as JSON (``.json``) or CSV (anything else)."""
    rows = [attrs.asdict(o) for o in outcomes]
    if path.suffix.lower() == ".json":
        path.write_text(json.dumps(rows, indent=2) + "\n", encoding="utf-8")
        return
    buffer = io.StringIO()
    fields = [f.name for f in attrs.fields(Outcome)]
    writer = csv.DictWriter(buffer, fieldnames=fields)
    writer.writeheader()
    writer.writerows(rows)
    path.write_text(buffer.getvalue(), encoding="utf-8")


def print_outcomes(console: Console, outcomes: Sequence[Outcome]) -> None:
    """The final summary: counts by outcome and every job that did not succeed."""
    counts: dict[str, int] = {}
    for o in outcomes:
        counts[o.outcome] = counts.get(o.outcome, 0) + 1
    console.print(
        f"{len(outcomes)} jobs: " + ", ".join(f"{n} {k}" for k, n in sorted(counts.items())),
        highlight=False,
    )
    bad = [o for o in outcomes if not o.ok]
    if bad:
        print_table(
            [
                (o.line, o.key, f"{o.provider}/{o.kind}", o.outcome, o.job_id, o.error)
                for o in bad[:50]
            ],
            ("line", "key", "provider/kind", "outcome", "job id", "error"),
            title="not succeeded",
            console=console,
        )
        if len(bad) > 50:
            console.print(f"... and {len(bad) - 50} more (see --report)")


def _exit_code(outcomes: Sequence[Outcome]) -> int:
    return int(ExitCode.OK if all(o.ok for o in outcomes) else ExitCode.JOBS_FAILED)


# -- commands ------------------------------------------------------------------------------

JournalOpt = Annotated[
    Path, typer.Option("--journal", "-j", help="The SQLite journal (created if missing).")
]
BaseUrlOpt = Annotated[
    str | None,
    base_url_option("Send every provider's calls here (e.g. an emulator: http://127.0.0.1:8765)."),
]
ConcurrencyOpt = Annotated[
    int, typer.Option("--concurrency", "-c", min=1, max=256, help="Creates in flight at once.")
]
DownloadOpt = Annotated[
    Path | None, typer.Option("--download", "-d", help="Download results into this folder.")
]
ReportOpt = Annotated[
    Path | None,
    typer.Option("--report", "-r", help="Write a report: .json, or .csv for anything else."),
]
PollInitialOpt = Annotated[
    float | None,
    typer.Option("--poll-initial", min=0.05, help="Seconds before a job's first poll (default 2)."),
]
PollCapOpt = Annotated[
    float | None,
    typer.Option("--poll-cap", min=0.05, help="Longest wait between two polls (default 15)."),
]
PlainOpt = Annotated[bool, typer.Option("--plain", help="Plain line output even on a terminal.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON.")]


@attrs.frozen(kw_only=True)
class PollOptions:
    """
    ``--poll-initial`` and ``--poll-cap``: how often the jobs are polled.

    Example:
        >>> PollOptions(poll_initial=0.2).policy()["poll_policy"].initial
        0.2
        >>> PollOptions().policy()
        {}
    """

    poll_initial: PollInitialOpt = None
    poll_cap: PollCapOpt = None

    def policy(self) -> dict[str, Any]:
        """The orchestrator's ``poll_policy`` argument, when one was asked for."""
        policy = poll_policy(self.poll_initial, self.poll_cap)
        return {} if policy is None else {"poll_policy": policy}


@attrs.frozen(kw_only=True)
class FollowOptions:
    """The options of the commands that follow jobs to their end (``batch``, ``resume``)."""

    download: DownloadOpt = None
    report: ReportOpt = None
    base_url: BaseUrlOpt = None
    poll: PollOptions
    plain: PlainOpt = False


Specs = list[tuple[ManifestLine, JobSpec]]


async def _no_specs(clients: Clients) -> Specs | None:
    return []


async def _follow_jobs(
    journal: Path,
    providers: Iterable[str],
    options: FollowOptions,
    console: Console,
    *,
    title: str,
    specs: Callable[[Clients], Awaitable[Specs | None]] = _no_specs,
    concurrency: int = 1,
    resubmit_not_sent: bool = False,
    resubmit_refused: bool = False,
) -> int:
    """
    Open the clients and the journal's orchestrator, submit ``specs`` (after
    re-attaching what the journal has unfinished), follow every job to its end,
    download and report; returns the exit code. ``specs`` returning ``None``
    means it reported bad lines: nothing is sent and the code is ``USAGE``.
    """
    async with open_clients(providers, options.base_url) as clients:
        built = await specs(clients)
        if built is None:
            return int(ExitCode.USAGE)
        async with Orchestrator(
            journal=journal,
            backends=clients.backends,
            resubmit_not_sent=resubmit_not_sent,
            resubmit_refused=resubmit_refused,
            **options.poll.policy(),
        ) as orch:
            run = BatchRun(
                orch,
                clients,
                console,
                concurrency=concurrency,
                download=options.download,
                title=title,
            )
            outcomes = await run.run(built)
    return _finish(console, outcomes, options.report)


@app.command(
    epilog="Manifest: one JSON object per line, e.g. "
    '{"provider": "aivideomaker", "kind": "t2v", "params": {"prompt": "waves", '
    '"duration": 5}, "key": "row-1"}. Kinds: miraflow video, video-from-audio, image, '
    "edit-image, inpaint; aivideomaker t2v, i2v, lv, t2v_v3, i2v_v3; nemovideo render "
    "(params: session_id). params are the builder's keyword arguments."
)
@with_options
def batch(
    manifest: Annotated[Path, typer.Argument(help="JSON Lines: provider, kind, params, key.")],
    journal: JournalOpt,
    concurrency: ConcurrencyOpt = 8,
    *,
    options: FollowOptions,
) -> None:
    """
    Submit one job per manifest line, each create at most once (journaled by
    key), follow them to the end, download, report. Re-run the same command
    after a crash or Ctrl-C: nothing is sent twice; polling resumes.
    """
    lines, problems = _read_manifest(manifest)
    problems = sorted([*problems, *_problems(lines)], key=lambda p: p.line)
    if problems:
        _report_problems(problems, _count_lines(manifest))
        raise typer.Exit(int(ExitCode.USAGE))
    if not lines:
        fail(f"the manifest {manifest} has no job lines")
    console = make_console(plain=options.plain)

    async def specs(clients: Clients) -> Specs | None:
        built: Specs = []
        bad: list[ManifestProblem] = []
        for line in lines:
            try:
                built.append((line, await build_spec(clients, line)))
            except InvalidInput as exc:
                bad.append(ManifestProblem(line=line.line, reason=_reason(exc)))
        if bad:
            _report_problems(bad, len(lines))
            return None
        return built

    async def main() -> int:
        providers = {line.provider for line in lines}
        if journal.exists():
            # Resume needs every provider the journal mentions, not just this manifest's.
            providers |= await _journal_providers(journal)
        return await _follow_jobs(
            journal,
            providers,
            options,
            console,
            title=f"aivideo batch {manifest.name}",
            specs=specs,
            concurrency=concurrency,
            # A create that provably never left (Ctrl-C before its first byte,
            # connection refused), or that the provider refused for credits or
            # rate (no job was created), is sent on the re-run: no duplicate.
            resubmit_not_sent=True,
            resubmit_refused=True,
        )

    run_async(main)


def _finish(console: Console, outcomes: Sequence[Outcome], report: Path | None) -> int:
    print_outcomes(console, outcomes)
    if report is not None:
        write_report(report, outcomes)
        console.print(f"report: {report}", highlight=False)
    return _exit_code(outcomes)


async def _journal_providers(path: Path) -> set[str]:
    async with SQLiteJournal(path, lock=False) as journal:
        return {e.provider for e in await journal.query()}


def _need_journal(path: Path) -> None:
    if not path.exists():
        fail(f"no journal at {path}")


@app.command()
@with_options
def resume(journal: JournalOpt, *, options: FollowOptions) -> None:
    """
    Re-attach to every unfinished job in the journal (and look for lost
    creates), follow them to the end; no create is sent.
    """
    _need_journal(journal)
    console = make_console(plain=options.plain)

    async def main() -> int:
        providers = await _journal_providers(journal)
        return await _follow_jobs(journal, providers, options, console, title="aivideo resume")

    run_async(main)


@app.command()
def reconcile(
    journal: JournalOpt,
    base_url: BaseUrlOpt = None,
    json_output: JsonOpt = False,
) -> None:
    """
    Resolve creates whose outcome is unknown by asking each provider (client-chosen
    ids, task lists, name tags). Never resends. Exit 0 when none is left unknown.
    """
    _need_journal(journal)
    console = make_console()

    async def main() -> int:
        providers = await _journal_providers(journal)
        async with (
            open_clients(providers, base_url) as clients,
            Orchestrator(journal=journal, backends=clients.backends) as orch,
        ):
            results = await orch.reconcile()
        rows = [
            {
                "key": r.key,
                "provider": r.provider,
                "outcome": r.outcome.value,
                "job_id": r.job_id,
                "error": r.error,
            }
            for r in results
        ]
        if json_output:
            emit_json(rows)
        elif not rows:
            console.print("no unknown outcomes in the journal")
        else:
            print_table(
                [(r["key"], r["provider"], r["outcome"], r["job_id"], r["error"]) for r in rows],
                ("key", "provider", "outcome", "job id", "error"),
                title="reconcile",
                console=console,
            )
            console.print("found jobs are tracked by `aivideo resume`")
        left = [r for r in results if not r.resolved]
        return int(ExitCode.OK if not left else ExitCode.OUTCOME_UNKNOWN)

    run_async(main)


@app.command()
def jobs(
    journal: JournalOpt,
    state_filter: Annotated[
        str | None,
        typer.Option(
            "--state",
            help="Only entries in this submission state: "
            + ", ".join(s.value for s in SubmissionState),
        ),
    ] = None,
    provider: Annotated[
        str | None, typer.Option("--provider", help="Only this provider's entries.")
    ] = None,
    limit: Annotated[int | None, typer.Option("--limit", min=1, help="At most N entries.")] = None,
    json_output: JsonOpt = False,
) -> None:
    """List the journal's entries: key, provider, kind, submission state, job id, outcome."""
    _need_journal(journal)
    wanted: SubmissionState | None = None
    if state_filter is not None:
        try:
            wanted = SubmissionState(state_filter)
        except ValueError:
            fail(
                f"--state: got {state_filter!r}, expected one of "
                + ", ".join(s.value for s in SubmissionState)
            )

    async def main() -> int:
        async with SQLiteJournal(journal, lock=False) as opened:
            entries = await opened.query(state=wanted, provider=provider, limit=limit)
        rows: list[dict[str, Any]] = [
            {
                "key": e.key,
                "provider": e.provider,
                "kind": e.kind,
                "state": e.state.value,
                "job_id": e.job_id,
                "outcome": e.outcome.value if e.outcome else None,
                "attempt": e.attempt,
                "error": (e.error.message or e.error.type) if e.error else e.outcome_message,
            }
            for e in entries
        ]
        if json_output:
            emit_json(rows)
            return 0
        # "#" is a plain column here, not print_table's right-aligned numbering:
        # this table has always looked so.
        print_table(
            [
                (
                    number,
                    r["key"],
                    f"{r['provider']}/{r['kind']}",
                    r["state"],
                    r["job_id"],
                    r["outcome"],
                    r["error"],
                )
                for number, r in enumerate(rows, start=1)
            ],
            ("#", "key", "provider/kind", "state", "job id", "outcome", "error"),
            title=f"{journal} ({len(rows)} entries)",
        )
        return 0

    run_async(main)
