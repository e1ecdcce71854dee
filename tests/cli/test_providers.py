"""Provider commands against the emulator: lists, confirmation, --json, --wait, errors (issue 7)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from aivideo_async.cli._errors import ExitCode

from .conftest import EmulatorProcess, aivideo


@pytest.mark.usefixtures("keys")
def test_avatars_as_a_numbered_table_and_as_json(emulator_proc: EmulatorProcess) -> None:
    table = aivideo("miraflow", "avatars", *emulator_proc.url)
    assert table.exit_code == 0, table.output
    as_json = aivideo("miraflow", "avatars", *emulator_proc.url, "--json")
    avatars = json.loads(as_json.stdout)
    assert avatars
    assert {"id", "name"} <= set(avatars[0])
    for number, avatar in enumerate(avatars, start=1):
        line = next(x for x in table.stdout.splitlines() if avatar["id"] in x)
        assert line.split()[0] == str(number)
        assert avatar["name"].split()[0] in line


@pytest.mark.usefixtures("keys")
def test_a_declined_confirmation_sends_nothing(emulator_proc: EmulatorProcess) -> None:
    args = ["miraflow", "generate-image", "--prompt", "a red fox", *emulator_proc.url]
    result = aivideo(*args, input="n\n")
    assert result.exit_code == ExitCode.NOT_CONFIRMED
    assert "about to create: miraflow image" in result.stdout
    assert "a red fox" in result.stdout
    assert "Create it? [y/N]" in result.stderr
    assert result.stderr.strip().endswith("error: not confirmed; nothing was sent")
    assert emulator_proc.creates() == 0
    # No answer at all (stdin closed) is no confirmation either.
    closed = aivideo(*args, input="")
    assert closed.exit_code == ExitCode.NOT_CONFIRMED
    assert emulator_proc.creates() == 0


@pytest.mark.usefixtures("keys")
def test_a_confirmed_create_prints_the_job_id_and_waits(
    emulator_proc: EmulatorProcess, tmp_path: Path
) -> None:
    out = tmp_path / "fox.png"
    result = aivideo(
        "miraflow",
        "generate-image",
        "-p",
        "a fox",
        *emulator_proc.url,
        "--wait",
        "--out",
        str(out),
        input="y\n",
    )
    assert result.exit_code == 0, result.output
    [job_line] = [x for x in result.stdout.splitlines() if x.startswith("job id: ")]
    job_id = job_line.split()[2]
    assert "state: succeeded" in result.stdout
    assert out.read_bytes().startswith(b"\x89PNG")
    assert emulator_proc.creates() == 1
    status = aivideo("miraflow", "status", job_id, "--kind", "image", "--json", *emulator_proc.url)
    assert json.loads(status.stdout)["state"] == "succeeded"


@pytest.mark.usefixtures("keys")
def test_yes_json_wait_for_scripts(emulator_proc: EmulatorProcess) -> None:
    result = aivideo(
        "aivideomaker",
        "generate",
        "-m",
        "lv",
        "-p",
        "wide shot",
        "-p",
        "push in",
        "--image",
        "https://example.com/f.jpg",
        "--yes",
        "--json",
        "--wait",
        *emulator_proc.url,
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)  # only JSON on stdout: the preview went to stderr
    assert data["provider"] == "aivideomaker"
    assert data["state"] == "succeeded"
    assert data["url"]
    task = aivideo("aivideomaker", "task", data["job_id"], "--json", *emulator_proc.url)
    assert json.loads(task.stdout)["model"] == "lv"


def test_keys_come_only_from_the_environment(
    emulator_proc: EmulatorProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MIRAFLOW_API_KEY", raising=False)
    result = aivideo("miraflow", "avatars", *emulator_proc.url)
    assert result.exit_code == ExitCode.NO_CREDENTIAL
    assert result.stderr.startswith("error: no miraflow key: set MIRAFLOW_API_KEY")
    assert len(result.stderr.strip().splitlines()) == 1
    as_arg = aivideo("miraflow", "avatars", "--api-key", "k", *emulator_proc.url)
    assert as_arg.exit_code == 2  # no such option: a key is never an argument value


@pytest.mark.usefixtures("keys")
def test_a_provider_error_is_one_line_with_status_and_message(
    emulator_proc: EmulatorProcess,
) -> None:
    result = aivideo("aivideomaker", "status", "no-such-task", *emulator_proc.url)
    assert result.exit_code == ExitCode.API_ERROR
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("error: [aivideomaker] GET /api/v1/tasks/no-such-task/status")
    assert "HTTP 404" in line
    assert "Traceback" not in result.output
    debug = aivideo("--debug", "aivideomaker", "status", "no-such-task", *emulator_proc.url)
    assert debug.exit_code == ExitCode.API_ERROR
    assert "Traceback" in debug.stderr


@pytest.mark.usefixtures("keys")
def test_nemo_chat_state_credits_and_export(emulator_proc: EmulatorProcess, tmp_path: Path) -> None:
    url = emulator_proc.url
    chat = aivideo("nemo", "chat", "Make a 5-second sunset clip", *url, "--json")
    assert chat.exit_code == 0, chat.output
    events = [json.loads(x) for x in chat.stdout.splitlines()]
    assert any(e["type"] == "ToolCall" for e in events)
    session = chat.stderr.split("session: ", 1)[1].split()[0]
    state = aivideo("nemo", "state", "--session", session, *url)
    assert state.exit_code == 0
    assert "Video: Make a 5-second sunset clip" in state.stdout
    credits = aivideo("nemo", "credits", *url, "--json")
    assert set(json.loads(credits.stdout)) == {"available", "frozen", "total"}
    out = tmp_path / "render.mp4"
    export = aivideo(
        "nemo", "export", "--session", session, *url, "--yes", "--wait", "--out", str(out)
    )
    assert export.exit_code == 0, export.output
    assert out.stat().st_size > 0


@pytest.mark.usefixtures("keys")
def test_a_download_past_its_deadline_exits_4_and_leaves_no_file(
    emulator_proc: EmulatorProcess, tmp_path: Path
) -> None:
    made = aivideo(
        "miraflow",
        "generate-image",
        "--prompt",
        "a red fox",
        "--yes",
        "--json",
        "--wait",
        *emulator_proc.url,
    )
    assert made.exit_code == 0, made.output
    job_id = json.loads(made.stdout)["job_id"]
    emulator_proc.set_faults([{"endpoint": "miraflow.download", "kind": "trickle", "times": 1}])
    dest = tmp_path / "fox.png"
    args = ["miraflow", "download", job_id, str(dest), "--kind", "image", *emulator_proc.url]
    slow = aivideo(*args, "--deadline", "0.3")
    assert slow.exit_code == ExitCode.TRANSPORT, slow.output
    assert "deadline" in slow.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == []
    bad = aivideo(*args, "--deadline", "-1")
    assert bad.exit_code == ExitCode.USAGE, bad.output
    done = aivideo(*args, "--deadline", "30", "--json")
    assert done.exit_code == 0, done.output
    assert json.loads(done.stdout)["bytes"] == dest.stat().st_size > 0
