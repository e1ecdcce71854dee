"""The README's commands and its code example stay true."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from aivideo_async.emulator import Emulator

README = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")


def test_readme_opens_with_the_demo_and_test_commands() -> None:
    commands = re.findall(r"^    (python -m pip install .*)$", README, re.M)
    assert commands[:2] == [
        "python -m pip install -e '.[cli]' && python -m aivideo_async demo",
        "python -m pip install -e '.[test]' && python -m pytest",
    ]
    # Both come before any other section.
    assert README.index(commands[1]) < README.index("\n## ")


@pytest.mark.anyio
async def test_readme_example_runs_against_the_emulator(
    emulator: Emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    block = re.search(r"```python\n(.*?)```", README, re.S)
    assert block is not None
    # The one change: point the client at the emulator instead of miraflow.ai.
    source = block.group(1).replace("av.Miraflow()", "av.Miraflow(base_url=BASE_URL)")
    assert "BASE_URL" in source
    monkeypatch.setenv("MIRAFLOW_API_KEY", "sk-readme")
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {"BASE_URL": emulator.base_url, "print": lambda *a: None}
    exec(compile(source, "README.md", "exec"), namespace)
    await namespace["main"]()  # type: ignore[operator]
    assert (tmp_path / "out" / "fox.png").read_bytes().startswith(b"\x89PNG")
    assert (tmp_path / "jobs.sqlite").exists()
    assert emulator.stats()["creates"]["miraflow"] == 1
