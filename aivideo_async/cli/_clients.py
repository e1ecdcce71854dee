"""
Provider clients for the commands: keys from the environment or a hidden prompt
(never from an argument), one optional base URL (the emulator's), downloads.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
from collections.abc import AsyncIterator, Iterable, Mapping
from pathlib import Path
from typing import Any, Final

import typer

from ._api import (
    AIVideoMaker,
    JobResult,
    Miraflow,
    MissingCredential,
    NemoVideo,
    PollPolicy,
    Secret,
)

__all__ = [
    "KEY_VARIABLES",
    "PROVIDERS",
    "Clients",
    "credential",
    "open_clients",
    "download_result",
    "safe_name",
    "poll_policy",
]

PROVIDERS: Final = ("miraflow", "aivideomaker", "nemovideo")

KEY_VARIABLES: Final[Mapping[str, str]] = {
    "miraflow": "MIRAFLOW_API_KEY",
    "aivideomaker": "AIVIDEO_API_KEY",
    "nemovideo": "NEMO_TOKEN",
}
"""The environment variable each provider's key is read from."""

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def safe_name(key: str) -> str:
    """
    A file name made from a journal key.

    Example:
        >>> safe_name("campaign-7/row 12")
        'campaign-7_row_12'
    """
    name = _UNSAFE.sub("_", key).strip("._") or "job"
    return name[:120]


def credential(provider: str, *, prompt: bool | None = None) -> Secret | None:
    """
    The key of ``provider``: its environment variable, else a hidden prompt when
    stdin is a terminal. NemoVideo without ``NEMO_TOKEN`` uses an anonymous token
    (``None``).

    Raises:
        MissingCredential: no key in the environment and no terminal to ask on.

    Example:
        >>> import os
        >>> os.environ["MIRAFLOW_API_KEY"] = "k-1"
        >>> credential("miraflow")
        Secret('**********')
    """
    variable = KEY_VARIABLES[provider]
    value = os.environ.get(variable, "")
    if value:
        return Secret(value)
    if provider == "nemovideo":
        return None
    ask = sys.stdin.isatty() if prompt is None else prompt
    if not ask:
        raise MissingCredential(
            f"no {provider} key: set {variable} in the environment "
            "(or run in a terminal to type it; keys are never taken as arguments)",
            variable=variable,
        )
    typed = typer.prompt(f"{variable} (input hidden)", hide_input=True)
    if not typed:
        raise MissingCredential(f"no {provider} key typed", variable=variable)
    return Secret(str(typed))


class Clients:
    """The clients of the providers a command needs, opened together."""

    def __init__(self) -> None:
        self.by_provider: dict[str, Any] = {}

    @property
    def backends(self) -> list[Any]:
        """The clients as orchestrator backends."""
        return list(self.by_provider.values())

    @property
    def mira(self) -> Miraflow:
        """The Miraflow client."""
        client: Miraflow = self.by_provider["miraflow"]
        return client

    @property
    def avm(self) -> AIVideoMaker:
        """The AIVideoMaker client."""
        client: AIVideoMaker = self.by_provider["aivideomaker"]
        return client

    @property
    def nemo(self) -> NemoVideo:
        """The NemoVideo client."""
        client: NemoVideo = self.by_provider["nemovideo"]
        return client


def make_client(provider: str, base_url: str | None) -> Any:
    """Build (not open) the client of ``provider``."""
    key = credential(provider)
    common: dict[str, Any] = {} if base_url is None else {"base_url": base_url}
    if provider == "miraflow":
        return Miraflow(key, **common)
    if provider == "aivideomaker":
        return AIVideoMaker(key, **common)
    if provider == "nemovideo":
        return NemoVideo(key, **common)
    raise AssertionError(provider)  # pragma: no cover - callers pass PROVIDERS


@contextlib.asynccontextmanager
async def open_clients(providers: Iterable[str], base_url: str | None) -> AsyncIterator[Clients]:
    """Open one client per provider named (keys are resolved first, before any IO)."""
    wanted = [p for p in PROVIDERS if p in set(providers)]
    made = {provider: make_client(provider, base_url) for provider in wanted}
    clients = Clients()
    async with contextlib.AsyncExitStack() as stack:
        for provider, client in made.items():
            clients.by_provider[provider] = await stack.enter_async_context(client)
        yield clients


def poll_policy(initial: float | None, cap: float | None) -> PollPolicy | None:
    """
    A poll policy from ``--poll-initial``/``--poll-cap``, or ``None`` for the default.

    Example:
        >>> poll_policy(0.2, 1.0).cap
        1.0
        >>> poll_policy(None, None) is None
        True
    """
    if initial is None and cap is None:
        return None
    first = 2.0 if initial is None else initial
    return PollPolicy(initial=first, factor=1.5, cap=max(first, 15.0 if cap is None else cap))


def extension(provider: str, kind: str) -> str:
    """
    The file extension of a job's result.

    Example:
        >>> extension("miraflow", "image"), extension("aivideomaker", "t2v")
        ('.png', '.mp4')
    """
    return ".png" if kind in ("image", "edit-image", "inpaint") else ".mp4"


async def download_result(clients: Clients, result: JobResult, dest: Path) -> Path:
    """Download a finished job's file with its provider's client."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    if result.provider == "miraflow":
        return await clients.mira.download(result, dest)
    if result.provider == "aivideomaker":
        return await clients.avm.download(result, dest)
    return await clients.nemo.download_render(result.job_id, dest)
