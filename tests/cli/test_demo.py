"""`aivideo demo`: the mixed batch against the embedded emulator, and its summary (issue 7)."""

from __future__ import annotations

import json
from pathlib import Path

from .conftest import aivideo


def test_demo_summary_has_no_duplicates_and_every_job_terminal(tmp_path: Path) -> None:
    out = tmp_path / "demo-out"
    result = aivideo("demo", "--out", str(out), "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)

    assert summary["ok"] is True
    assert summary["jobs"] == 30
    assert summary["all_terminal"] is True
    # One create per job as the provider saw it, and none twice (emulator fingerprints).
    assert summary["creates_sent"] == summary["jobs"]
    assert summary["duplicate_creates"] == 0
    # The commit-then-drop create became unknown, was never resent, and reconcile found it.
    assert summary["unknown_outcomes"] == 1
    assert [r["outcome"] for r in summary["reconciled"]] == ["found"]
    assert summary["faults_fired"]["drop_after_commit"] == 1
    assert summary["faults_fired"]["rate_limit"] >= 1
    assert sum(summary["outcomes"].values()) == 30
    assert summary["http_requests"] > summary["jobs"]
    # Every job but the chat turn produced a file.
    files = sorted(p for p in out.rglob("*") if p.suffix in {".mp4", ".png"})
    assert len(files) == summary["downloads"] == summary["outcomes"]["succeeded"] - 1
    assert all(p.stat().st_size > 0 for p in files)
    assert summary["wall_time_s"] < 60
    # The progress went to stderr as plain lines, with the events as they happened.
    progress = result.stderr
    assert "unknown outcome: outcome of the create for key 'demo/s0/avm-t2v-02'" in progress
    assert "reconcile: demo/s0/avm-t2v-02 -> job " in progress
    assert "429 on a poll; pausing polls" in progress
    assert ": retry 1 of 1 " in progress
    assert (
        progress.rstrip()
        .splitlines()[-1]
        .endswith(
            f"30 jobs: {', '.join(f'{n} {s}' for s, n in summary['outcomes'].items())}"
            f" | HTTP {summary['http_requests']} | creates {summary['creates_sent']}"
            f" | retries {summary['retries']} | 429s {summary['rate_limited_polls']}"
            f" | pauses {summary['provider_pauses']} | downloaded {summary['downloads']}"
        )
    )
