"""
The emulator application: every provider route on one ``aiohttp.web`` app,
accounting and fault injection around each route, and the admin endpoints.

Admin endpoints (no provider auth) live under ``/__emulator__/``:

* ``GET /__emulator__/stats``: the stats JSON (see ``Emulator.stats``);
  ``?brief=1`` leaves out the per-fingerprint create counts.
* ``POST /__emulator__/reset``: forget jobs, sessions, credits and counters;
  reseed; faults go back to the configured ones.
* ``GET /__emulator__/faults``: the active rules with ``seen``/``hits`` counts.
* ``POST /__emulator__/faults``: a JSON list of rules replaces them; a single
  rule object is appended.
* ``DELETE /__emulator__/faults``: remove every rule.
* ``POST /__emulator__/advance`` ``{"seconds": x}``: move the job clock forward.
* ``POST /__emulator__/nemovideo/expire_token`` ``{"token": ...}`` and
  ``POST /__emulator__/nemovideo/drop_session`` ``{"session_id": ...}``: 1001
  and 1002 on demand.

Example:
    >>> app = build_app(EmulatorConfig(seed=1))
    >>> app[STATE].config.seed
    1
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import json
import socket
import struct
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any

import aiohttp
import aiohttp.log
from aiohttp import web

from ._aivideomaker import AIVideoMaker
from ._faults import ENDPOINTS, STREAM_FAULT, Endpoint, FaultRule
from ._miraflow import Miraflow
from ._nemovideo import NemoVideo
from ._state import EmulatorConfig, EmulatorState
from ._wire import Reject, error_response, json_response, s3_error

__all__ = ["STATE", "Emulator", "build_app", "run_emulator"]

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

STATE = web.AppKey("aivideo_emulator_state", EmulatorState)
"""The app key under which :func:`build_app` stores the :class:`EmulatorState`."""

_HTML = {
    200: (
        "<!DOCTYPE html><html><head><title>Just a moment...</title></head>"
        "<body><h1>Checking your browser before accessing the site.</h1></body></html>"
    ),
    502: (
        "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
        "<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n"
        "</body>\r\n</html>\r\n"
    ),
}


def _shape(ep: Endpoint, request: web.Request) -> str:
    # Signed storage URLs speak S3 (XML errors); every other route its provider's envelope.
    return "s3" if request.path.startswith("/s3/") else ep.provider


def _close(request: web.Request) -> None:
    transport = request.transport
    if transport is not None:
        transport.close()


def _reset(request: web.Request) -> None:
    transport = request.transport
    if transport is None:
        return
    sock = transport.get_extra_info("socket")
    if sock is not None:
        # SO_LINGER 0: close() sends a TCP RST instead of a FIN.
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()


def _body_of(resp: web.StreamResponse) -> bytes:
    body = resp.body if isinstance(resp, web.Response) else None
    return body if isinstance(body, bytes) else b""


def _headers_of(resp: web.StreamResponse) -> dict[str, str]:
    return {
        k: v
        for k, v in resp.headers.items()
        if k.lower() not in ("content-length", "transfer-encoding")
    }


async def _partial(
    request: web.Request, resp: web.StreamResponse, fraction: float
) -> tuple[web.StreamResponse, bytes]:
    body = _body_of(resp)
    out = web.StreamResponse(status=resp.status, headers=_headers_of(resp))
    out.content_length = len(body)
    await out.prepare(request)
    n = int(len(body) * fraction)
    if body:
        n = max(0, min(n, len(body) - 1))  # always short of the announced length
    await out.write(body[:n])
    return out, body


async def _with_faults(
    state: EmulatorState, ep: Endpoint, request: web.Request, handler: Handler
) -> web.StreamResponse:
    latency, rule = state.faults.select(ep)
    if latency:
        await state.sleep(latency)
    if rule is None:
        return await handler(request)
    kind = rule.kind
    shape = _shape(ep, request)
    commit = bool(rule.params.get("commit", False)) and not ep.sse
    if kind == "rate_limit":
        after = rule.param("retry_after")
        if rule.param("form") == "date":
            value = email.utils.formatdate(time.time() + float(after), usegmt=True)
        else:
            value = str(int(after))
        return error_response(shape, 429, "Too many requests", headers={"Retry-After": value})
    if kind == "server_error" and not commit:
        status = int(rule.param("status"))
        return error_response(shape, status, "Internal server error")
    if kind == "html" and not commit:
        status = int(rule.param("status"))
        return web.Response(
            text=_HTML.get(status, _HTML[502]), status=status, content_type="text/html"
        )
    if kind == "token_expired":
        token = request.headers.get("Authorization", "").partition(" ")[2].strip()
        info = state.tokens.get(token)
        if info is not None and info.get("expires") is not None:
            info["expired"] = True  # anonymous tokens stay expired; manual ones fail once
        return error_response("nemovideo", 200, "token invalid or expired", code=1001)
    if kind == "session_lost":
        sid = request.match_info.get("sid")
        if sid is None:
            with contextlib.suppress(ValueError, UnicodeDecodeError):
                body = json.loads(await request.read())
                if isinstance(body, dict):
                    sid = body.get("session_id") or body.get("sessionId")
        if isinstance(sid, str):
            state.drop_session(sid)
        return error_response("nemovideo", 200, "session not found", code=1002)
    if kind == "expire_signed_url":
        return s3_error(403, "AccessDenied", "Request has expired")
    if ep.sse:
        # The stream handler applies stream faults (and commit-then-drop) itself.
        STREAM_FAULT.set(rule)  # each request runs in its own task, so its own context
        return await handler(request)
    try:
        resp = await handler(request)
    except Reject as exc:
        resp = exc.response
    try:
        return await _after(state, rule, request, resp, shape)
    except ConnectionError:
        return resp


async def _after(
    state: EmulatorState,
    rule: FaultRule,
    request: web.Request,
    resp: web.StreamResponse,
    shape: str,
) -> web.StreamResponse:
    kind = rule.kind
    if kind == "server_error":
        return error_response(shape, int(rule.param("status")), "Internal server error")
    if kind == "html":
        status = int(rule.param("status"))
        return web.Response(
            text=_HTML.get(status, _HTML[502]), status=status, content_type="text/html"
        )
    if kind == "drop_after_commit":
        _close(request)
        return web.Response()
    if kind == "stall_after_commit":
        await state.sleep(float(rule.param("seconds")))
        _close(request)
        return web.Response()
    if kind == "truncate":
        out, _body = await _partial(request, resp, float(rule.param("fraction")))
        _close(request)
        return out
    if kind == "reset_download":
        out, _body = await _partial(request, resp, float(rule.param("fraction")))
        _reset(request)
        return out
    if kind == "oversize":
        body = _body_of(resp)
        target = int(rule.param("bytes"))
        pad = b" " if "json" in resp.headers.get("Content-Type", "") else b"\0"
        padded = body + pad * max(0, target - len(body))
        return web.Response(body=padded, status=resp.status, headers=_headers_of(resp))
    if kind == "trickle":
        body = _body_of(resp)
        out = web.StreamResponse(status=resp.status, headers=_headers_of(resp))
        out.content_length = len(body)
        await out.prepare(request)
        chunk = max(1, int(rule.param("chunk")))
        interval = float(rule.param("interval"))
        for i in range(0, len(body), chunk):
            await out.write(body[i : i + chunk])
            if i + chunk < len(body) and not await state.sleep(interval):
                _close(request)  # shutting down
                return out
        await out.write_eof()
        return out
    return resp


def _wrap(state: EmulatorState, ep: Endpoint, handler: Handler) -> Handler:
    provider = ep.provider
    name = ep.name
    poll = ep.poll

    async def route(request: web.Request) -> web.StreamResponse:
        stats = state.stats
        stats.requests[provider] += 1
        stats.requests_by_endpoint[name] += 1
        if poll:
            stats.polls[provider] += 1
        stats.concurrent += 1
        if stats.concurrent > stats.max_concurrent_requests:
            stats.max_concurrent_requests = stats.concurrent
        try:
            if state.faults:
                return await _with_faults(state, ep, request, handler)
            return await handler(request)
        except Reject as exc:
            return exc.response
        finally:
            stats.concurrent -= 1

    return route


def _admin_routes(state: EmulatorState) -> list[web.RouteDef]:
    async def stats(request: web.Request) -> web.Response:
        brief = request.query.get("brief", "") not in ("", "0", "false")
        return json_response(state.snapshot(brief=brief))

    async def reset(_request: web.Request) -> web.Response:
        state.reset()
        return json_response({"ok": True})

    async def get_faults(_request: web.Request) -> web.Response:
        return json_response({"faults": state.faults.describe()})

    async def post_faults(request: web.Request) -> web.Response:
        try:
            raw = json.loads(await request.read())
            if isinstance(raw, list):
                state.faults.set([FaultRule.from_dict(r) for r in raw])
            else:
                state.faults.add(FaultRule.from_dict(raw))
        except (ValueError, TypeError) as exc:
            return json_response({"error": str(exc)}, status=400)
        return json_response({"faults": state.faults.describe()})

    async def delete_faults(_request: web.Request) -> web.Response:
        state.faults.set([])
        return json_response({"faults": []})

    async def _field(
        request: web.Request, name: str, kind: type[Any] | tuple[type[Any], ...]
    ) -> Any:
        try:
            value = json.loads(await request.read())[name]
        except (ValueError, TypeError, KeyError):
            raise Reject(json_response({"error": f"body must be {{{name!r}: ...}}"}, 400)) from None
        if not isinstance(value, kind) or isinstance(value, bool):
            raise Reject(json_response({"error": f"{name} must be a {kind}"}, 400))
        return value

    async def advance(request: web.Request) -> web.Response:
        try:
            seconds = await _field(request, "seconds", (int, float))
            state.advance(float(seconds))
        except Reject as exc:
            return exc.response  # type: ignore[return-value]
        except ValueError as exc:
            return json_response({"error": str(exc)}, status=400)
        return json_response({"ok": True})

    async def expire_token(request: web.Request) -> web.Response:
        try:
            token = await _field(request, "token", str)
        except Reject as exc:
            return exc.response  # type: ignore[return-value]
        return json_response({"ok": state.expire_token(token)})

    async def drop_session(request: web.Request) -> web.Response:
        try:
            sid = await _field(request, "session_id", str)
        except Reject as exc:
            return exc.response  # type: ignore[return-value]
        return json_response({"ok": state.drop_session(sid)})

    prefix = "/__emulator__"
    return [
        web.get(f"{prefix}/stats", stats),
        web.post(f"{prefix}/reset", reset),
        web.get(f"{prefix}/faults", get_faults),
        web.post(f"{prefix}/faults", post_faults),
        web.delete(f"{prefix}/faults", delete_faults),
        web.post(f"{prefix}/advance", advance),
        web.post(f"{prefix}/nemovideo/expire_token", expire_token),
        web.post(f"{prefix}/nemovideo/drop_session", drop_session),
    ]


def build_app(
    config: EmulatorConfig | None = None, *, state: EmulatorState | None = None
) -> web.Application:
    """
    Build the emulator's ``aiohttp.web.Application`` (not started).

    Args:
        config: the behaviour; defaults to ``EmulatorConfig()``.
        state: an existing state to serve (``config`` is then ignored).

    Returns:
        The app; its :class:`EmulatorState` is ``app[STATE]``.

    Example:
        >>> len(build_app().router.routes()) > 30
        True
    """
    if state is None:
        state = EmulatorState(config or EmulatorConfig())
    # Uploads are streamed and size-checked by the handlers themselves.
    app = web.Application(client_max_size=state.config.upload_max_bytes + 1024 * 1024)
    app[STATE] = state
    aivideomaker = AIVideoMaker(state)

    async def webhooks(_app: web.Application) -> AsyncIterator[None]:
        # One background task for every webhook (started and stopped with the app).
        async with aiohttp.ClientSession() as http:
            pump = asyncio.ensure_future(aivideomaker.webhook_pump(http))
            yield
            state.closing.set()  # the pump stops, giving deliveries in flight up to 1 s
            try:
                await asyncio.wait_for(pump, 5.0)
            except TimeoutError:
                pass  # wait_for has cancelled it

    app.cleanup_ctx.append(webhooks)
    for module in (Miraflow(state), NemoVideo(state), aivideomaker):
        for method, path, endpoint, handler in module.routes():
            ep = ENDPOINTS[endpoint]
            if method == "GET" and ep.download:
                # HEAD too, so a downloader can learn the size and ETag first.
                app.router.add_get(path, _wrap(state, ep, handler), allow_head=True)
            else:
                app.router.add_route(method, path, _wrap(state, ep, handler))
    app.router.add_routes(_admin_routes(state))
    return app


class Emulator:
    """
    A running emulator: what :func:`run_emulator` yields and the pytest fixture returns.

    Example:
        Start one, point a client at ``base_url``, look at the stats::

            async with run_emulator(EmulatorConfig(time_scale=0.05)) as emu:
                ...  # requests to emu.base_url
                assert emu.stats()["duplicate_creates"] == 0
    """

    def __init__(self, config: EmulatorConfig | None = None, *, access_log: bool = False) -> None:
        self.config = config or EmulatorConfig()
        self._access_log = access_log
        self.state = EmulatorState(self.config)
        self.app = build_app(state=self.state)
        self._runner: web.AppRunner | None = None
        self.base_url = ""
        self.port = 0

    async def start(self) -> None:
        """Bind and start serving; sets :attr:`base_url`."""
        # A short shutdown timeout: stalled handlers are woken by ``closing`` anyway.
        runner = web.AppRunner(
            self.app,
            access_log=aiohttp.log.access_logger if self._access_log else None,
            shutdown_timeout=1.0,
        )
        await runner.setup()
        self._runner = runner
        site = web.TCPSite(runner, self.config.host, self.config.port)
        await site.start()
        host, port = runner.addresses[0][:2]
        self.port = int(port)
        shown = f"[{host}]" if ":" in str(host) else str(host)
        self.base_url = f"http://{shown}:{self.port}"

    async def aclose(self) -> None:
        """Stop serving; stalls and streams in progress end at once."""
        self.state.closing.set()
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    async def __aenter__(self) -> Emulator:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def stats(self, *, brief: bool = False) -> dict[str, Any]:
        """
        The same JSON as ``GET /__emulator__/stats`` (``?brief=1``).

        Keys: ``requests`` and ``creates`` and ``polls`` (per provider),
        ``requests_by_endpoint`` (per endpoint class), ``creates_by_fingerprint``
        (left out when ``brief``), ``duplicate_creates``,
        ``duplicate_fingerprints``, ``concurrent_requests``,
        ``max_concurrent_requests``, ``jobs`` (provider -> the provider's own
        status string -> count), ``faults_fired`` (per kind) and ``webhooks``.
        """
        return self.state.snapshot(brief=brief)

    def set_faults(self, rules: Sequence[FaultRule]) -> None:
        """Replace every fault rule."""
        self.state.faults.set(rules)

    def add_fault(self, rule: FaultRule) -> None:
        """Append a fault rule."""
        self.state.faults.add(rule)

    def clear_faults(self) -> None:
        """Remove every fault rule."""
        self.state.faults.set([])

    def reset(self) -> None:
        """Forget jobs, sessions, credits and counters; reseed; configured faults again."""
        self.state.reset()

    def advance(self, seconds: float) -> None:
        """Move the job clock forward ``seconds`` (jobs progress, URLs expire) at once."""
        self.state.advance(seconds)

    def expire_token(self, token: str) -> bool:
        """Make a NemoVideo token answer 1001 from now on."""
        return self.state.expire_token(token)

    def drop_session(self, session_id: str) -> bool:
        """Make a NemoVideo session answer 1002 from now on."""
        return self.state.drop_session(session_id)


@contextlib.asynccontextmanager
async def run_emulator(config: EmulatorConfig | None = None) -> AsyncIterator[Emulator]:
    """
    Serve an emulator for the duration of the ``async with`` block.

    Example:
        A test against all three providers on one port::

            async with run_emulator(EmulatorConfig(seed=1, time_scale=0.05)) as emu:
                async with aiohttp.ClientSession() as http:
                    r = await http.get(f"{emu.base_url}/api/avatars", headers={"x-api-key": "k"})
    """
    emu = Emulator(config)
    await emu.start()
    try:
        yield emu
    finally:
        await emu.aclose()
