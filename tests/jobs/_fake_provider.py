"""
A tiny fake provider over real loopback for the orchestrator tests.

``FakeProvider`` is an aiohttp.web app that counts every create it commits (by
payload fingerprint) and can, per create, commit then drop the connection,
commit then stall, commit then truncate the body, answer 5xx (after
committing, as a gateway that forwarded the call would), answer an HTML page,
429 or 400. ``FakeBackend`` is a minimal :class:`JobBackend` that talks to it
through :class:`aivideo_async._session.Session`, so the orchestrator sees the
session layer's real error classification.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from collections import Counter, deque
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any

from aiohttp import web

from aivideo_async._config import Timeouts
from aivideo_async._models import JobResult, JobState, JobStatus
from aivideo_async._secret import Secret
from aivideo_async._session import HeaderKeyAuth, Session
from aivideo_async.providers._base import JobSpec

API_KEY = "sk-fake-TOPSECRET-0123456789"

# Faults a create can be given (FakeProvider.faults, consumed one per create).
OK = "ok"
DROP = "drop"  # commit, then close the connection with no response byte
STALL = "stall"  # commit, then send nothing until the test ends
TRUNCATE = "truncate"  # commit, then a 200 whose body is cut short
SERVER_ERROR = "5xx"  # commit, then 502 (a gateway that forwarded the call)
HTML = "html"  # commit, then a 200 text/html proxy page
RATE_LIMIT = "429"  # no commit: 429 with Retry-After
BAD_REQUEST = "400"  # no commit: 400 validation error


def fingerprint(payload: Mapping[str, Any]) -> str:
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


class FakeProvider:
    def __init__(self, *, polls_to_finish: int = 1, retry_after: str = "45") -> None:
        self.faults: deque[str] = deque()
        self.creates = 0
        self.create_requests = 0
        self.creates_by_fingerprint: Counter[str] = Counter()
        self.jobs: dict[str, dict[str, Any]] = {}
        self.polls = 0
        self.polls_to_finish = polls_to_finish
        self.retry_after = retry_after
        self.committed = asyncio.Event()
        self._release = asyncio.Event()
        self.base_url = ""
        self.seen_auth: set[str] = set()

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/v1/jobs", self._create)
        app.router.add_get("/v1/jobs", self._list)
        app.router.add_get("/v1/jobs/{id}", self._status)
        return app

    @asynccontextmanager
    async def running(self) -> AsyncIterator[FakeProvider]:
        runner = web.AppRunner(self.app(), handle_signals=False)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        self.base_url = f"http://127.0.0.1:{port}"
        try:
            yield self
        finally:
            self._release.set()
            await runner.cleanup()

    def duplicates(self) -> int:
        return sum(n - 1 for n in self.creates_by_fingerprint.values() if n > 1)

    async def _create(self, request: web.Request) -> web.StreamResponse:
        self.create_requests += 1
        self.seen_auth.add(request.headers.get("x-api-key", ""))
        payload = json.loads(await request.read())
        fault = self.faults.popleft() if self.faults else OK
        if fault == RATE_LIMIT:
            return web.json_response(
                {"error": "too many requests"},
                status=429,
                headers={"Retry-After": self.retry_after},
            )
        if fault == BAD_REQUEST:
            return web.json_response({"error": "avatarId is required"}, status=400)
        # Commit: from here on the job exists, whatever the client hears.
        self.creates += 1
        self.creates_by_fingerprint[fingerprint(payload)] += 1
        job_id = f"job-{self.creates:05d}"
        self.jobs[job_id] = {"payload": payload, "created": time.time(), "polls": 0}
        self.committed.set()
        body = json.dumps({"jobId": job_id}).encode()
        if fault == OK:
            return web.json_response({"jobId": job_id})
        if fault == DROP:
            assert request.transport is not None
            request.transport.close()
            return web.Response()
        if fault == STALL:
            await self._release.wait()
            return web.Response()
        if fault == TRUNCATE:
            response = web.StreamResponse(status=200, headers={"Content-Type": "application/json"})
            response.content_length = len(body) + 100
            await response.prepare(request)
            await response.write(body[:5])
            assert request.transport is not None
            request.transport.close()
            return response
        if fault == SERVER_ERROR:
            return web.json_response({"error": "bad gateway"}, status=502)
        if fault == HTML:
            return web.Response(text="<html>proxy says hi</html>", content_type="text/html")
        raise AssertionError(fault)

    async def _status(self, request: web.Request) -> web.Response:
        self.polls += 1
        job = self.jobs.get(request.match_info["id"])
        if job is None:
            return web.json_response({"error": "no such job"}, status=404)
        job["polls"] += 1
        if job["polls"] < self.polls_to_finish:
            return web.json_response({"status": "running"})
        if job["payload"].get("fail"):
            return web.json_response({"status": "failed", "message": "face not detected"})
        return web.json_response(
            {
                "status": "succeeded",
                "url": f"https://cdn.example/{request.match_info['id']}.mp4?sig=SIGNED",
            }
        )

    async def _list(self, request: web.Request) -> web.Response:
        since = float(request.query.get("since", "0"))
        items = [
            {"id": job_id, "tag": job["payload"].get("tag"), "created": job["created"]}
            for job_id, job in self.jobs.items()
            if job["created"] >= since
        ]
        return web.json_response({"jobs": items})


class FakeBackend:
    """A minimal JobBackend over the session layer."""

    def __init__(self, base_url: str, *, provider: str = "fake", read_timeout: float = 0.5):
        self.provider = provider
        self.session = Session(
            provider=provider,
            base_url=base_url,
            auth=HeaderKeyAuth("x-api-key", Secret(API_KEY)),
            timeouts=Timeouts(connect=1.0, read=read_timeout, total=read_timeout + 1.0),
        )
        self.find_calls = 0

    async def __aenter__(self) -> FakeBackend:
        await self.session.__aenter__()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.session.aclose()

    async def create(self, spec: JobSpec) -> str:
        response = await self.session.request(spec.method, spec.path, json=dict(spec.payload))
        body = response.json()
        assert isinstance(body, Mapping)
        job_id = body["jobId"]
        assert isinstance(job_id, str)
        return job_id

    async def poll(self, kind: str, job_id: str) -> JobStatus:
        response = await self.session.request("GET", "/v1/jobs/{id}", path_params={"id": job_id})
        body = response.json()
        assert isinstance(body, Mapping)
        raw = str(body["status"])
        state = {"running": JobState.RUNNING, "succeeded": JobState.SUCCEEDED}.get(
            raw, JobState.FAILED
        )
        result = None
        if state is JobState.SUCCEEDED:
            result = JobResult(provider=self.provider, kind=kind, job_id=job_id, url=body["url"])  # type: ignore[arg-type]
        message = body.get("message")
        return JobStatus(
            state=state,
            raw_status=raw,
            result=result,
            message=message if isinstance(message, str) else None,
        )

    async def poll_many(self, kind: str, job_ids: Sequence[str]) -> Mapping[str, JobStatus] | None:
        return None

    def supports_cancel(self, kind: str) -> bool:
        return False

    async def cancel(self, kind: str, job_id: str) -> None:
        raise NotImplementedError

    async def find_submission(self, spec: JobSpec, *, since: float) -> str | None:
        self.find_calls += 1
        if spec.match_tag is None:
            return None
        response = await self.session.request("GET", "/v1/jobs", params={"since": str(since)})
        body: Any = response.json()
        for item in body["jobs"]:
            if item["tag"] == spec.match_tag:
                return str(item["id"])
        return None


def spec(n: int, *, tag: bool = True, fail: bool = False, provider: str = "fake") -> JobSpec:
    payload: dict[str, Any] = {"prompt": f"a llama number {n}", "n": n}
    if tag:
        payload["tag"] = f"t{n}"
    if fail:
        payload["fail"] = True
    return JobSpec(
        provider=provider,
        kind="video",
        method="POST",
        path="/v1/jobs",
        payload=payload,
        match_tag=payload.get("tag"),
    )
