"""
Provider commands: ``aivideo miraflow ...``, ``aivideo aivideomaker ...``, ``aivideo nemo ...``.

Lists print numbered tables; create commands show what will be created, ask
for confirmation (``--yes`` skips), send the create once through an
orchestrator (``--journal`` keeps it durably), print the job id, and with
``--wait`` follow the job with a progress bar.
"""

from __future__ import annotations

import json
import sys
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any

import anyio
import attrs
import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from ._api import (
    JobError,
    JobResult,
    JobSpec,
    JobStatus,
    Miraflow,
    Orchestrator,
    TextEvent,
    ToolCall,
    ToolResult,
    timeline_summary,
)
from ._app import app, fail, run_async
from ._clients import Clients, download_result, open_clients
from ._errors import ExitCode
from ._live import LiveView, Row, make_console

__all__ = ["miraflow_app", "aivideomaker_app", "nemo_app"]

miraflow_app = typer.Typer(
    name="miraflow",
    help="Miraflow: avatar videos and images (key: MIRAFLOW_API_KEY).",
    no_args_is_help=True,
)
aivideomaker_app = typer.Typer(
    name="aivideomaker",
    help="AIVideoMaker: text/image to video, long video (key: AIVIDEO_API_KEY).",
    no_args_is_help=True,
)
nemo_app = typer.Typer(
    name="nemo",
    help="NemoVideo: chat-driven editing, uploads, renders (NEMO_TOKEN, else an anonymous token).",
    no_args_is_help=True,
)
app.add_typer(miraflow_app)
app.add_typer(aivideomaker_app)
app.add_typer(nemo_app)

BaseUrl = Annotated[
    str | None,
    typer.Option(
        "--base-url",
        envvar="AIVIDEO_BASE_URL",
        help="API root to use instead of the provider's (e.g. an emulator).",
    ),
]
JsonOut = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]
Yes = Annotated[bool, typer.Option("--yes", "-y", help="Create without asking.")]
Wait = Annotated[bool, typer.Option("--wait", "-w", help="Follow the job to its end.")]
JournalPath = Annotated[
    Path | None,
    typer.Option("--journal", "-j", help="Record the create in this SQLite journal."),
]
Key = Annotated[
    str | None,
    typer.Option(
        "--key", help="Journal key (default: a new one); the same key never creates twice."
    ),
]


def _emit(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")


def _console(*, stderr: bool = False) -> Console:
    return make_console(stderr=stderr)


def _numbered(title: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    table = Table(title=title, show_edge=False)
    table.add_column("#", justify="right", style="dim")
    for column in columns:
        table.add_column(column, overflow="fold")
    for number, row in enumerate(rows, start=1):
        table.add_row(str(number), *("" if v is None else str(v) for v in row))
    _console().print(table)


def _status_dict(status: JobStatus) -> dict[str, Any]:
    result = status.result
    return {
        "state": status.state.value,
        "raw_status": status.raw_status,
        "progress": status.progress,
        "message": status.message,
        "url": result.url if result else None,
        "media_id": result.media_id if result else None,
    }


def _print_status(job_id: str, status: JobStatus, json_output: bool) -> None:
    data = {"job_id": job_id, **_status_dict(status)}
    if json_output:
        _emit(data)
        return
    table = Table(show_header=False, show_edge=False)
    table.add_column("field", style="bold")
    table.add_column("value", overflow="fold")
    for name, value in data.items():
        if value is not None:
            table.add_row(name, f"{value:.0%}" if name == "progress" else str(value))
    _console().print(table)


@attrs.frozen(kw_only=True)
class CreateRequest:
    """A create command: what to show before asking, and how to build the spec."""

    provider: str
    kind: str
    describe: Sequence[tuple[str, str]]
    build: Callable[[Clients], Awaitable[JobSpec]]


def _confirm(request: CreateRequest, *, yes: bool, json_output: bool) -> None:
    console = _console(stderr=json_output)
    console.print(f"about to create: {request.provider} {request.kind}", style="bold")
    table = Table(show_header=False)
    table.add_column("field", style="bold")
    table.add_column("value", overflow="fold")
    for name, value in request.describe:
        table.add_row(name, value)
    console.print(table)
    if yes:
        return
    try:
        ok = typer.confirm("Create it?", default=False, err=True)
    except typer.Abort:
        fail(
            "no confirmation (pass --yes to create without asking); nothing was sent",
            ExitCode.NOT_CONFIRMED,
        )
    if not ok:
        fail("not confirmed; nothing was sent", ExitCode.NOT_CONFIRMED)


def _create(
    request: CreateRequest,
    *,
    base_url: str | None,
    yes: bool,
    wait: bool,
    json_output: bool,
    journal: Path | None,
    key: str | None,
    download: Path | None = None,
) -> None:
    _confirm(request, yes=yes, json_output=json_output)
    console = _console()
    job_key = key or f"cli/{request.provider}/{uuid.uuid4().hex[:12]}"

    async def main() -> int:
        async with open_clients([request.provider], base_url) as clients:
            spec = await request.build(clients)
            async with Orchestrator(journal=journal, backends=clients.backends) as orch:
                handle = await orch.submit(spec, key=job_key)
                data: dict[str, Any] = {
                    "provider": handle.provider,
                    "kind": handle.kind,
                    "key": handle.key,
                    "job_id": handle.job_id,
                }
                if not json_output:
                    console.print(
                        Text.assemble(
                            "job id: ", (handle.job_id, "bold green"), f"  (key {handle.key})"
                        )
                    )
                if not wait:
                    if json_output:
                        _emit(data)
                    return 0
                row = Row(key=handle.key, provider=handle.provider, kind=request.kind)
                row.handle = handle
                view = LiveView(
                    _console(stderr=True) if json_output else console,
                    [row],
                    title=f"{handle.provider} job {handle.job_id}",
                    plain=None,
                )
                async with anyio.create_task_group() as tg:
                    tg.start_soon(view.run)
                    try:
                        result: JobResult | None = await handle
                        error = None
                    except JobError as exc:
                        result, error = None, exc
                    finally:
                        view.stop()
                data["state"] = row.state
                if result is not None:
                    data.update(url=result.url, media_id=result.media_id)
                    if download is not None:
                        path = await download_result(clients, result, download)
                        data["file"] = str(path)
                if error is not None:
                    data["error"] = error.message or type(error).__name__
        if json_output:
            _emit(data)
        else:
            for name in ("state", "url", "media_id", "file", "error"):
                if data.get(name):
                    console.print(f"{name}: {data[name]}", highlight=False, soft_wrap=True)
        return int(ExitCode.OK if data["state"] == "succeeded" else ExitCode.JOBS_FAILED)

    run_async(main)


def _is_file(value: str) -> bool:
    return Path(value).is_file()


async def _media_id(mira: Miraflow, value: str) -> str:
    # A local file is uploaded first; anything else is taken as a media id.
    return await mira.upload_media(value) if _is_file(value) else value


def _media_label(value: str) -> str:
    return f"{value} (upload first)" if _is_file(value) else value


# -- miraflow ---------------------------------------------------------------------------


@miraflow_app.command("avatars")
def mf_avatars(base_url: BaseUrl = None, json_output: JsonOut = False) -> None:
    """List avatars (stock and your own): name and id."""

    async def main() -> int:
        async with open_clients(["miraflow"], base_url) as c:
            avatars = await c.mira.list_avatars()
        if json_output:
            _emit([{k: v for k, v in attrs.asdict(a).items() if k != "raw"} for a in avatars])
        else:
            _numbered(
                "Miraflow avatars",
                ("name", "id", "voice id", "photo"),
                [(a.name, a.id, a.voice_id, "yes" if a.is_photo else "") for a in avatars],
            )
        return 0

    run_async(main)


@miraflow_app.command("voices")
def mf_voices(base_url: BaseUrl = None, json_output: JsonOut = False) -> None:
    """List voices: name and id."""

    async def main() -> int:
        async with open_clients(["miraflow"], base_url) as c:
            voices = await c.mira.list_voices()
        if json_output:
            _emit([{k: v for k, v in attrs.asdict(x).items() if k != "raw"} for x in voices])
        else:
            _numbered("Miraflow voices", ("name", "id"), [(v.name, v.id) for v in voices])
        return 0

    run_async(main)


@miraflow_app.command("videos")
def mf_videos(base_url: BaseUrl = None, json_output: JsonOut = False) -> None:
    """List completed videos: name and id."""

    async def main() -> int:
        async with open_clients(["miraflow"], base_url) as c:
            videos = await c.mira.list_videos()
        if json_output:
            _emit([{k: v for k, v in attrs.asdict(x).items() if k != "raw"} for x in videos])
        else:
            _numbered(
                "Miraflow videos",
                ("name", "id", "created"),
                [(v.name, v.id, v.created_at) for v in videos],
            )
        return 0

    run_async(main)


@miraflow_app.command("create-video")
def mf_create_video(
    avatar: Annotated[str, typer.Option("--avatar", help="Avatar id (see `avatars`).")],
    name: Annotated[str, typer.Option("--name", help="Video name.")],
    text: Annotated[str | None, typer.Option("--text", help="The script to speak.")] = None,
    audio: Annotated[
        str | None, typer.Option("--audio", help="An audio file (uploaded) or media id.")
    ] = None,
    voice: Annotated[str | None, typer.Option("--voice", help="Voice id.")] = None,
    full: Annotated[
        bool | None,
        typer.Option("--full/--face", help="Photo avatars: full body (slower) or face crop."),
    ] = None,
    out: Annotated[Path | None, typer.Option("--out", help="With --wait: download here.")] = None,
    base_url: BaseUrl = None,
    yes: Yes = False,
    wait: Wait = False,
    json_output: JsonOut = False,
    journal: JournalPath = None,
    key: Key = None,
) -> None:
    """Create an avatar video from a script (--text) or an audio track (--audio)."""
    if (text is None) == (audio is None):
        fail("give exactly one of --text or --audio")
    describe = [("avatar", avatar), ("name", name)]
    describe.append(("text", text) if text is not None else ("audio", _media_label(str(audio))))
    if voice:
        describe.append(("voice", voice))
    if full is not None:
        describe.append(("im2vid_full", str(full).lower()))

    async def build(c: Clients) -> JobSpec:
        if text is not None:
            return c.mira.video(
                avatar_id=avatar, name=name, text=text, voice_id=voice, im2vid_full=full
            )
        media = await _media_id(c.mira, str(audio))
        return c.mira.video_from_audio(
            avatar_id=avatar, name=name, media_id=media, im2vid_full=full
        )

    _create(
        CreateRequest(provider="miraflow", kind="video", describe=describe, build=build),
        base_url=base_url,
        yes=yes,
        wait=wait,
        json_output=json_output,
        journal=journal,
        key=key,
        download=out,
    )


def _image_describe(
    prompt: str, name: str | None, ratio: str | None, neg: str | None, seed: int | None
) -> list[tuple[str, str]]:
    out = [("prompt", prompt)]
    for label, value in (
        ("name", name),
        ("aspect ratio", ratio),
        ("negative prompt", neg),
        ("seed", seed),
    ):
        if value is not None:
            out.append((label, str(value)))
    return out


Prompt = Annotated[str, typer.Option("--prompt", "-p", help="What to generate.")]
ImageName = Annotated[str | None, typer.Option("--name", help="Image name.")]
Ratio = Annotated[str | None, typer.Option("--aspect-ratio", help="1:1, 16:9, 9:16, 4:3 or 3:4.")]
Negative = Annotated[str | None, typer.Option("--negative-prompt", help="What to avoid.")]
Seed = Annotated[int | None, typer.Option("--seed", help="Generation seed.")]
ImageOut = Annotated[Path | None, typer.Option("--out", help="With --wait: download here.")]


@miraflow_app.command("generate-image")
def mf_generate_image(
    prompt: Prompt,
    name: ImageName = None,
    aspect_ratio: Ratio = None,
    negative_prompt: Negative = None,
    seed: Seed = None,
    out: ImageOut = None,
    base_url: BaseUrl = None,
    yes: Yes = False,
    wait: Wait = False,
    json_output: JsonOut = False,
    journal: JournalPath = None,
    key: Key = None,
) -> None:
    """Generate an image from a prompt."""

    async def build(c: Clients) -> JobSpec:
        return c.mira.image(
            prompt=prompt,
            name=name,
            aspect_ratio=aspect_ratio,
            negative_prompt=negative_prompt,
            seed=seed,
        )

    _create(
        CreateRequest(
            provider="miraflow",
            kind="image",
            describe=_image_describe(prompt, name, aspect_ratio, negative_prompt, seed),
            build=build,
        ),
        base_url=base_url,
        yes=yes,
        wait=wait,
        json_output=json_output,
        journal=journal,
        key=key,
        download=out,
    )


@miraflow_app.command("edit-image")
def mf_edit_image(
    prompt: Prompt,
    reference: Annotated[
        list[str],
        typer.Option("--reference", "-r", help="Reference image: a file (uploaded) or media id."),
    ],
    name: ImageName = None,
    aspect_ratio: Ratio = None,
    negative_prompt: Negative = None,
    seed: Seed = None,
    out: ImageOut = None,
    base_url: BaseUrl = None,
    yes: Yes = False,
    wait: Wait = False,
    json_output: JsonOut = False,
    journal: JournalPath = None,
    key: Key = None,
) -> None:
    """Edit images: a prompt applied to one or more references."""
    describe = _image_describe(prompt, name, aspect_ratio, negative_prompt, seed)
    describe += [("reference", _media_label(r)) for r in reference]

    async def build(c: Clients) -> JobSpec:
        ids = [await _media_id(c.mira, r) for r in reference]
        return c.mira.edit_image(
            prompt=prompt,
            reference_media_ids=ids,
            name=name,
            aspect_ratio=aspect_ratio,
            negative_prompt=negative_prompt,
            seed=seed,
        )

    _create(
        CreateRequest(provider="miraflow", kind="image", describe=describe, build=build),
        base_url=base_url,
        yes=yes,
        wait=wait,
        json_output=json_output,
        journal=journal,
        key=key,
        download=out,
    )


@miraflow_app.command("inpaint")
def mf_inpaint(
    prompt: Prompt,
    original: Annotated[str, typer.Option("--original", help="Image file or media id.")],
    mask: Annotated[str, typer.Option("--mask", help="Mask file or media id (white is replaced).")],
    name: ImageName = None,
    aspect_ratio: Ratio = None,
    negative_prompt: Negative = None,
    seed: Seed = None,
    out: ImageOut = None,
    base_url: BaseUrl = None,
    yes: Yes = False,
    wait: Wait = False,
    json_output: JsonOut = False,
    journal: JournalPath = None,
    key: Key = None,
) -> None:
    """Inpaint: replace the white area of a mask in an image."""
    describe = _image_describe(prompt, name, aspect_ratio, negative_prompt, seed)
    describe += [("original", _media_label(original)), ("mask", _media_label(mask))]

    async def build(c: Clients) -> JobSpec:
        return c.mira.inpaint(
            original_media_id=await _media_id(c.mira, original),
            mask_media_id=await _media_id(c.mira, mask),
            prompt=prompt,
            name=name,
            aspect_ratio=aspect_ratio,
            negative_prompt=negative_prompt,
            seed=seed,
        )

    _create(
        CreateRequest(provider="miraflow", kind="image", describe=describe, build=build),
        base_url=base_url,
        yes=yes,
        wait=wait,
        json_output=json_output,
        journal=journal,
        key=key,
        download=out,
    )


Kind = Annotated[str, typer.Option("--kind", help="video or image.")]


def _check_kind(kind: str) -> None:
    if kind not in ("video", "image"):
        fail(f"--kind: got {kind!r}, expected video or image")


@miraflow_app.command("status")
def mf_status(
    job_id: Annotated[str, typer.Argument(help="The job id a create printed.")],
    kind: Kind = "video",
    base_url: BaseUrl = None,
    json_output: JsonOut = False,
) -> None:
    """Show a job's state and progress."""
    _check_kind(kind)

    async def main() -> int:
        async with open_clients(["miraflow"], base_url) as c:
            status = await c.mira.poll(kind, job_id)
        _print_status(job_id, status, json_output)
        return 0

    run_async(main)


@miraflow_app.command("download")
def mf_download(
    job_id: Annotated[str, typer.Argument(help="Video id / job id, or an image job id.")],
    dest: Annotated[Path, typer.Argument(help="Where to write the file.")],
    kind: Kind = "video",
    base_url: BaseUrl = None,
    json_output: JsonOut = False,
) -> None:
    """Download a finished video or image (atomically)."""
    _check_kind(kind)

    async def main() -> int:
        async with open_clients(["miraflow"], base_url) as c:
            result = JobResult(provider="miraflow", kind=kind, job_id=job_id)
            path = await c.mira.download(result, dest)
        size = path.stat().st_size
        if json_output:
            _emit({"job_id": job_id, "file": str(path), "bytes": size})
        else:
            _console().print(f"downloaded {size} bytes to {path}")
        return 0

    run_async(main)


# -- aivideomaker ---------------------------------------------------------------------------

_MODELS = ("t2v", "i2v", "lv", "t2v_v3", "i2v_v3")


@aivideomaker_app.command("generate")
def avm_generate(
    model: Annotated[str, typer.Option("--model", "-m", help=", ".join(_MODELS))] = "t2v",
    prompt: Annotated[
        list[str] | None,
        typer.Option("--prompt", "-p", help="The prompt (lv: repeat it, one per 5 s scene)."),
    ] = None,
    image: Annotated[
        str | None, typer.Option("--image", help="i2v/lv first frame: an https URL or a file.")
    ] = None,
    duration: Annotated[int, typer.Option("--duration", help="Seconds (t2v/i2v: 5 or 8).")] = 5,
    aspect_ratio: Annotated[
        str, typer.Option("--aspect-ratio", help="t2v: 16:9, 9:16, 1:1.")
    ] = "16:9",
    out: Annotated[Path | None, typer.Option("--out", help="With --wait: download here.")] = None,
    base_url: BaseUrl = None,
    yes: Yes = False,
    wait: Wait = False,
    json_output: JsonOut = False,
    journal: JournalPath = None,
    key: Key = None,
) -> None:
    """Generate a video: text to video, image to video, or a long video."""
    if model not in _MODELS:
        fail(f"--model: got {model!r}, expected one of {', '.join(_MODELS)}")
    prompts = list(prompt or [])
    if model.startswith("t2v") and len(prompts) != 1:
        fail("--prompt: text to video takes exactly one prompt")
    if model != "lv" and len(prompts) > 1:
        fail(f"--prompt: {model} takes one prompt")
    if model == "lv" and not prompts:
        fail("--prompt: a long video needs 1-6 prompts (repeat --prompt)")
    if not model.startswith("t2v") and image is None:
        fail(f"--image: {model} needs a first frame (an https URL or a file)")
    describe = [("model", model)] + [("prompt", p) for p in prompts]
    if image is not None:
        describe.append(("image", f"{image} (sent inline)" if _is_file(image) else image))
    if model != "lv":
        describe.append(("duration", f"{duration} s"))
    if model.startswith("t2v"):
        describe.append(("aspect ratio", aspect_ratio))

    async def build(c: Clients) -> JobSpec:
        ref = await c.avm.image_data_uri(image) if image and _is_file(image) else image
        if model.startswith("t2v"):
            return c.avm.text_to_video(
                prompt=prompts[0], aspect_ratio=aspect_ratio, duration=duration, model=model
            )
        assert ref is not None
        if model == "lv":
            return c.avm.long_video(image=ref, prompts=prompts)
        return c.avm.image_to_video(
            image=ref, prompt=prompts[0] if prompts else None, duration=duration, model=model
        )

    _create(
        CreateRequest(provider="aivideomaker", kind=model, describe=describe, build=build),
        base_url=base_url,
        yes=yes,
        wait=wait,
        json_output=json_output,
        journal=journal,
        key=key,
        download=out,
    )


TaskId = Annotated[str, typer.Argument(help="The task id a create printed.")]


@aivideomaker_app.command("status")
def avm_status(task_id: TaskId, base_url: BaseUrl = None, json_output: JsonOut = False) -> None:
    """Show a task's state (and its video URL once completed)."""

    async def main() -> int:
        async with open_clients(["aivideomaker"], base_url) as c:
            status = await c.avm.poll("video", task_id)
        _print_status(task_id, status, json_output)
        return 0

    run_async(main)


@aivideomaker_app.command("task")
def avm_task(task_id: TaskId, base_url: BaseUrl = None, json_output: JsonOut = False) -> None:
    """Show a task in full: model, input, output, times."""

    async def main() -> int:
        async with open_clients(["aivideomaker"], base_url) as c:
            task = await c.avm.get_task(task_id)
        if json_output:
            _emit(dict(task.raw) or {k: v for k, v in attrs.asdict(task).items() if k != "raw"})
            return 0
        table = Table(show_header=False, show_edge=False)
        table.add_column("field", style="bold")
        table.add_column("value", overflow="fold")
        table.add_row("id", task.id)
        table.add_row("status", task.status)
        table.add_row("model", task.model or "")
        table.add_row("input", json.dumps(dict(task.input or {}))[:500])
        table.add_row("video", (task.output.best_url or "") if task.output else "")
        table.add_row("created", task.created_at or "")
        table.add_row("completed", task.completed_at or "")
        if task.message:
            table.add_row("message", task.message)
        _console().print(table)
        return 0

    run_async(main)


@aivideomaker_app.command("cancel")
def avm_cancel(
    task_id: TaskId, base_url: BaseUrl = None, yes: Yes = False, json_output: JsonOut = False
) -> None:
    """Cancel a task that is still queued (credits are refunded)."""
    if not yes:
        try:
            ok = typer.confirm(f"Cancel task {task_id}?", default=False, err=True)
        except typer.Abort:
            fail("no confirmation (pass --yes); nothing was sent", ExitCode.NOT_CONFIRMED)
        if not ok:
            fail("not confirmed; nothing was sent", ExitCode.NOT_CONFIRMED)

    async def main() -> int:
        async with open_clients(["aivideomaker"], base_url) as c:
            await c.avm.cancel("video", task_id)
        if json_output:
            _emit({"task_id": task_id, "cancelled": True})
        else:
            _console().print(f"cancelled task {task_id}")
        return 0

    run_async(main)


# -- nemovideo -------------------------------------------------------------------------------

SessionOpt = Annotated[str | None, typer.Option("--session", "-s", help="Session id.")]


def _event_dict(event: Any) -> dict[str, Any]:
    data = {k: v for k, v in attrs.asdict(event).items() if k != "raw"}
    return {"type": type(event).__name__, **data}


@nemo_app.command("chat")
def nemo_chat(
    message: Annotated[str, typer.Argument(help="What to ask the editing agent.")],
    session: SessionOpt = None,
    base_url: BaseUrl = None,
    json_output: JsonOut = False,
) -> None:
    """Send one message to the agent and stream its answer (a new session without --session)."""

    async def main() -> int:
        err = _console(stderr=True)
        out = _console()
        async with open_clients(["nemovideo"], base_url) as c:
            sid = session
            if sid is None:
                info = await c.nemo.create_session("aivideo chat")
                sid = info.session_id
                err.print(f"session: {sid}")
            async with c.nemo.chat(sid, message) as stream:
                async for event in stream:
                    if json_output:
                        sys.stdout.write(json.dumps(_event_dict(event), default=str) + "\n")
                    elif isinstance(event, TextEvent) and not event.thought:
                        out.print(event.text, end="" if event.partial else "\n", markup=False)
                    elif isinstance(event, ToolCall):
                        out.print(f"[tool] {event.name}", style="dim")
                    elif isinstance(event, ToolResult):
                        out.print(f"[tool done] {event.name}", style="dim")
        return 0

    run_async(main)


@nemo_app.command("upload")
def nemo_upload(
    files: Annotated[list[Path], typer.Argument(help="Files to add to the session.")],
    session: SessionOpt = None,
    base_url: BaseUrl = None,
    json_output: JsonOut = False,
) -> None:
    """Upload media files into a session (a new session without --session)."""

    async def main() -> int:
        async with open_clients(["nemovideo"], base_url) as c:
            result = await c.nemo.upload_files(session, [str(f) for f in files])
            sid = session or c.nemo.current_session_id
        rows = [{k: v for k, v in attrs.asdict(f).items() if k != "raw"} for f in result.files]
        if json_output:
            _emit({"session_id": sid, "files": rows})
        else:
            _numbered(
                f"uploaded into session {sid}",
                ("file", "type", "url"),
                [(r["filename"], r["file_type"], r["cdn_url"]) for r in rows],
            )
        return 0

    run_async(main)


@nemo_app.command("state")
def nemo_state(
    session: Annotated[str, typer.Option("--session", "-s", help="Session id.")],
    base_url: BaseUrl = None,
    json_output: JsonOut = False,
) -> None:
    """Show a session's draft as a timeline."""

    async def main() -> int:
        async with open_clients(["nemovideo"], base_url) as c:
            state = await c.nemo.state(session)
        if json_output:
            _emit(dict(state.raw))
        else:
            _console().print(timeline_summary(state.draft), markup=False)
        return 0

    run_async(main)


@nemo_app.command("credits")
def nemo_credits(base_url: BaseUrl = None, json_output: JsonOut = False) -> None:
    """Show the credit balance."""

    async def main() -> int:
        async with open_clients(["nemovideo"], base_url) as c:
            balance = await c.nemo.credits()
        data = {"available": balance.available, "frozen": balance.frozen, "total": balance.total}
        if json_output:
            _emit(data)
        else:
            _console().print(
                f"available {balance.available}, frozen {balance.frozen}, total {balance.total}"
            )
        return 0

    run_async(main)


@nemo_app.command("export")
def nemo_export(
    session: Annotated[str, typer.Option("--session", "-s", help="Session id.")],
    out: Annotated[Path | None, typer.Option("--out", help="With --wait: download here.")] = None,
    quality: Annotated[str, typer.Option("--quality", help="Render quality.")] = "high",
    base_url: BaseUrl = None,
    yes: Yes = False,
    wait: Wait = False,
    json_output: JsonOut = False,
    journal: JournalPath = None,
    key: Key = None,
) -> None:
    """Render a session's draft to an mp4 (a create: asks first)."""

    async def build(c: Clients) -> JobSpec:
        state = await c.nemo.state(session)
        return c.nemo.render_spec(session, state, quality=quality)

    _create(
        CreateRequest(
            provider="nemovideo",
            kind="render",
            describe=[("session", session), ("format", "mp4"), ("quality", quality)],
            build=build,
        ),
        base_url=base_url,
        yes=yes,
        wait=wait,
        json_output=json_output,
        journal=journal,
        key=key,
        download=out,
    )


def registered() -> Mapping[str, typer.Typer]:
    """The provider sub-apps by name (for docs and tests)."""
    return {"miraflow": miraflow_app, "aivideomaker": aivideomaker_app, "nemo": nemo_app}
