"""
Fault injection: make the emulator misbehave the way real providers and proxies do.

A :class:`FaultRule` says *where* (an endpoint class, glob patterns allowed),
*what* (a fault kind with its params) and *when* (a probability drawn from the
emulator's seeded RNG, or a schedule of 1-based indices of matching requests,
optionally capped by ``times``). Rules are set at start
(``EmulatorConfig(faults=...)``, ``--faults FILE`` with a JSON list of rule
objects) or at run time (``Emulator.set_faults/add_fault/clear_faults``, or
``GET|POST|DELETE /__emulator__/faults`` with the same JSON).

Endpoint classes (match them with ``fnmatch`` globs: ``"*"``, ``"miraflow.*"``,
``"*.create"``, ``"*.download"``):

======================== ==========================================================
class                    requests
======================== ==========================================================
miraflow.list            GET /api/avatars, /api/voices, /api/videos
miraflow.create          POST /api/video/create, /api/image/generate|edit|inpaint
miraflow.status          GET /api/video/{id}/status, /api/image/{jobId}, /api/job/{jobId}
miraflow.metadata        GET /api/video/{id}
miraflow.download        GET /api/video/{id}/download, GET /s3/miraflow/... (signed)
miraflow.media           POST /api/media/initialize, /api/media/finalize
miraflow.upload          PUT /s3/miraflow-uploads/... (the presigned upload URL)
nemovideo.token          POST /api/auth/anonymous-token, /api/auth/claim-token
nemovideo.session        POST /api/tasks/me/with-session/nemo_agent
nemovideo.run_sse        POST /run_sse (a create: it starts paid work)
nemovideo.upload         POST /api/upload-video/nemo_agent/me/{sid}
nemovideo.credits        GET /api/credits/balance/simple
nemovideo.state          GET /api/state/nemo_agent/me/{sid}/latest
nemovideo.render         POST /api/render/proxy/lambda (a create)
nemovideo.render_status  GET /api/render/proxy/lambda/{id}
nemovideo.render_cancel  POST /api/render/proxy/lambda/{id}/cancel
nemovideo.download       GET /api/render/proxy/{id}/download, GET /s3/nemovideo/...
aivideomaker.create      POST /api/v1/generate/{model}
aivideomaker.list        GET /api/v1/tasks
aivideomaker.detail      GET /api/v1/tasks/{id}
aivideomaker.status      GET /api/v1/tasks/{id}/status
aivideomaker.cancel      PUT /api/v1/tasks/{id}/cancel
aivideomaker.download    GET /s3/aivideomaker/... (signed)
======================== ==========================================================

Fault kinds and their params (defaults in brackets). "Before" kinds answer
without running the endpoint (nothing is created); "after" kinds run it first,
so a create is committed (counted, the job exists, credits are charged) and
then the response goes wrong:

* ``latency`` ``{"seconds": 0.2}``: wait, then answer normally. Latency rules
  add up and combine with one other fault.
* ``rate_limit`` ``{"retry_after": 1, "form": "seconds"|"date"}``: before; 429 in
  the provider's error shape with ``Retry-After`` as delta-seconds or as an
  HTTP-date. A storm is a rule with ``probability=1`` and ``times=N``.
* ``server_error`` ``{"status": 500, "commit": false}``: a 5xx in the
  provider's error shape; ``commit: true`` runs the endpoint first (a gateway
  that forwarded the create, then failed).
* ``drop_after_commit``: after; the connection is closed with no response byte
  (the client sees ``ServerDisconnectedError``).
* ``stall_after_commit`` ``{"seconds": 30}``: after; nothing is sent for that
  long (cut short when the server stops), then the connection is closed.
* ``truncate`` ``{"fraction": 0.5}``: after; ``Content-Length`` announces the full
  body, only that fraction is sent, then the connection is closed.
* ``html`` ``{"status": 200, "commit": false}``: an nginx-style ``text/html``
  page with that status (200 or 502), as a proxy in front of the API would send.
* ``oversize`` ``{"bytes": 8388608}``: after; the real body padded (JSON with
  spaces, binary with zero bytes) to at least that many bytes, honest length.
* ``trickle`` ``{"interval": 0.1, "chunk": 1}``: after; the body is sent
  ``chunk`` bytes per ``interval`` seconds (a slow-loris response).
* ``reset_download`` ``{"fraction": 0.5}``: after; headers and that fraction of
  the body, then a TCP reset (``SO_LINGER`` 0). Meant for downloads.
* ``expire_signed_url``: before; 403 ``AccessDenied`` "Request has expired", as S3
  answers an expired signed URL. Only on ``*.download`` and ``miraflow.upload``.
* ``sse_stall`` ``{"after_events": 1, "seconds": 30}``: on ``nemovideo.run_sse``,
  after that many events nothing more is sent (no heartbeats) for that long,
  then the stream closes.
* ``sse_close_mid_event`` ``{"after_events": 1}``: after that many events, half
  of the next event is sent, then the connection closes.
* ``sse_line_endings`` ``{"ending": "lf"|"cr"|"crlf"}``: the line ending the
  stream uses.
* ``sse_fragment`` ``{"min": 1, "max": 7}``: the stream is written in fragments
  of that many bytes (seeded), each flushed on its own.
* ``token_expired``: on NemoVideo endpoints that need a token; code 1001. An
  anonymous bearer token expires for good (get a new one from
  ``anonymous-token`` with the same ``X-Client-Id``: same user, same
  sessions); a manual token (``api_keys``) fails this one call only.
* ``session_lost``: on NemoVideo endpoints that name a session (``run_sse``,
  ``upload``, ``state``, ``render``); the session is deleted (code 1002).

Examples (Python, then the same as ``--faults`` JSON)::

    FaultRule(endpoint="miraflow.create", kind="drop_after_commit", schedule=[1])
    FaultRule(endpoint="*.status", kind="rate_limit", probability=0.1,
              params={"retry_after": 2, "form": "date"})
    FaultRule(endpoint="*", kind="rate_limit", times=20)          # a 429 storm
    FaultRule(endpoint="nemovideo.run_sse", kind="sse_fragment", params={"min": 1, "max": 7})
    FaultRule(endpoint="*.download", kind="reset_download", times=1)

    [{"endpoint": "miraflow.create", "kind": "drop_after_commit", "schedule": [1]},
     {"endpoint": "*", "kind": "latency", "probability": 0.5, "params": {"seconds": 0.05}}]

Example:
    >>> rule = FaultRule(endpoint="*.status", kind="rate_limit", schedule=[2])
    >>> rule.param("retry_after")
    1
    >>> FaultRule(endpoint="*", kind="explode")
    Traceback (most recent call last):
    ...
    ValueError: unknown fault kind 'explode'; expected one of: latency, rate_limit, ...
"""

from __future__ import annotations

import contextvars
import fnmatch
import random
from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

import attrs

if TYPE_CHECKING:
    from ._stats import Stats

__all__ = ["ENDPOINTS", "KINDS", "Endpoint", "FaultEngine", "FaultRule"]

_MIB = 1024 * 1024

KINDS: Mapping[str, Mapping[str, Any]] = MappingProxyType(
    {
        "latency": {"seconds": 0.2},
        "rate_limit": {"retry_after": 1, "form": "seconds"},
        "server_error": {"status": 500, "commit": False},
        "drop_after_commit": {},
        "stall_after_commit": {"seconds": 30.0},
        "truncate": {"fraction": 0.5},
        "html": {"status": 200, "commit": False},
        "oversize": {"bytes": 8 * _MIB},
        "trickle": {"interval": 0.1, "chunk": 1},
        "reset_download": {"fraction": 0.5},
        "expire_signed_url": {},
        "sse_stall": {"after_events": 1, "seconds": 30.0},
        "sse_close_mid_event": {"after_events": 1},
        "sse_line_endings": {"ending": "lf"},
        "sse_fragment": {"min": 1, "max": 7},
        "token_expired": {},
        "session_lost": {},
    }
)
"""Every fault kind with its params and their defaults."""

STREAM_FAULT: contextvars.ContextVar[FaultRule | None] = contextvars.ContextVar(
    "aivideo_emulator_stream_fault", default=None
)
"""The fault a streaming handler must apply itself (set per request task by the app)."""

SSE_KINDS = frozenset({"sse_stall", "sse_close_mid_event", "sse_line_endings", "sse_fragment"})
# Kinds that rewrite a complete response; a stream that is already flowing cannot take them.
_BODY_KINDS = frozenset({"truncate", "oversize", "trickle", "reset_download"})


@attrs.frozen
class Endpoint:
    """
    An endpoint class: the unit faults and stats are counted by.

    Example:
        >>> ENDPOINTS["miraflow.create"].create
        True
    """

    name: str
    create: bool = False
    poll: bool = False
    download: bool = False
    sse: bool = False
    session: bool = False
    token: bool = False

    @property
    def provider(self) -> str:
        """The provider part of the name."""
        return self.name.partition(".")[0]


def _ep(name: str, **flags: bool) -> tuple[str, Endpoint]:
    return name, Endpoint(name, **flags)


ENDPOINTS: Mapping[str, Endpoint] = MappingProxyType(
    dict(
        [
            _ep("miraflow.list"),
            _ep("miraflow.create", create=True),
            _ep("miraflow.status", poll=True),
            _ep("miraflow.metadata"),
            _ep("miraflow.download", download=True),
            _ep("miraflow.media"),
            _ep("miraflow.upload"),
            _ep("nemovideo.token"),
            _ep("nemovideo.session", token=True),
            _ep("nemovideo.run_sse", create=True, sse=True, session=True, token=True),
            _ep("nemovideo.upload", session=True, token=True),
            _ep("nemovideo.credits", token=True),
            _ep("nemovideo.state", poll=True, session=True, token=True),
            _ep("nemovideo.render", create=True, session=True, token=True),
            _ep("nemovideo.render_status", poll=True, token=True),
            _ep("nemovideo.render_cancel", token=True),
            _ep("nemovideo.download", download=True, token=True),
            _ep("aivideomaker.create", create=True),
            _ep("aivideomaker.list"),
            _ep("aivideomaker.detail", poll=True),
            _ep("aivideomaker.status", poll=True),
            _ep("aivideomaker.cancel"),
            _ep("aivideomaker.download", download=True),
        ]
    )
)
"""Every endpoint class by name."""


def _check_kind(_inst: object, _attr: object, kind: str) -> None:
    if kind not in KINDS:
        raise ValueError(f"unknown fault kind {kind!r}; expected one of: {', '.join(KINDS)}")


def _check_probability(_inst: object, _attr: object, value: float) -> None:
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"probability must be in [0, 1], got {value!r}")


def _to_schedule(value: Sequence[Any] | None) -> tuple[int, ...] | None:
    if value is None:
        return None
    out = tuple(value)
    if any(isinstance(i, bool) or not isinstance(i, int) or i < 1 for i in out):
        raise ValueError(f"schedule must hold 1-based request indices (ints >= 1), got {value!r}")
    return out


def _check_times(_inst: object, _attr: object, value: int | None) -> None:
    if value is not None and value < 0:
        raise ValueError(f"times must be >= 0 or None, got {value!r}")


_CHOICES = {"ending": ("lf", "cr", "crlf"), "form": ("seconds", "date")}


def _check_param(kind: str, name: str, value: Any, default: Any) -> None:
    if name in _CHOICES:
        if value not in _CHOICES[name]:
            raise ValueError(
                f"param {name!r} of fault kind {kind!r} must be one of "
                f"{', '.join(_CHOICES[name])}, got {value!r}"
            )
    elif isinstance(default, bool):
        if not isinstance(value, bool):
            raise ValueError(
                f"param {name!r} of fault kind {kind!r} must be true/false, got {value!r}"
            )
    elif isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise ValueError(
            f"param {name!r} of fault kind {kind!r} must be a number >= 0, got {value!r}"
        )


def _to_params(value: Mapping[str, Any]) -> Mapping[str, Any]:
    return MappingProxyType(dict(value))


@attrs.frozen(kw_only=True)
class FaultRule:
    """
    One fault: where, what, when.

    Endpoint classes are ``<provider>.<class>``: ``miraflow.{list, create, status,
    metadata, download, media, upload}``, ``nemovideo.{token, session, run_sse,
    upload, credits, state, render, render_status, render_cancel, download}`` and
    ``aivideomaker.{create, list, detail, status, cancel, download}``.

    Kinds and params (defaults): ``latency`` (seconds 0.2); ``rate_limit``
    (retry_after 1, form "seconds"|"date"); ``server_error`` (status 500, commit
    false); ``drop_after_commit``; ``stall_after_commit`` (seconds 30);
    ``truncate`` (fraction 0.5); ``html`` (status 200, commit false); ``oversize``
    (bytes 8 MiB); ``trickle`` (interval 0.1, chunk 1); ``reset_download``
    (fraction 0.5); ``expire_signed_url``; ``sse_stall`` (after_events 1, seconds
    30); ``sse_close_mid_event`` (after_events 1); ``sse_line_endings`` (ending
    "lf"|"cr"|"crlf"); ``sse_fragment`` (min 1, max 7); ``token_expired``;
    ``session_lost``. The ``aivideo_async.emulator._faults`` module docstring says
    what each one does on the wire.

    Args:
        endpoint: an endpoint class or an ``fnmatch`` glob over them (``"*"``).
        kind: the fault kind.
        probability: chance per matching request, drawn from the seeded RNG.
        schedule: instead of ``probability``, the 1-based indices of matching
            requests to hit, e.g. ``[1, 3]``.
        times: stop after hitting this many requests.
        params: kind-specific settings; unknown names are refused.

    Example:
        >>> FaultRule(endpoint="miraflow.create", kind="drop_after_commit", schedule=[1]).schedule
        (1,)
        >>> FaultRule(endpoint="*", kind="latency", params={"secs": 1})
        Traceback (most recent call last):
        ...
        ValueError: unknown param 'secs' for fault kind 'latency'; known: seconds
    """

    endpoint: str = "*"
    kind: str = attrs.field(validator=_check_kind)
    probability: float = attrs.field(default=1.0, validator=_check_probability)
    schedule: tuple[int, ...] | None = attrs.field(default=None, converter=_to_schedule)
    times: int | None = attrs.field(default=None, validator=_check_times)
    params: Mapping[str, Any] = attrs.field(factory=dict, converter=_to_params)

    def __attrs_post_init__(self) -> None:
        known = KINDS[self.kind]
        for name, value in self.params.items():
            if name not in known:
                raise ValueError(
                    f"unknown param {name!r} for fault kind {self.kind!r}; "
                    f"known: {', '.join(known) or '(none)'}"
                )
            _check_param(self.kind, name, value, known[name])
        if not any(fnmatch.fnmatchcase(ep, self.endpoint) for ep in ENDPOINTS):
            raise ValueError(
                f"endpoint {self.endpoint!r} matches no endpoint class; "
                f"known: {', '.join(ENDPOINTS)}"
            )

    def param(self, name: str) -> Any:
        """The value of param ``name``, or its default."""
        return self.params.get(name, KINDS[self.kind][name])

    def to_dict(self) -> dict[str, Any]:
        """The JSON form accepted by ``--faults`` and ``POST /__emulator__/faults``."""
        return {
            "endpoint": self.endpoint,
            "kind": self.kind,
            "probability": self.probability,
            "schedule": list(self.schedule) if self.schedule is not None else None,
            "times": self.times,
            "params": dict(self.params),
        }

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> FaultRule:
        """
        Build a rule from its JSON form; unknown keys are refused.

        Example:
            >>> raw = {"endpoint": "*", "kind": "html", "params": {"status": 502}}
            >>> FaultRule.from_dict(raw).kind
            'html'
        """
        if not isinstance(raw, Mapping):
            raise ValueError(f"a fault rule must be a JSON object, got {type(raw).__name__}")
        known = {"endpoint", "kind", "probability", "schedule", "times", "params"}
        extra = set(raw) - known
        if extra:
            raise ValueError(f"unknown fault rule field(s): {', '.join(sorted(extra))}")
        if "kind" not in raw:
            raise ValueError("a fault rule needs 'kind'")
        params = raw.get("params") or {}
        if not isinstance(params, Mapping):
            raise ValueError("fault rule 'params' must be an object")
        probability = raw.get("probability", 1.0)
        if isinstance(probability, bool) or not isinstance(probability, int | float):
            raise ValueError(f"fault rule 'probability' must be a number, got {probability!r}")
        times = raw.get("times")
        if times is not None and (isinstance(times, bool) or not isinstance(times, int)):
            raise ValueError(f"fault rule 'times' must be an integer, got {times!r}")
        schedule = raw.get("schedule")
        if schedule is not None and not isinstance(schedule, list | tuple):
            raise ValueError(f"fault rule 'schedule' must be a list, got {schedule!r}")
        return cls(
            endpoint=str(raw.get("endpoint", "*")),
            kind=str(raw["kind"]),
            probability=float(probability),
            schedule=schedule,
            times=times,
            params=params,
        )


def applicable(kind: str, ep: Endpoint) -> bool:
    """
    Whether fault ``kind`` can happen on endpoint class ``ep``.

    Example:
        >>> applicable("sse_fragment", ENDPOINTS["miraflow.create"])
        False
    """
    if kind in SSE_KINDS:
        return ep.sse
    if kind in _BODY_KINDS:
        return not ep.sse
    if kind == "expire_signed_url":
        return ep.download or ep.name == "miraflow.upload"
    if kind == "token_expired":
        return ep.token
    if kind == "session_lost":
        return ep.session
    return True


class _RuleState:
    __slots__ = ("hits", "match_cache", "rule", "schedule", "seen")

    def __init__(self, rule: FaultRule) -> None:
        self.rule = rule
        self.seen = 0
        self.hits = 0
        self.schedule = frozenset(rule.schedule) if rule.schedule is not None else None
        self.match_cache: dict[str, bool] = {}


class FaultEngine:
    """
    Decides, per request, which faults fire. Seeded: same rules, same seed, same
    request sequence, same faults.

    Example:
        >>> from aivideo_async.emulator._stats import Stats
        >>> rule = FaultRule(endpoint="*.status", kind="html", schedule=[2])
        >>> eng = FaultEngine(0, [rule], Stats())
        >>> [eng.select(ENDPOINTS["miraflow.status"])[1] is not None for _ in range(3)]
        [False, True, False]
    """

    def __init__(self, seed: int, rules: Sequence[FaultRule], stats: Stats) -> None:
        self._rng = random.Random(f"{seed}:faults")
        self._stats = stats
        self._rules: list[_RuleState] = [_RuleState(r) for r in rules]

    @property
    def rules(self) -> list[FaultRule]:
        """The active rules, in order."""
        return [rs.rule for rs in self._rules]

    def set(self, rules: Sequence[FaultRule]) -> None:
        """Replace every rule (their counters start from zero)."""
        self._rules = [_RuleState(r) for r in rules]

    def add(self, rule: FaultRule) -> None:
        """Append one rule."""
        self._rules.append(_RuleState(rule))

    def describe(self) -> list[dict[str, Any]]:
        """The rules as JSON, each with how many requests it saw and hit."""
        return [{**rs.rule.to_dict(), "seen": rs.seen, "hits": rs.hits} for rs in self._rules]

    def select(self, ep: Endpoint) -> tuple[float, FaultRule | None]:
        """
        Return ``(latency seconds, the one other rule that fires or None)``.

        Every matching rule counts the request (for schedules); latency rules
        add up; the first other rule that fires wins.
        """
        latency = 0.0
        chosen: FaultRule | None = None
        for rs in self._rules:
            rule = rs.rule
            match = rs.match_cache.get(ep.name)
            if match is None:
                match = fnmatch.fnmatchcase(ep.name, rule.endpoint) and applicable(rule.kind, ep)
                rs.match_cache[ep.name] = match
            if not match:
                continue
            if rule.times is not None and rs.hits >= rule.times:
                continue
            rs.seen += 1
            if rs.schedule is not None:
                hit = rs.seen in rs.schedule
            elif rule.probability >= 1.0:
                hit = True
            elif rule.probability <= 0.0:
                hit = False
            else:
                hit = self._rng.random() < rule.probability
            if not hit:
                continue
            if rule.kind == "latency":
                latency += float(rule.param("seconds"))
            elif chosen is None:
                chosen = rule
            else:
                continue  # a second fault on the same request cannot apply
            rs.hits += 1
            self._stats.on_fault(rule.kind)
        return latency, chosen

    def __bool__(self) -> bool:
        return bool(self._rules)
