"""`aivideo batch`, `jobs`, `reconcile`, `resume` against the emulator (issue 7)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from .conftest import EmulatorProcess, aivideo

pytestmark = pytest.mark.usefixtures("keys")


def _write(path: Path, lines: Sequence[dict[str, Any] | str]) -> Path:
    path.write_text(
        "\n".join(x if isinstance(x, str) else json.dumps(x) for x in lines) + "\n",
        encoding="utf-8",
    )
    return path


def _t2v(i: int) -> dict[str, Any]:
    return {
        "provider": "aivideomaker",
        "kind": "t2v",
        "params": {"prompt": f"waves, take {i}", "duration": 5},
        "key": f"row-{i}",
    }


def _image(i: int) -> dict[str, Any]:
    return {
        "provider": "miraflow",
        "kind": "image",
        "params": {"prompt": f"a red fox {i}"},
        "key": f"img-{i}",
    }


FAST = ["--poll-initial", "0.1", "--poll-cap", "0.3", "--plain"]


def test_bad_lines_are_reported_with_line_numbers_and_nothing_is_sent(
    tmp_path: Path, emulator_proc: EmulatorProcess
) -> None:
    manifest = _write(
        tmp_path / "m.jsonl",
        [
            _t2v(1),
            "{not json",
            {**_t2v(2), "params": {"prompt": "x", "duration": 7}},
            {**_image(1), "params": {"promt": "typo"}},
            _image(2),
        ],
    )
    journal = tmp_path / "jobs.db"
    result = aivideo("batch", str(manifest), "--journal", str(journal), *emulator_proc.url)
    assert result.exit_code == 2
    errors = result.stderr.splitlines()
    assert errors[0].startswith("error: manifest line 2: not valid JSON")
    assert (
        errors[1]
        == "error: manifest line 3: duration: got 7, expected one of 5, 8 (seconds) for model t2v"
    )
    assert errors[2].startswith(
        "error: manifest line 4: params: got ['promt'], expected fields among prompt"
    )
    assert errors[3] == "3 bad line(s) out of 5; nothing was submitted"
    assert emulator_proc.creates() == 0
    assert not journal.exists()


def test_batch_downloads_reports_and_a_rerun_sends_nothing(
    tmp_path: Path, emulator_proc: EmulatorProcess
) -> None:
    lines = [_t2v(i) for i in range(3)] + [_image(i) for i in range(3)]
    manifest = _write(tmp_path / "m.jsonl", lines)
    journal, report, out = tmp_path / "jobs.db", tmp_path / "report.json", tmp_path / "out"
    args = ["batch", str(manifest), "--journal", str(journal), *emulator_proc.url]
    args += ["--download", str(out), *FAST]
    first = aivideo(*args, "--report", str(report))
    assert first.exit_code == 0, first.output
    rows = json.loads(report.read_text())
    assert [r["key"] for r in rows] == [line["key"] for line in lines]
    assert [r["line"] for r in rows] == [1, 2, 3, 4, 5, 6]
    assert {r["outcome"] for r in rows} == {"succeeded"}
    assert all(Path(r["file"]).stat().st_size > 0 for r in rows)
    assert sorted(p.name for p in out.iterdir()) == [
        "img-0.png",
        "img-1.png",
        "img-2.png",
        "row-0.mp4",
        "row-1.mp4",
        "row-2.mp4",
    ]
    assert emulator_proc.creates() == 6

    second = aivideo(*args, "--report", str(tmp_path / "again.csv"))
    assert second.exit_code == 0, second.output
    assert emulator_proc.creates() == 6  # every key answered from the journal
    assert emulator_proc.stats()["duplicate_creates"] == 0
    csv_lines = (tmp_path / "again.csv").read_text().splitlines()
    assert csv_lines[0] == "line,key,provider,kind,submission,job_id,outcome,error,file"
    assert len(csv_lines) == 7

    listed = aivideo("jobs", "--journal", str(journal), "--json")
    assert listed.exit_code == 0
    entries = json.loads(listed.stdout)
    assert [(e["key"], e["state"], e["outcome"]) for e in entries] == [
        (line["key"], "accepted", "succeeded") for line in lines
    ]
    some = aivideo("jobs", "--journal", str(journal), "--provider", "miraflow", "--limit", "2")
    assert some.exit_code == 0
    assert "img-0" in some.stdout
    assert "img-1" in some.stdout
    assert "img-2" not in some.stdout
    assert "row-0" not in some.stdout


def test_unknown_create_fails_the_batch_then_reconcile_and_resume_finish_it(
    tmp_path: Path, emulator_proc: EmulatorProcess
) -> None:
    # The 2nd create is committed by the provider, then a 502 comes back: ambiguous.
    emulator_proc.set_faults(
        [
            {
                "endpoint": "aivideomaker.create",
                "kind": "server_error",
                "schedule": [2],
                "params": {"status": 502, "commit": True},
            }
        ]
    )
    manifest = _write(tmp_path / "m.jsonl", [_t2v(i) for i in range(3)])
    journal = str(tmp_path / "jobs.db")
    url = emulator_proc.url
    first = aivideo("batch", str(manifest), "--journal", journal, *url, *FAST)
    assert first.exit_code == 1, first.output
    assert "unknown" in first.stdout
    assert emulator_proc.creates() == 3

    unknown = aivideo("jobs", "--journal", journal, "--state", "unknown", "--json")
    assert [e["key"] for e in json.loads(unknown.stdout)] == ["row-1"]

    found = aivideo("reconcile", "--journal", journal, *url, "--json")
    assert found.exit_code == 0, found.output
    [result] = json.loads(found.stdout)
    assert (result["key"], result["outcome"]) == ("row-1", "found")
    assert result["job_id"]

    resumed = aivideo("resume", "--journal", journal, *url, *FAST)
    assert resumed.exit_code == 0, resumed.output
    stats = emulator_proc.stats()
    assert sum(stats["creates"].values()) == 3
    assert stats["duplicate_creates"] == 0
    final = aivideo("jobs", "--journal", journal, "--json")
    assert {e["outcome"] for e in json.loads(final.stdout)} == {"succeeded"}


def test_a_line_refused_for_rate_is_sent_again_by_the_rerun(
    tmp_path: Path, emulator_proc: EmulatorProcess
) -> None:
    """
    A create refused with a 429 asking for 1,000 s (over the 300 s the
    orchestrator waits) fails its line, rejected: no job was created. The
    re-run sends that line again, as attempt 2, and nothing else twice.
    """
    emulator_proc.set_faults(
        [
            {
                "endpoint": "aivideomaker.create",
                "kind": "rate_limit",
                "schedule": [1],
                "params": {"retry_after": 1000},
            }
        ]
    )
    manifest = _write(tmp_path / "m.jsonl", [_t2v(i) for i in range(3)])
    journal = str(tmp_path / "jobs.db")
    args = ["batch", str(manifest), "--journal", journal, *emulator_proc.url, *FAST]
    first = aivideo(*args)
    assert first.exit_code == 1, first.output
    assert emulator_proc.creates() == 2
    rejected = aivideo("jobs", "--journal", journal, "--state", "rejected", "--json")
    [refused] = json.loads(rejected.stdout)

    second = aivideo(*args)
    assert second.exit_code == 0, second.output
    assert emulator_proc.creates() == 3
    assert emulator_proc.stats()["duplicate_creates"] == 0
    entries = {
        e["key"]: e for e in json.loads(aivideo("jobs", "--journal", journal, "--json").stdout)
    }
    assert entries[refused["key"]]["attempt"] == 2
    assert {e["state"] for e in entries.values()} == {"accepted"}
    assert {e["outcome"] for e in entries.values()} == {"succeeded"}


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL], ids=["ctrl-c", "crash"])
def test_ctrl_c_or_crash_mid_batch_then_rerun_sends_no_create_twice(
    tmp_path: Path, emulator_proc: EmulatorProcess, sig: signal.Signals
) -> None:
    # Slow creates, two at a time: the interrupt lands with creates still to send.
    emulator_proc.set_faults(
        [{"endpoint": "aivideomaker.create", "kind": "latency", "params": {"seconds": 0.25}}]
    )
    total = 12
    manifest = _write(tmp_path / "m.jsonl", [_t2v(i) for i in range(total)])
    report = tmp_path / "report.json"
    cmd = [sys.executable, "-m", "aivideo_async.cli", "batch", str(manifest)]
    cmd += ["--journal", str(tmp_path / "jobs.db"), *emulator_proc.url]
    cmd += ["--concurrency", "2", "--report", str(report), *FAST]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}

    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    assert proc.stdout is not None
    accepted = 0
    for line in proc.stdout:
        if " job " in line:  # a row got its job id: that create was accepted
            accepted += 1
            if accepted == 2:
                break
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=30)
    if sig == signal.SIGINT:
        assert proc.returncode == 130, (out, err)
        assert "interrupted: the journal is consistent" in err
    else:
        assert proc.returncode == -signal.SIGKILL
    sent_before = emulator_proc.creates()
    assert 2 <= sent_before < total  # interrupted mid-batch

    rerun = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=60, check=False)
    rows = json.loads(report.read_text())
    stats = emulator_proc.stats()
    assert stats["duplicate_creates"] == 0
    creates = sum(stats["creates"].values())
    succeeded = [r for r in rows if r["outcome"] == "succeeded"]
    unknown = [r for r in rows if r["submission"] == "unknown"]
    # Every line was created exactly once, except a create cut by the interrupt
    # that never reached the provider: that one stays unknown, never resent.
    # (A create left `sending` by the killed process is unknown; reconcile found
    # the ones the provider made.)
    assert [r["line"] for r in rows] == list(range(1, total + 1))  # resumed rows too
    assert len(succeeded) == creates
    assert len(succeeded) + len(unknown) == total
    assert rerun.returncode == (0 if not unknown else 1), rerun.stdout + rerun.stderr


def test_a_nemovideo_render_line_renders_once_across_reruns(
    tmp_path: Path, emulator_proc: EmulatorProcess
) -> None:
    url = emulator_proc.url
    chat = aivideo("nemo", "chat", "Make a 5-second sunset clip", *url)
    assert chat.exit_code == 0, chat.output
    session = chat.stderr.split("session: ", 1)[1].split()[0]
    line = {
        "provider": "nemovideo",
        "kind": "render",
        "params": {"session_id": session},
        "key": "export-1",
    }
    manifest = _write(tmp_path / "m.jsonl", [line])
    args = ["batch", str(manifest), "--journal", str(tmp_path / "jobs.db"), *url, *FAST]
    args += ["--download", str(tmp_path / "out")]
    renders_before = emulator_proc.stats()["creates"].get("nemovideo", 0)
    for _ in range(2):  # the second run finds the key in the journal
        result = aivideo(*args)
        assert result.exit_code == 0, result.output
        assert emulator_proc.stats()["creates"]["nemovideo"] == renders_before + 1
    assert (tmp_path / "out" / "export-1.mp4").stat().st_size > 0


def test_a_key_reused_for_another_request_is_refused_without_a_call(
    tmp_path: Path, emulator_proc: EmulatorProcess
) -> None:
    journal = str(tmp_path / "jobs.db")
    url = emulator_proc.url
    first = _write(tmp_path / "a.jsonl", [_t2v(1)])
    assert aivideo("batch", str(first), "--journal", journal, *url, *FAST).exit_code == 0
    edited = _write(
        tmp_path / "b.jsonl", [{**_t2v(1), "params": {"prompt": "other", "duration": 5}}]
    )
    report = tmp_path / "r.json"
    result = aivideo(
        "batch", str(edited), "--journal", journal, *url, *FAST, "--report", str(report)
    )
    assert result.exit_code == 1, result.output
    [row] = json.loads(report.read_text())
    assert row["outcome"] == "invalid"
    assert "key" in row["error"]
    assert "already used for a different request" in row["error"]
    assert emulator_proc.creates() == 1
