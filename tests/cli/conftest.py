"""
CLI test helpers: an emulator in a subprocess (the commands run their own event
loop) and :func:`aivideo`, which runs a command in-process.
"""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from aivideo_async.cli._commands import app


def aivideo(*args: str, input: str | None = None) -> Result:
    """Run ``aivideo ARGS`` in-process; stdout and stderr are kept apart."""
    return CliRunner().invoke(app, list(args), input=input)


class EmulatorProcess:
    """``python -m aivideo_async.emulator`` on a free port, with its admin API."""

    def __init__(self, proc: subprocess.Popen[str], base_url: str) -> None:
        self.proc = proc
        self.base_url = base_url
        self.url = ("--base-url", base_url)
        """The option that points a command at this emulator (a tuple: shared, never mutated)."""

    def _call(self, method: str, path: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            self.base_url + path,
            data=data,
            method=method,
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10) as resp:
            raw = resp.read()
        return json.loads(raw) if raw else None

    def stats(self) -> dict[str, Any]:
        stats: dict[str, Any] = self._call("GET", "/__emulator__/stats")
        return stats

    def creates(self) -> int:
        """Creates the emulator received, all providers together."""
        return sum(self.stats()["creates"].values())

    def reset(self) -> None:
        self._call("POST", "/__emulator__/reset")
        self._call("DELETE", "/__emulator__/faults")

    def set_faults(self, rules: list[dict[str, Any]]) -> None:
        self._call("POST", "/__emulator__/faults", rules)


@pytest.fixture(scope="session")
def _emulator_process() -> Iterator[EmulatorProcess]:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "aivideo_async.emulator",
            "--port",
            "0",
            "--time-scale",
            "1",
            "--job-duration",
            "0.3",
            "0.8",
            "--query-limit",
            "0",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert proc.stdout is not None
    base_url = proc.stdout.readline().strip()
    assert base_url.startswith("http://127.0.0.1:"), base_url
    try:
        yield EmulatorProcess(proc, base_url)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        proc.stdout.close()


@pytest.fixture
def emulator_proc(_emulator_process: EmulatorProcess) -> EmulatorProcess:
    """The shared emulator, reset (jobs, counters, faults) for each test."""
    _emulator_process.reset()
    return _emulator_process


@pytest.fixture
def keys(monkeypatch: pytest.MonkeyPatch) -> None:
    """Provider keys in the environment (the emulator accepts any)."""
    monkeypatch.setenv("MIRAFLOW_API_KEY", "test-key")
    monkeypatch.setenv("AIVIDEO_API_KEY", "test-key")
    monkeypatch.setenv("NEMO_TOKEN", "test-token")
