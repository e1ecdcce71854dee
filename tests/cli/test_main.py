"""The entry point: the install hint without the extra, help, version, `aivideo emulator`."""

from __future__ import annotations

import subprocess
import sys

import pytest
import typer

from aivideo_async import __version__
from aivideo_async.cli import INSTALL_HINT, main


def test_without_typer_it_prints_the_install_hint_and_exits_2() -> None:
    code = (
        "import sys; sys.modules['typer'] = None\n"
        "from aivideo_async.cli import main\n"
        "sys.exit(main(['demo']))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert proc.returncode == 2
    assert proc.stderr.strip() == INSTALL_HINT
    assert "pip install 'aivideo-async[cli]'" in INSTALL_HINT


def test_version_and_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"aivideo {__version__}"
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for command in ("demo", "emulator", "batch", "jobs", "resume", "reconcile"):
        assert command in out


def test_unknown_command_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["no-such-command"]) == 2


def test_emulator_passes_its_arguments_to_the_emulator_main(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["emulator", "--help"]) == 0
    assert "--time-scale" in capsys.readouterr().out
    assert main(["emulator", "--time-scale", "-1"]) == 2


def test_a_missing_key_is_asked_for_with_hidden_input(monkeypatch: pytest.MonkeyPatch) -> None:
    from aivideo_async.cli import _clients

    asked: list[tuple[str, dict[str, object]]] = []

    def fake_prompt(text: str, **kwargs: object) -> str:
        asked.append((text, kwargs))
        return "typed-key"

    monkeypatch.delenv("AIVIDEO_API_KEY", raising=False)
    monkeypatch.setattr(typer, "prompt", fake_prompt)
    key = _clients.credential("aivideomaker", prompt=True)
    assert key is not None
    assert key.get_secret_value() == "typed-key"
    assert asked == [("AIVIDEO_API_KEY (input hidden)", {"hide_input": True})]
    assert "typed-key" not in repr(key)
