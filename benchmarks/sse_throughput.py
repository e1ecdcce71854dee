"""
SSE decoding throughput: aivideo_async against httpx-sse and sseclient-py.

Run: ``python benchmarks/sse_throughput.py`` (about a minute on 2 cores).

Every library decodes the same corpora from the same chunk lists, in one
process, one after another:

(a) ADK-style chat events: ``id``, ``event`` and a ~250 B JSON ``data`` line,
    with a ``: heartbeat`` comment block every 50 events;
(b) many tiny events (``data: <n>``);
(c) a few 1 MiB events made of 1 KiB data lines;
(d) (a) with CRLF line endings;

each in 64 KiB chunks and in random 1-7 byte chunks (fixed seed). Then a
linearity check: one data line of 1, 2, 4 and 8 MiB fed in 64-byte chunks.

How each library is fed (the way its users run it):

- aivideo_async: ``SSEDecoder.feed(chunk)`` per chunk (what ``aiter_sse`` does);
- httpx-sse: an ``httpx.Response`` whose body is an iterator of the chunks,
  then ``EventSource(response).iter_sse()``: httpx's own byte and UTF-8 text
  decoding, then httpx-sse's line decoder;
- sseclient-py: ``SSEClient(iter(chunks)).events()``;
- aiohttp-sse-client: not run. It opens its own HTTP connection and cannot be
  fed bytes; a socket in the loop would measure the network, not the parser.

events/s counts the events the spec dispatches (the same number for every
library), so a library that emits extra empty events for heartbeat blocks
(httpx-sse does) is not credited for them; the "out" column shows what each
library actually produced. MB is 10**6 bytes of input. Each cell is the best of
several runs; a cell that exceeds its time budget is reported as timed out
(sseclient-py's ``data += line`` is quadratic in the event size).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from types import FrameType

import httpx
import httpx_sse
import sseclient

from aivideo_async._sse import SSEDecoder

KIB = 1024
MIB = 1024 * KIB


# ---------------------------------------------------------------------------
# Corpora


def adk_corpus(events: int, newline: str = "\n") -> tuple[bytes, int]:
    """ADK ``/run_sse`` events as NemoVideo would wrap them (PROVIDER_APIS §2.4, §3.4)."""
    rng = random.Random(7)
    parts: list[str] = []
    for i in range(events):
        if i % 50 == 0:
            parts.append(f": heartbeat{newline}{newline}")
        payload = {
            "content": {
                "parts": [{"text": f"Rendering scene {i}: sunset timelapse"}],
                "role": "model",
            },
            "invocationId": "e-6a0e4c1e-8f0e-4c55-9b8e-2d1f0a7b3c11",
            "author": "nemo_agent",
            "actions": {"stateDelta": {}, "artifactDelta": {}, "requestedAuthConfigs": {}},
            "id": "".join(rng.choices("abcdefghijkLMNOPQ0123456789", k=8)),
            "timestamp": 1773423600.12 + i,
        }
        data = json.dumps(payload, separators=(",", ":"))
        parts.append(f"id: {i}{newline}event: message{newline}data: {data}{newline}{newline}")
    return "".join(parts).encode(), events


def tiny_corpus(events: int) -> tuple[bytes, int]:
    return "".join(f"data: {i}\n\n" for i in range(events)).encode(), events


def big_corpus(events: int) -> tuple[bytes, int]:
    rng = random.Random(11)
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    line = "".join(rng.choices(alphabet, k=KIB))
    block = f"data: {line}\n" * (MIB // KIB) + "\n"
    return (f"event: frame\n{block}" * events).encode(), events


def chunk_64k(body: bytes) -> list[bytes]:
    return [body[i : i + 64 * KIB] for i in range(0, len(body), 64 * KIB)]


def chunk_tiny(body: bytes) -> list[bytes]:
    rng = random.Random(3)
    chunks: list[bytes] = []
    pos = 0
    while pos < len(body):
        size = rng.randint(1, 7)
        chunks.append(body[pos : pos + size])
        pos += size
    return chunks


def chunk_fixed(body: bytes, size: int) -> list[bytes]:
    return [body[i : i + size] for i in range(0, len(body), size)]


# ---------------------------------------------------------------------------
# The libraries, each fed a list of chunks; each returns the events it produced.


def run_aivideo(chunks: list[bytes]) -> int:
    decoder = SSEDecoder(max_line_bytes=16 * MIB, max_event_bytes=32 * MIB)
    count = 0
    feed = decoder.feed
    for chunk in chunks:
        count += len(feed(chunk))
    decoder.close()
    return count


def run_httpx_sse(chunks: list[bytes]) -> int:
    response = httpx.Response(
        200, headers={"content-type": "text/event-stream"}, content=iter(chunks)
    )
    count = 0
    for _ in httpx_sse.EventSource(response).iter_sse():
        count += 1
    return count


def run_sseclient(chunks: list[bytes]) -> int:
    count = 0
    for _ in sseclient.SSEClient(iter(chunks)).events():
        count += 1
    return count


LIBRARIES: dict[str, Callable[[list[bytes]], int]] = {
    "aivideo_async": run_aivideo,
    "httpx-sse": run_httpx_sse,
    "sseclient-py": run_sseclient,
}


# ---------------------------------------------------------------------------
# Timing


class BudgetExceeded(Exception):
    """The cell took longer than its time budget."""


def _on_alarm(signum: int, frame: FrameType | None) -> None:
    raise BudgetExceeded


@dataclass
class Cell:
    seconds: float | None  # None: timed out
    produced: int | None


def measure(
    fn: Callable[[list[bytes]], int], chunks: list[bytes], budget: float, min_total: float
) -> Cell:
    """Best of repeated runs, until ``min_total`` seconds are spent; stop at ``budget``."""
    best: float | None = None
    produced: int | None = None
    spent = 0.0
    signal.setitimer(signal.ITIMER_REAL, budget)
    try:
        while best is None or spent < min_total:
            started = time.perf_counter()
            produced = fn(chunks)
            elapsed = time.perf_counter() - started
            spent += elapsed
            best = elapsed if best is None else min(best, elapsed)
    except BudgetExceeded:
        if best is None:
            return Cell(None, None)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
    return Cell(best, produced)


# ---------------------------------------------------------------------------
# Report


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            for line in info:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    versions = ", ".join(
        f"{name} {metadata.version(name)}" for name in ("httpx", "httpx-sse", "sseclient-py")
    )
    return (
        f"{cpu}, {os.cpu_count()} CPUs, {platform.system()} {platform.release()}, "
        f"CPython {platform.python_version()}; {versions}"
    )


def fmt_rate(value: float) -> str:
    if value >= 1e6:
        return f"{value / 1e6:.2f} M"
    if value >= 1e3:
        return f"{value / 1e3:.1f} k"
    return f"{value:.1f}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--scale", type=float, default=1.0, help="multiply corpus sizes")
    parser.add_argument("--budget", type=float, default=6.0, help="seconds per cell at most")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGALRM, _on_alarm)

    def n(count: int) -> int:
        return max(1, int(count * args.scale))

    corpora: dict[str, tuple[bytes, int]] = {
        "(a) ADK events, LF": adk_corpus(n(4000)),
        "(b) tiny events": tiny_corpus(n(100_000)),
        "(c) 1 MiB events": big_corpus(n(2)),
        "(d) ADK events, CRLF": adk_corpus(n(4000), "\r\n"),
    }
    chunkings: dict[str, Callable[[bytes], list[bytes]]] = {
        "64 KiB": chunk_64k,
        "1-7 B": chunk_tiny,
    }

    print(f"Machine: {machine()}")
    print(
        f"Command: python benchmarks/sse_throughput.py --scale {args.scale} --budget {args.budget}"
    )
    print()
    print(
        "| corpus | chunks | library | events | out | MB | best s | events/s | MB/s | x httpx-sse |"
    )
    print("|---|---|---|---:|---:|---:|---:|---:|---:|---:|")
    ratios: dict[tuple[str, str], float] = {}
    for corpus_name, (body, events) in corpora.items():
        for chunking_name, chunker in chunkings.items():
            chunks = chunker(body)
            # Best of several runs: the machine may be shared, the minimum is the signal.
            min_total = 0.6 if chunker is chunk_64k else 0.4
            cells = {
                name: measure(fn, chunks, args.budget, min_total) for name, fn in LIBRARIES.items()
            }
            base = cells["httpx-sse"].seconds
            for name, cell in cells.items():
                row = f"| {corpus_name} | {chunking_name} | {name} | {events} "
                if cell.seconds is None:
                    timed_out = f"> {args.budget:g} (timed out)"
                    print(f"{row}| - | {len(body) / 1e6:.2f} | {timed_out} | - | - | - |")
                    continue
                ratio = base / cell.seconds if base is not None else float("nan")
                if name == "aivideo_async":
                    ratios[(corpus_name, chunking_name)] = ratio
                print(
                    f"{row}| {cell.produced} | {len(body) / 1e6:.2f} | {cell.seconds:.4f} "
                    f"| {fmt_rate(events / cell.seconds)} | {len(body) / 1e6 / cell.seconds:.1f} "
                    f"| {ratio:.2f} |"
                )
            sys.stdout.flush()
    print(
        "| (any) | any | aiohttp-sse-client | - | - | - | - | skipped: opens its own "
        "connection, cannot be fed bytes | - | - |"
    )

    print()
    print(
        "Linearity: one data line fed in 64-byte chunks. Linear buffering keeps ms/MiB flat"
        " (a step where the line outgrows the CPU cache aside); quadratic buffering doubles"
        " ms/MiB with each doubling of the line."
    )
    print()
    print("| line | library | s | ms/MiB | vs 1 MiB | vs previous size |")
    print("|---|---|---:|---:|---:|---:|")
    slopes: dict[str, float] = {}
    sizes = {"aivideo_async": (1, 2, 4, 8), "httpx-sse": (1, 4, 8), "sseclient-py": (1, 2)}
    for name, line_sizes in sizes.items():
        per_mib: dict[int, float] = {}
        for size in line_sizes:
            body = b"data: " + b"x" * (size * MIB) + b"\n\n"
            cell = measure(LIBRARIES[name], chunk_fixed(body, 64), args.budget, 0.3)
            if cell.seconds is None:
                print(f"| {size} MiB | {name} | > {args.budget:g} (timed out) | - | - | - |")
                continue
            previous = max((known for known in per_mib if known < size), default=None)
            per_mib[size] = cell.seconds / size
            versus = per_mib[size] / per_mib[1] if 1 in per_mib else float("nan")
            step = f"{per_mib[size] / per_mib[previous]:.2f}" if previous else "-"
            print(
                f"| {size} MiB | {name} | {cell.seconds:.3f} | {per_mib[size] * 1e3:.1f} "
                f"| {versus:.2f} | {step} |"
            )
            sys.stdout.flush()
        if 4 in per_mib and 8 in per_mib:
            slopes[name] = per_mib[8] / per_mib[4]

    print()
    print("Targets:")
    checks = [
        ("(a) 64 KiB >= 1.5x httpx-sse", ratios.get(("(a) ADK events, LF", "64 KiB"), 0) >= 1.5),
        ("(d) 64 KiB >= 1.5x httpx-sse", ratios.get(("(d) ADK events, CRLF", "64 KiB"), 0) >= 1.5),
        ("every cell >= 0.8x httpx-sse", bool(ratios) and min(ratios.values()) >= 0.8),
        # From 4 to 8 MiB (both past the CPU cache) quadratic buffering doubles ms/MiB.
        (
            "8 MiB line linear (ms/MiB at 8 MiB < 1.5x that at 4 MiB)",
            slopes.get("aivideo_async", 99) < 1.5,
        ),
    ]
    for label, ok in checks:
        print(f"- {label}: {'PASS' if ok else 'FAIL'}")
    return 0 if all(ok for _, ok in checks) else 1


if __name__ == "__main__":
    raise SystemExit(main())
