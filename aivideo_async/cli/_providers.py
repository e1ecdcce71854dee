"""
Provider commands: ``aivideo miraflow ...``, ``aivideo aivideomaker ...``, ``aivideo nemo ...``.

Lists print numbered tables; create commands go through the shared create flow
(:mod:`._create`: preview, confirm, submit once, job id, ``--wait``); the
commands that read run through :func:`_query`.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any, NoReturn, TypeVar

import attrs
import typer

from ._api import (
    JobResult,
    JobSpec,
    JobStatus,
    Miraflow,
    TextEvent,
    ToolCall,
    ToolResult,
    timeline_summary,
)
from ._app import app, fail, run_async
from ._clients import Clients, open_clients
from ._create import CreateOptions, CreateRequest, create
from ._live import make_console
from ._options import BaseUrl, JsonOut, Out, Yes, with_options
from ._output import Listing, confirm_or_exit, emit_json, print_fields, print_table, public_fields

__all__ = ["miraflow_app", "aivideomaker_app", "nemo_app"]


def _provider_app(name: str, help: str) -> typer.Typer:
    """A provider's command group, added to ``aivideo`` (in the order made)."""
    group = typer.Typer(name=name, help=help, no_args_is_help=True)
    app.add_typer(group)
    return group


miraflow_app = _provider_app(
    "miraflow", "Miraflow: avatar videos and images (key: MIRAFLOW_API_KEY)."
)
aivideomaker_app = _provider_app(
    "aivideomaker", "AIVideoMaker: text/image to video, long video (key: AIVIDEO_API_KEY)."
)
nemo_app = _provider_app(
    "nemo",
    "NemoVideo: chat-driven editing, uploads, renders (NEMO_TOKEN, else an anonymous token).",
)

T = TypeVar("T")


def _query(
    provider: str,
    base_url: str | None,
    fetch: Callable[[Clients], Awaitable[T]],
    show: Callable[[T], None],
) -> NoReturn:
    """Run a command that reads: open the client, ``fetch``, close it, then ``show``."""

    async def main() -> int:
        async with open_clients([provider], base_url) as clients:
            value = await fetch(clients)
        show(value)
        return 0

    run_async(main)


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
        emit_json(data)
        return
    print_fields(
        (name, f"{value:.0%}" if name == "progress" else str(value))
        for name, value in data.items()
        if value is not None
    )


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
    listing = Listing(
        "Miraflow avatars",
        ("name", "id", "voice id", "photo"),
        lambda a: (a.name, a.id, a.voice_id, "yes" if a.is_photo else ""),
    )
    _query("miraflow", base_url, lambda c: c.mira.list_avatars(), listing.printer(json_output))


@miraflow_app.command("voices")
def mf_voices(base_url: BaseUrl = None, json_output: JsonOut = False) -> None:
    """List voices: name and id."""
    listing = Listing("Miraflow voices", ("name", "id"), lambda v: (v.name, v.id))
    _query("miraflow", base_url, lambda c: c.mira.list_voices(), listing.printer(json_output))


@miraflow_app.command("videos")
def mf_videos(base_url: BaseUrl = None, json_output: JsonOut = False) -> None:
    """List completed videos: name and id."""
    listing = Listing(
        "Miraflow videos", ("name", "id", "created"), lambda v: (v.name, v.id, v.created_at)
    )
    _query("miraflow", base_url, lambda c: c.mira.list_videos(), listing.printer(json_output))


@miraflow_app.command("create-video")
@with_options
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
    out: Out = None,
    *,
    options: CreateOptions,
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

    create(
        CreateRequest(
            provider="miraflow", kind="video", describe=describe, build=build, download=out
        ),
        options,
    )


Prompt = Annotated[str, typer.Option("--prompt", "-p", help="What to generate.")]
ImageName = Annotated[str | None, typer.Option("--name", help="Image name.")]
Ratio = Annotated[str | None, typer.Option("--aspect-ratio", help="1:1, 16:9, 9:16, 4:3 or 3:4.")]
Negative = Annotated[str | None, typer.Option("--negative-prompt", help="What to avoid.")]
Seed = Annotated[int | None, typer.Option("--seed", help="Generation seed.")]


@attrs.frozen(kw_only=True)
class ImageOptions:
    """The options every Miraflow image command takes after its own."""

    name: ImageName = None
    aspect_ratio: Ratio = None
    negative_prompt: Negative = None
    seed: Seed = None
    out: Out = None
    create: CreateOptions

    def settings(self) -> dict[str, Any]:
        """The builder's keyword arguments these options set."""
        return {
            "name": self.name,
            "aspect_ratio": self.aspect_ratio,
            "negative_prompt": self.negative_prompt,
            "seed": self.seed,
        }

    def describe(self, prompt: str) -> list[tuple[str, str]]:
        """The preview lines: the prompt, then each setting given ("aspect ratio" ...)."""
        given = [(k.replace("_", " "), str(v)) for k, v in self.settings().items() if v is not None]
        return [("prompt", prompt), *given]


def _create_image(
    prompt: str,
    options: ImageOptions,
    *,
    describe: Sequence[tuple[str, str]] = (),
    build: Callable[[Clients, dict[str, Any]], Awaitable[JobSpec]],
) -> NoReturn:
    """An image create: the shared preview lines and settings, then ``describe``/``build``."""

    async def spec(c: Clients) -> JobSpec:
        return await build(c, {"prompt": prompt, **options.settings()})

    create(
        CreateRequest(
            provider="miraflow",
            kind="image",
            describe=[*options.describe(prompt), *describe],
            build=spec,
            download=options.out,
        ),
        options.create,
    )


@miraflow_app.command("generate-image")
@with_options
def mf_generate_image(prompt: Prompt, *, options: ImageOptions) -> None:
    """Generate an image from a prompt."""

    async def build(c: Clients, settings: dict[str, Any]) -> JobSpec:
        return c.mira.image(**settings)

    _create_image(prompt, options, build=build)


@miraflow_app.command("edit-image")
@with_options
def mf_edit_image(
    prompt: Prompt,
    reference: Annotated[
        list[str],
        typer.Option("--reference", "-r", help="Reference image: a file (uploaded) or media id."),
    ],
    *,
    options: ImageOptions,
) -> None:
    """Edit images: a prompt applied to one or more references."""

    async def build(c: Clients, settings: dict[str, Any]) -> JobSpec:
        ids = [await _media_id(c.mira, r) for r in reference]
        return c.mira.edit_image(reference_media_ids=ids, **settings)

    references = [("reference", _media_label(r)) for r in reference]
    _create_image(prompt, options, describe=references, build=build)


@miraflow_app.command("inpaint")
@with_options
def mf_inpaint(
    prompt: Prompt,
    original: Annotated[str, typer.Option("--original", help="Image file or media id.")],
    mask: Annotated[str, typer.Option("--mask", help="Mask file or media id (white is replaced).")],
    *,
    options: ImageOptions,
) -> None:
    """Inpaint: replace the white area of a mask in an image."""

    async def build(c: Clients, settings: dict[str, Any]) -> JobSpec:
        return c.mira.inpaint(
            original_media_id=await _media_id(c.mira, original),
            mask_media_id=await _media_id(c.mira, mask),
            **settings,
        )

    images = [("original", _media_label(original)), ("mask", _media_label(mask))]
    _create_image(prompt, options, describe=images, build=build)


Kind = Annotated[str, typer.Option("--kind", help="video or image.")]
JobId = Annotated[str, typer.Argument(help="The job id a create printed.")]


def _check_kind(kind: str) -> None:
    if kind not in ("video", "image"):
        fail(f"--kind: got {kind!r}, expected video or image")


@miraflow_app.command("status")
def mf_status(
    job_id: JobId,
    kind: Kind = "video",
    base_url: BaseUrl = None,
    json_output: JsonOut = False,
) -> None:
    """Show a job's state and progress."""
    _check_kind(kind)
    _query(
        "miraflow",
        base_url,
        lambda c: c.mira.poll(kind, job_id),
        lambda status: _print_status(job_id, status, json_output),
    )


@miraflow_app.command("download")
def mf_download(
    job_id: Annotated[str, typer.Argument(help="Video id / job id, or an image job id.")],
    dest: Annotated[Path, typer.Argument(help="Where to write the file.")],
    kind: Kind = "video",
    deadline: Annotated[
        float | None,
        typer.Option(
            "--deadline",
            help="Give up after this many seconds (exit 4; no partial file is left).",
        ),
    ] = None,
    base_url: BaseUrl = None,
    json_output: JsonOut = False,
) -> None:
    """Download a finished video or image (atomically)."""
    _check_kind(kind)

    def show(path: Path) -> None:
        size = path.stat().st_size
        if json_output:
            emit_json({"job_id": job_id, "file": str(path), "bytes": size})
        else:
            make_console().print(f"downloaded {size} bytes to {path}")

    result = JobResult(provider="miraflow", kind=kind, job_id=job_id)
    _query("miraflow", base_url, lambda c: c.mira.download(result, dest, deadline=deadline), show)


# -- aivideomaker ---------------------------------------------------------------------------

_MODELS = ("t2v", "i2v", "lv", "t2v_v3", "i2v_v3")


def _check_prompts(model: str, prompts: Sequence[str], image: str | None) -> None:
    """Refuse, before anything is sent, what the model cannot take."""
    if model not in _MODELS:
        fail(f"--model: got {model!r}, expected one of {', '.join(_MODELS)}")
    if model.startswith("t2v") and len(prompts) != 1:
        fail("--prompt: text to video takes exactly one prompt")
    if model != "lv" and len(prompts) > 1:
        fail(f"--prompt: {model} takes one prompt")
    if model == "lv" and not prompts:
        fail("--prompt: a long video needs 1-6 prompts (repeat --prompt)")
    if not model.startswith("t2v") and image is None:
        fail(f"--image: {model} needs a first frame (an https URL or a file)")


@aivideomaker_app.command("generate")
@with_options
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
    out: Out = None,
    *,
    options: CreateOptions,
) -> None:
    """Generate a video: text to video, image to video, or a long video."""
    prompts = list(prompt or [])
    _check_prompts(model, prompts, image)
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

    create(
        CreateRequest(
            provider="aivideomaker", kind=model, describe=describe, build=build, download=out
        ),
        options,
    )


TaskId = Annotated[str, typer.Argument(help="The task id a create printed.")]


@aivideomaker_app.command("status")
def avm_status(task_id: TaskId, base_url: BaseUrl = None, json_output: JsonOut = False) -> None:
    """Show a task's state (and its video URL once completed)."""
    _query(
        "aivideomaker",
        base_url,
        lambda c: c.avm.poll("video", task_id),
        lambda status: _print_status(task_id, status, json_output),
    )


def _print_task(task: Any, json_output: bool) -> None:
    if json_output:
        emit_json(dict(task.raw) or public_fields(task))
        return
    fields = [
        ("id", task.id),
        ("status", task.status),
        ("model", task.model or ""),
        ("input", json.dumps(dict(task.input or {}))[:500]),
        ("video", (task.output.best_url or "") if task.output else ""),
        ("created", task.created_at or ""),
        ("completed", task.completed_at or ""),
    ]
    if task.message:
        fields.append(("message", task.message))
    print_fields(fields)


@aivideomaker_app.command("task")
def avm_task(task_id: TaskId, base_url: BaseUrl = None, json_output: JsonOut = False) -> None:
    """Show a task in full: model, input, output, times."""
    _query(
        "aivideomaker",
        base_url,
        lambda c: c.avm.get_task(task_id),
        lambda task: _print_task(task, json_output),
    )


@aivideomaker_app.command("cancel")
def avm_cancel(
    task_id: TaskId, base_url: BaseUrl = None, yes: Yes = False, json_output: JsonOut = False
) -> None:
    """Cancel a task that is still queued (credits are refunded)."""
    if not yes:
        confirm_or_exit(
            f"Cancel task {task_id}?", no_answer="no confirmation (pass --yes); nothing was sent"
        )

    def show(_: None) -> None:
        if json_output:
            emit_json({"task_id": task_id, "cancelled": True})
        else:
            make_console().print(f"cancelled task {task_id}")

    _query("aivideomaker", base_url, lambda c: c.avm.cancel("video", task_id), show)


# -- nemovideo -------------------------------------------------------------------------------

SessionOpt = Annotated[str | None, typer.Option("--session", "-s", help="Session id.")]
Session = Annotated[str, typer.Option("--session", "-s", help="Session id.")]


def _event_dict(event: Any) -> dict[str, Any]:
    return {"type": type(event).__name__, **public_fields(event)}


@nemo_app.command("chat")
def nemo_chat(
    message: Annotated[str, typer.Argument(help="What to ask the editing agent.")],
    session: SessionOpt = None,
    base_url: BaseUrl = None,
    json_output: JsonOut = False,
) -> None:
    """Send one message to the agent and stream its answer (a new session without --session)."""

    async def main() -> int:
        err = make_console(stderr=True)
        out = make_console()
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

    async def upload(c: Clients) -> tuple[str | None, Any]:
        result = await c.nemo.upload_files(session, [str(f) for f in files])
        return session or c.nemo.current_session_id, result

    def show(uploaded: tuple[str | None, Any]) -> None:
        sid, result = uploaded
        rows = [public_fields(f) for f in result.files]
        if json_output:
            emit_json({"session_id": sid, "files": rows})
        else:
            print_table(
                [(r["filename"], r["file_type"], r["cdn_url"]) for r in rows],
                ("file", "type", "url"),
                title=f"uploaded into session {sid}",
                numbered=True,
            )

    _query("nemovideo", base_url, upload, show)


@nemo_app.command("state")
def nemo_state(session: Session, base_url: BaseUrl = None, json_output: JsonOut = False) -> None:
    """Show a session's draft as a timeline."""

    def show(state: Any) -> None:
        if json_output:
            emit_json(dict(state.raw))
        else:
            make_console().print(timeline_summary(state.draft), markup=False)

    _query("nemovideo", base_url, lambda c: c.nemo.state(session), show)


@nemo_app.command("credits")
def nemo_credits(base_url: BaseUrl = None, json_output: JsonOut = False) -> None:
    """Show the credit balance."""

    def show(balance: Any) -> None:
        if json_output:
            emit_json(
                {"available": balance.available, "frozen": balance.frozen, "total": balance.total}
            )
        else:
            make_console().print(
                f"available {balance.available}, frozen {balance.frozen}, total {balance.total}"
            )

    _query("nemovideo", base_url, lambda c: c.nemo.credits(), show)


@nemo_app.command("export")
@with_options
def nemo_export(
    session: Session,
    out: Out = None,
    quality: Annotated[str, typer.Option("--quality", help="Render quality.")] = "high",
    *,
    options: CreateOptions,
) -> None:
    """Render a session's draft to an mp4 (a create: asks first)."""

    async def build(c: Clients) -> JobSpec:
        state = await c.nemo.state(session)
        return c.nemo.render_spec(session, state, quality=quality)

    create(
        CreateRequest(
            provider="nemovideo",
            kind="render",
            describe=[("session", session), ("format", "mp4"), ("quality", quality)],
            build=build,
            download=out,
        ),
        options,
    )


def registered() -> Mapping[str, typer.Typer]:
    """The provider sub-apps by name (for docs and tests)."""
    return {"miraflow": miraflow_app, "aivideomaker": aivideomaker_app, "nemo": nemo_app}
