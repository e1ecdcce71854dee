"""
``aivideo demo``: a mixed batch through the orchestrator against the embedded emulator.

The emulator runs in-process with short but realistic job durations and a few
faults: 429s on polls (retried, and one provider pause), slow polls, a
download cut midway, and one create whose answer is dropped after the
provider committed it. That create becomes ``SubmissionOutcomeUnknown``; it is
never resent, and ``reconcile`` finds the job it made. The summary proves it
from the emulator's own accounting: creates received vs jobs, duplicates.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import anyio
import attrs
from rich.console import Console
from rich.table import Table
from rich.text import Text

from ._api import (
    AIVideoError,
    AIVideoMaker,
    Emulator,
    EmulatorConfig,
    FaultRule,
    JobError,
    JobHandle,
    JobResult,
    JobSpec,
    Miraflow,
    NemoVideo,
    Orchestrator,
    PollPolicy,
    ReconcileOutcome,
    RetryPolicy,
    SubmissionOutcomeUnknown,
    TextEvent,
    ToolCall,
)
from ._live import EventLog, LiveView, Row, outcome_of, paused_providers, phase_of

__all__ = ["DemoOptions", "DemoSummary", "run_demo", "demo_faults", "plan_batch", "print_summary"]

DEMO_KEY = "demo-key"
"""The API key the demo's clients send (the emulator accepts any non-empty key)."""

JOURNAL_NAME = "demo-journal.sqlite"

MIN_JOBS = 8
"""The smallest demo batch: one job of each kind, two AIVideoMaker t2v, the NemoVideo pair."""

# Short but realistic: a job takes 3-10 s (images half that), polls start
# after 0.5 s and back off to 2 s, so the whole batch ends in about 20 s.
_JOB_DURATION = (6.0, 16.0)
_POLL = PollPolicy(initial=0.5, factor=1.5, cap=2.0, deadline=50.0)
# One quick retry of a failed read. A 429 whose Retry-After is longer than
# 1.5 s is not retried by the session: it reaches the scheduler, which pauses
# every poll of that provider for that long (visible in the view).
_RETRY = RetryPolicy(attempts=2, base=0.2, cap=1.0, retry_after_cap=1.5)

_SCRIPTS = (
    "Welcome to our spring collection.",
    "Here are three tips for a better morning.",
    "Meet the team behind the product.",
    "Thank you for joining the webinar.",
    "Our quarterly results at a glance.",
    "How to set up your new device in one minute.",
    "A short safety briefing before we start.",
    "Happy birthday from all of us!",
)
_SUBJECTS = (
    "a red fox in fresh snow",
    "a lighthouse at dusk",
    "a bowl of ramen, top view",
    "a mountain lake at sunrise",
    "a vintage car on a coastal road",
    "a hummingbird near a flower",
    "a neon city street in the rain",
    "a cup of coffee with latte art",
    "a paper boat on a puddle",
    "a field of sunflowers",
)


@attrs.frozen(kw_only=True)
class DemoOptions:
    """
    Options of ``aivideo demo``.

    Example:
        >>> DemoOptions().jobs
        30
    """

    seed: int = 0
    jobs: int = 30
    out: Path = Path("aivideo-demo-out")
    faults: bool = True
    download: bool = True


@attrs.define(kw_only=True)
class DemoSummary:
    """What the demo did, as its summary table and ``--json`` show it."""

    jobs: int = 0
    outcomes: dict[str, int] = attrs.field(factory=dict)
    all_terminal: bool = False
    http_requests: int = 0
    requests_by_provider: dict[str, int] = attrs.field(factory=dict)
    creates_sent: int = 0
    creates_by_provider: dict[str, int] = attrs.field(factory=dict)
    duplicate_creates: int = 0
    create_calls: int = 0
    unknown_outcomes: int = 0
    reconciled: list[dict[str, Any]] = attrs.field(factory=list)
    retries: int = 0
    rate_limited_polls: int = 0
    provider_pauses: int = 0
    polls: int = 0
    coalesced_calls: int = 0
    faults_fired: dict[str, int] = attrs.field(factory=dict)
    downloads: int = 0
    download_bytes: int = 0
    download_errors: list[str] = attrs.field(factory=list)
    failures: list[dict[str, str]] = attrs.field(factory=list)
    out: str = ""
    wall_time_s: float = 0.0

    @property
    def ok(self) -> bool:
        """The demo's promise: every job ended, one create per job, nothing unresolved."""
        return (
            self.all_terminal
            and self.duplicate_creates == 0
            and self.creates_sent == self.jobs
            and all(r["outcome"] == "found" for r in self.reconciled)
        )

    def as_dict(self) -> dict[str, Any]:
        """The JSON of ``--json``."""
        data = attrs.asdict(self)
        data["ok"] = self.ok
        return data


def demo_faults(seed: int) -> list[FaultRule]:
    """
    The faults of the demo (the seed only moves the 429s a little).

    Example:
        >>> sorted({rule.kind for rule in demo_faults(0)})
        ['drop_after_commit', 'latency', 'rate_limit', 'reset_download']
    """
    shift = seed % 3
    return [
        # The answer to the 2nd AIVideoMaker create is lost after the task was made.
        FaultRule(endpoint="aivideomaker.create", kind="drop_after_commit", schedule=[2]),
        # A few 429s on polls: short ones are retried by the session; a longer
        # one pauses every poll of that provider (the scheduler's job).
        FaultRule(
            endpoint="miraflow.status",
            kind="rate_limit",
            schedule=[6 + shift, 30 + shift],
            params={"retry_after": 1},
        ),
        FaultRule(
            endpoint="miraflow.status",
            kind="rate_limit",
            schedule=[18 + shift],
            params={"retry_after": 3},
        ),
        FaultRule(
            endpoint="aivideomaker.list",
            kind="rate_limit",
            schedule=[3 + shift],
            params={"retry_after": 2, "form": "date"},
        ),
        # Slow polls.
        FaultRule(endpoint="*.status", kind="latency", probability=0.3, params={"seconds": 0.4}),
        FaultRule(
            endpoint="nemovideo.render_status",
            kind="latency",
            probability=0.5,
            params={"seconds": 0.3},
        ),
        # One download cut halfway (the client restarts it).
        FaultRule(
            endpoint="aivideomaker.download",
            kind="reset_download",
            schedule=[2],
            params={"fraction": 0.5},
        ),
    ]


@attrs.frozen(kw_only=True)
class Planned:
    """One demo job: its row and how to build its spec."""

    row: Row
    build: str
    args: Mapping[str, Any]


def plan_batch(jobs: int, seed: int) -> list[Planned]:
    """
    The mixed batch: Miraflow avatar videos and images, AIVideoMaker t2v/i2v/lv,
    one NemoVideo chat turn and its render. About 30 jobs by default.

    Example:
        >>> plan = plan_batch(30, 0)
        >>> len(plan), sorted({p.row.provider for p in plan})
        (30, ['aivideomaker', 'miraflow', 'nemovideo'])
    """
    jobs = max(MIN_JOBS, jobs)
    nemo = 2  # the chat turn, then the render of its draft
    # At least one of each kind, and two AIVideoMaker t2v: the demo's lost create is
    # the 2nd AIVideoMaker create. The rest is shared out in proportion.
    counts = {"mf-video": 1, "mf-image": 1, "avm-t2v": 2, "avm-i2v": 1, "avm-lv": 1}
    rest = jobs - nemo - sum(counts.values())
    shares = [("mf-video", 8), ("mf-image", 8), ("avm-t2v", 6), ("avm-i2v", 4), ("avm-lv", 2)]
    total = sum(n for _, n in shares)
    for name, n in shares:
        counts[name] += (rest * n) // total
    left = jobs - nemo - sum(counts.values())
    for name, _ in shares[:left]:  # the remainder, in order
        counts[name] += 1
    tag = f"demo/s{seed}"

    def planned(
        build: str, i: int, provider: str, kind: str, label: str, args: Mapping[str, Any]
    ) -> Planned:
        # The key ends in the kind and number: it names the downloaded file (_dest).
        row = Row(key=f"{tag}/{build}-{i + 1:02d}", provider=provider, kind=kind, label=label)
        return Planned(row=row, build=build, args=args)

    plan: list[Planned] = []
    for i in range(counts["mf-video"]):
        script = _SCRIPTS[i % len(_SCRIPTS)]
        args = {"avatar": i, "name": f"demo video {i + 1}", "text": f"{script} ({i + 1})"}
        plan.append(planned("mf-video", i, "miraflow", "video", script, args))
    for i in range(counts["mf-image"]):
        subject = _SUBJECTS[i % len(_SUBJECTS)]
        args = {"prompt": f"{subject}, photo {i + 1}", "aspect_ratio": "16:9"}
        plan.append(planned("mf-image", i, "miraflow", "image", subject, args))
    for name, model in (("avm-t2v", "t2v"), ("avm-i2v", "i2v"), ("avm-lv", "lv")):
        for i in range(counts[name]):
            subject = _SUBJECTS[(i + 3) % len(_SUBJECTS)]
            args = {
                "prompt": f"{subject}, cinematic, take {i + 1}",
                "image": f"https://example.com/frames/{model}-{i + 1}.jpg",
            }
            plan.append(planned(name, i, "aivideomaker", model, subject, args))
    plan.append(
        Planned(
            row=Row(key=f"{tag}/nemo-chat", provider="nemovideo", kind="chat", label="chat turn"),
            build="nemo-chat",
            args={"text": "Make a 5-second sunset timelapse with soft music"},
        )
    )
    plan.append(
        Planned(
            row=Row(key=f"{tag}/nemo-render", provider="nemovideo", kind="render", label="render"),
            build="nemo-render",
            args={},
        )
    )
    return plan


class _Clients:
    def __init__(self, base_url: str, out: Path) -> None:
        common: dict[str, Any] = {"base_url": base_url, "retry": _RETRY}
        self.mira = Miraflow(DEMO_KEY, **common)
        self.avm = AIVideoMaker(DEMO_KEY, **common)
        self.nemo = NemoVideo(
            base_url=base_url,
            retry=_RETRY,
            client_id_file=out / ".nemovideo-client-id",
            skill_platform="aivideo-demo",
        )

    @contextlib.asynccontextmanager
    async def opened(self) -> Any:
        async with self.mira, self.avm, self.nemo:
            yield self


def _spec(clients: _Clients, item: Planned, avatars: Sequence[Any]) -> JobSpec:
    a = item.args
    match item.build:
        case "mf-video":
            avatar = avatars[a["avatar"] % len(avatars)]
            return clients.mira.video(
                avatar_id=avatar.id, name=a["name"], text=a["text"], key=item.row.key
            )
        case "mf-image":
            return clients.mira.image(prompt=a["prompt"], aspect_ratio=a["aspect_ratio"])
        case "avm-t2v":
            return clients.avm.text_to_video(prompt=a["prompt"], duration=5)
        case "avm-i2v":
            return clients.avm.image_to_video(image=a["image"], prompt=a["prompt"], duration=5)
        case "avm-lv":
            return clients.avm.long_video(
                image=a["image"], prompts=[a["prompt"], a["prompt"] + ", closer"]
            )
    raise AssertionError(item.build)  # pragma: no cover


def _dest(out: Path, row: Row, result: JobResult) -> Path:
    ext = ".png" if row.kind == "image" else ".mp4"
    return out / row.provider / (row.key.rsplit("/", 1)[-1] + ext)


class Demo:
    """One run of the demo (use :func:`run_demo`)."""

    def __init__(self, options: DemoOptions, console: Console, *, live: bool) -> None:
        self.options = options
        self.console = console
        self.plan = plan_batch(options.jobs, options.seed)
        self.rows = [p.row for p in self.plan]
        self.summary = DemoSummary(jobs=len(self.rows), out=str(options.out))
        self.live = live
        self.emu: Emulator | None = None
        self.orch: Orchestrator | None = None
        self.events = EventLog(on_event=self._event)
        self.view = LiveView(
            console,
            self.rows,
            stats=self._totals,
            events=self.events,
            title=f"aivideo demo (seed {options.seed}, emulator in-process)",
        )
        self._unknown: list[Planned] = []
        self._downloads = anyio.Semaphore(4)

    def _event(self, text: str) -> None:
        if self.live:
            self.view.event_line(text)

    def _totals(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.emu is not None:
            stats = self.emu.stats()
            out["HTTP"] = sum(stats["requests"].values())
            out["creates"] = sum(stats["creates"].values())
        out["retries"] = self.events.retries
        sched = self._scheduler_stats()
        if sched is not None:
            out["429s"] = sched.get("rate_limited", 0)
            out["pauses"] = sched.get("pauses", 0)
            out["paused"] = paused_providers(sched)
        out["downloaded"] = self.summary.downloads
        return out

    def _scheduler_stats(self) -> dict[str, Any] | None:
        if self.orch is None:
            return None
        try:
            return dict(self.orch.scheduler.stats())
        except RuntimeError:  # not running (yet, or any more)
            return None

    async def run(self) -> DemoSummary:
        started = time.monotonic()
        out = self.options.out
        out.mkdir(parents=True, exist_ok=True)
        journal = out / JOURNAL_NAME
        for suffix in ("", "-wal", "-shm", ".lock"):
            # A demo run starts a fresh journal: its jobs lived in the last emulator.
            with contextlib.suppress(FileNotFoundError):
                os.unlink(f"{journal}{suffix}")
        config = EmulatorConfig(
            seed=self.options.seed,
            job_duration=_JOB_DURATION,
            failure_rate=0.05,
            aivideomaker_query_limit=0,
            sse_heartbeat_interval=0.5,
            faults=demo_faults(self.options.seed) if self.options.faults else (),
        )
        with self.events:
            async with Emulator(config) as emu:
                self.emu = emu
                clients = _Clients(emu.base_url, out)
                async with clients.opened():
                    orch = Orchestrator(
                        journal=journal,
                        backends=[clients.mira, clients.avm, clients.nemo],
                        poll_policy=_POLL,
                    )
                    async with orch:
                        self.orch = orch
                        await self._drive(orch, clients)
                        self.summary.create_calls = orch.stats()["creates"]
                        self._collect(emu, orch)
                    self.orch = None
        self.summary.wall_time_s = round(time.monotonic() - started, 2)
        return self.summary

    async def _drive(self, orch: Orchestrator, clients: _Clients) -> None:
        async with anyio.create_task_group() as tg:
            if self.live:
                tg.start_soon(self.view.run)
            try:
                avatars = await clients.mira.list_avatars()
                handles: list[JobHandle] = []
                submitted = anyio.Event()
                async with anyio.create_task_group() as submits:
                    # Reconcile runs alongside the submits: a lost create is looked
                    # for as soon as it is known, while the rest of the batch goes on.
                    submits.start_soon(self._reconcile, orch, handles, submitted)
                    async with anyio.create_task_group() as creates:
                        for item in self.plan:
                            if item.build.startswith("nemo"):
                                continue
                            creates.start_soon(
                                self._submit, orch, item, _spec(clients, item, avatars), handles
                            )
                        creates.start_soon(self._nemo, orch, clients, handles)
                    submitted.set()
                async with anyio.create_task_group() as finish:
                    async for handle in orch.as_completed(handles):
                        finish.start_soon(self._finished, clients, handle)
            finally:
                self.view.stop()

    async def _submit(
        self, orch: Orchestrator, item: Planned, spec: JobSpec, handles: list[JobHandle]
    ) -> None:
        row = item.row
        row.phase = "submitting"
        try:
            handle = await orch.submit(spec, key=row.key)
        except SubmissionOutcomeUnknown as exc:
            row.phase = "unknown"
            row.note = "create answer lost; never resent"
            self.summary.unknown_outcomes += 1
            self._unknown.append(item)
            self.events.add(f"{self.view.elapsed():5.1f}s  unknown outcome: {exc.message[:90]}")
            return
        except AIVideoError as exc:
            row.phase = phase_of(exc)
            row.note = str(exc)[:120]
            return
        row.handle = handle
        handles.append(handle)

    async def _nemo(self, orch: Orchestrator, clients: _Clients, handles: list[JobHandle]) -> None:
        chat = next(p for p in self.plan if p.build == "nemo-chat")
        render = next(p for p in self.plan if p.build == "nemo-render")
        nemo = clients.nemo
        chat.row.phase = "submitting"
        try:
            info = await nemo.create_session("aivideo demo", language="en")
            chat.row.phase = "streaming"
            events = 0
            async with nemo.chat(info.session_id, chat.args["text"]) as stream:
                async for event in stream:
                    events += 1
                    if isinstance(event, TextEvent) and event.text.strip():
                        chat.row.note = event.text.strip().splitlines()[0][:60]
                    elif isinstance(event, ToolCall):
                        chat.row.note = f"tool: {event.name}"
                    chat.row.manual_progress = min(0.95, events / 12)
            chat.row.phase = "succeeded"
            chat.row.manual_progress = 1.0
            state = await nemo.state(info.session_id)
            if not state.draft.is_exportable:
                state = await nemo.wait_for_state_change(
                    info.session_id, state, first_delay=0.5, interval=1.0, max_unchanged=10
                )
        except AIVideoError as exc:
            chat.row.phase = "failed"
            chat.row.note = str(exc)[:120]
            render.row.phase = "not sent"
            render.row.note = "no draft to render"
            return
        await self._submit(orch, render, nemo.render_spec(info.session_id, state), handles)

    async def _reconcile(
        self, orch: Orchestrator, handles: list[JobHandle], submitted: anyio.Event
    ) -> None:
        """Resolve the lost creates: ask each provider, never resend."""
        pending: dict[str, Planned] = {}
        deadline: float | None = None
        while True:
            for item in self._unknown:
                pending.setdefault(item.row.key, item)
            self._unknown.clear()
            if not pending:
                if submitted.is_set():
                    return
            else:
                deadline = deadline or time.monotonic() + 20.0
                for result in await orch.reconcile():
                    found = pending.pop(result.key, None)
                    if found is None:
                        continue
                    item = found
                    if result.outcome is ReconcileOutcome.FOUND and result.handle is not None:
                        item.row.handle = result.handle
                        item.row.note = "reconciled: found"
                        handles.append(result.handle)
                        self.summary.reconciled.append(
                            {"key": result.key, "outcome": "found", "job_id": result.job_id}
                        )
                        self.events.add(
                            f"{self.view.elapsed():5.1f}s  reconcile: {result.key} -> "
                            f"job {result.job_id} (found, not resent)"
                        )
                    else:
                        pending[result.key] = item
                if pending and time.monotonic() > deadline and submitted.is_set():
                    for key, item in pending.items():
                        item.row.note = "still unknown after reconcile"
                        self.summary.reconciled.append(
                            {"key": key, "outcome": "not_found", "job_id": None}
                        )
                    return
            with anyio.move_on_after(0.5):
                await submitted.wait()
            if not pending and not self._unknown and submitted.is_set():
                return

    async def _finished(self, clients: _Clients, handle: JobHandle) -> None:
        row = next(r for r in self.rows if r.handle is handle)
        try:
            result = handle.result_nowait()
        except JobError as exc:
            self.summary.failures.append({"key": row.key, "error": str(exc)[:200]})
            return
        if not self.options.download:
            return
        dest = _dest(self.options.out, row, result)
        dest.parent.mkdir(parents=True, exist_ok=True)
        async with self._downloads:
            row.note = "downloading"
            try:
                if row.provider == "miraflow":
                    path = await clients.mira.download(result, dest)
                elif row.provider == "aivideomaker":
                    path = await clients.avm.download(result, dest)
                else:
                    path = await clients.nemo.download_render(result.job_id, dest)
            except AIVideoError as exc:
                row.note = f"download failed: {exc}"[:120]
                self.summary.download_errors.append(f"{row.key}: {exc}")
                return
        row.downloaded = str(path)
        row.note = f"-> {path}"
        self.summary.downloads += 1
        self.summary.download_bytes += path.stat().st_size

    def _collect(self, emu: Emulator, orch: Orchestrator) -> None:
        s = self.summary
        stats = emu.stats()
        sched = orch.scheduler.stats()
        s.outcomes = outcome_of(self.rows)
        s.all_terminal = all(row.terminal for row in self.rows)
        s.requests_by_provider = dict(stats["requests"])
        s.http_requests = sum(stats["requests"].values())
        s.creates_by_provider = dict(stats["creates"])
        s.creates_sent = sum(stats["creates"].values())
        s.duplicate_creates = stats["duplicate_creates"]
        s.faults_fired = dict(stats["faults_fired"])
        s.retries = self.events.retries
        s.rate_limited_polls = sched.get("rate_limited", 0)
        s.provider_pauses = sched.get("pauses", 0)
        s.polls = sched.get("polls", 0)
        s.coalesced_calls = sched.get("coalesced_calls", 0)


async def run_demo(options: DemoOptions, console: Console, *, live: bool = True) -> DemoSummary:
    """
    Run the demo; ``live=False`` shows no progress (``--json``).

    Example::

        summary = await run_demo(DemoOptions(jobs=12), Console())
        assert summary.ok
    """
    return await Demo(options, console, live=live).run()


def print_summary(console: Console, s: DemoSummary) -> None:
    """The final summary table."""
    table = Table(title="demo summary", show_header=False, title_style="bold")
    table.add_column("what", style="bold")
    table.add_column("value")
    outcomes = ", ".join(f"{n} {state}" for state, n in s.outcomes.items())
    table.add_row("jobs", f"{s.jobs}: {outcomes}")
    table.add_row("every job terminal", "yes" if s.all_terminal else "NO")
    by_provider = ", ".join(f"{p} {n}" for p, n in sorted(s.requests_by_provider.items()))
    table.add_row("HTTP requests", f"{s.http_requests} ({by_provider})")
    table.add_row(
        "polls",
        f"{s.polls} scheduler polls, {s.coalesced_calls} coalesced list calls",
    )
    dup = "no duplicates" if s.duplicate_creates == 0 else f"{s.duplicate_creates} DUPLICATES"
    table.add_row(
        "creates sent vs jobs",
        f"{s.creates_sent} received by the providers for {s.jobs} jobs ({dup})",
    )
    if s.reconciled:
        how = "; ".join(f"{r['key']} -> {r['outcome']} {r['job_id'] or ''}" for r in s.reconciled)
    else:
        how = "none"
    table.add_row(
        "unknown outcomes",
        f"{s.unknown_outcomes} (never resent); reconciled: {how}",
    )
    table.add_row(
        "429s, retries, pauses",
        f"{s.rate_limited_polls} poll 429s reached the scheduler, {s.retries} retries, "
        f"{s.provider_pauses} provider pauses",
    )
    faults = ", ".join(f"{k} {v}" for k, v in sorted(s.faults_fired.items())) or "none"
    table.add_row("faults injected", faults)
    for failure in s.failures:
        table.add_row("failed job", f"{failure['key']}: {failure['error']}")
    dl = f"{s.downloads} files, {s.download_bytes / 1024:.0f} KiB into {s.out}"
    if s.download_errors:
        dl += f"; {len(s.download_errors)} failed"
    table.add_row("downloads", dl)
    table.add_row("wall time", f"{s.wall_time_s:.1f} s")
    console.print(table)
    verdict = ("OK", "bold green") if s.ok else ("NOT OK", "bold red")
    console.print(
        Text.assemble(
            verdict,
            f": {s.jobs} jobs, {s.creates_sent} creates, "
            f"{s.duplicate_creates} duplicates, {s.wall_time_s:.1f} s",
        )
    )
