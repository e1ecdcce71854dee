"""
NemoVideo drafts (``state.draft``): a lenient parse, readiness check, a
fingerprint for change detection and a readable timeline summary.

The draft uses short keys (PROVIDER_APIS.md §2.5): ``t`` tracks, ``tt`` track
type (0 video, 1 audio/BGM, 7 text/title), ``sg`` segments, ``d`` duration in
milliseconds, ``m`` metadata. Everything else is ASSUMED, so the draft is kept
verbatim in :attr:`Draft.raw` (a render sends it back unchanged) and only the
documented keys are type-checked.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

import attrs

from ..._exceptions import DecodeError

__all__ = [
    "Draft",
    "Track",
    "Segment",
    "TRACK_TYPE_NAMES",
    "parse_draft",
    "draft_fingerprint",
    "timeline_summary",
]

TRACK_TYPE_NAMES: Mapping[int, str] = {0: "Video", 1: "Audio", 7: "Text"}
"""Display names of the documented track types (``tt``)."""

# Segment keys that may carry a human label, most specific first. The segment
# format is ASSUMED (PROVIDER_APIS.md §5 #11), so these are guesses tried in order.
_LABEL_KEYS = ("title", "name", "n", "text", "txt", "content", "prompt", "file_name", "src", "url")
_START_KEYS = ("st", "start", "s")


def _fail(path: str, expected: str, value: object) -> DecodeError:
    return DecodeError(
        f"expected {expected}, got {type(value).__name__}", path=path, provider="nemovideo"
    )


def _number(value: object, path: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _fail(path, "a number (milliseconds)", value)
    return float(value)


@attrs.frozen(kw_only=True)
class Segment:
    """
    One clip of a track.

    Attributes:
        duration_ms: ``d``, or ``None`` when absent.
        start_ms: an explicit start (``st``/``start``/``s``) if the segment has one.
        label: a human label guessed from the segment's text fields, if any.
        raw: the segment object unchanged.

    Example:
        >>> Segment(duration_ms=5000.0).duration_ms
        5000.0
    """

    duration_ms: float | None = None
    start_ms: float | None = None
    label: str | None = None
    raw: Mapping[str, Any] = attrs.field(factory=dict, repr=False, eq=False)


@attrs.frozen(kw_only=True)
class Track:
    """
    One track of a draft.

    Attributes:
        track_type: ``tt`` (0 video, 1 audio/BGM, 7 text/title), ``None`` if absent.
        segments: the ``sg`` clips in order.
        raw: the track object unchanged.

    Example:
        >>> Track(track_type=0).kind
        'Video'
        >>> Track(track_type=3).kind
        'Track type 3'
    """

    track_type: int | None = None
    segments: tuple[Segment, ...] = ()
    raw: Mapping[str, Any] = attrs.field(factory=dict, repr=False, eq=False)

    @property
    def kind(self) -> str:
        """
        The display name of :attr:`track_type` (``Video``, ``Audio``, ``Text``).

        Example:
            >>> Track(track_type=7).kind
            'Text'
        """
        if self.track_type is None:
            return "Track"
        return TRACK_TYPE_NAMES.get(self.track_type, f"Track type {self.track_type}")


@attrs.frozen(kw_only=True)
class Draft:
    """
    A parsed ``state.draft``.

    Attributes:
        tracks: ``t``.
        duration_ms: the draft-level ``d`` when present.
        meta: ``m`` (``title``, ``width``, ``height`` ...), empty when absent.
        raw: the draft exactly as received; render submits send this.

    Example:
        >>> d = parse_draft({"t": [{"tt": 0, "sg": [{"d": 5000}]}]})
        >>> d.is_exportable, d.total_ms
        (True, 5000.0)
    """

    tracks: tuple[Track, ...] = ()
    duration_ms: float | None = None
    meta: Mapping[str, Any] = attrs.field(factory=dict)
    raw: Mapping[str, Any] = attrs.field(factory=dict, repr=False, eq=False)

    @property
    def is_exportable(self) -> bool:
        """
        ``True`` when at least one track has a non-empty ``sg`` (the render pre-check, §2.3 #8).

        Example:
            >>> parse_draft({"t": [{"tt": 0, "sg": []}]}).is_exportable
            False
        """
        return any(track.segments for track in self.tracks)

    @property
    def total_ms(self) -> float:
        """
        The draft ``d``, else the end of the longest track, in milliseconds.

        Example:
            >>> parse_draft({"t": [{"sg": [{"d": 1000}, {"d": 1500}]}]}).total_ms
            2500.0
        """
        if self.duration_ms is not None:
            return self.duration_ms
        ends = [_layout(track)[-1][1] for track in self.tracks if track.segments]
        return max(ends, default=0.0)

    @property
    def fingerprint(self) -> str:
        """
        :func:`draft_fingerprint` of :attr:`raw`.

        Example:
            >>> parse_draft({"t": []}).fingerprint == draft_fingerprint({"t": []})
            True
        """
        return draft_fingerprint(self.raw)


def parse_draft(value: object, *, path: str = "$") -> Draft:
    """
    Parse a draft object leniently; documented keys are type-checked.

    Args:
        value: the ``draft`` JSON value (``None`` gives an empty draft).
        path: the JSON path of ``value``, used in error messages.

    Raises:
        DecodeError: ``t``/``sg`` is not a list of objects, ``tt`` not an
            integer, ``d`` not a number or ``m`` not an object; ``path`` says where.

    Example:
        >>> parse_draft({"t": [{"tt": 0, "sg": [{"d": 2500, "title": "Intro"}]}]}).tracks[0]
        Track(track_type=0, segments=(Segment(duration_ms=2500.0, start_ms=None, label='Intro'),))
        >>> parse_draft({"t": {"tt": 0}})
        Traceback (most recent call last):
        ...
        aivideo_async.DecodeError: [nemovideo]: expected a list of tracks, got dict (at $.t)
    """
    if value is None:
        return Draft()
    if not isinstance(value, Mapping):
        raise _fail(path, "an object", value)
    raw_tracks = value.get("t")
    tracks: list[Track] = []
    if raw_tracks is not None:
        if not isinstance(raw_tracks, list):
            raise _fail(f"{path}.t", "a list of tracks", raw_tracks)
        for i, raw_track in enumerate(raw_tracks):
            tracks.append(_parse_track(raw_track, f"{path}.t[{i}]"))
    meta = value.get("m")
    if meta is not None and not isinstance(meta, Mapping):
        raise _fail(f"{path}.m", "an object", meta)
    return Draft(
        tracks=tuple(tracks),
        duration_ms=_number(value.get("d"), f"{path}.d"),
        meta=dict(meta or {}),
        raw=dict(value),
    )


def _parse_track(value: object, path: str) -> Track:
    if not isinstance(value, Mapping):
        raise _fail(path, "a track object", value)
    tt = value.get("tt")
    if tt is not None and (isinstance(tt, bool) or not isinstance(tt, int)):
        raise _fail(f"{path}.tt", "an integer track type", tt)
    raw_segments = value.get("sg")
    segments: list[Segment] = []
    if raw_segments is not None:
        if not isinstance(raw_segments, list):
            raise _fail(f"{path}.sg", "a list of segments", raw_segments)
        for i, raw_segment in enumerate(raw_segments):
            segments.append(_parse_segment(raw_segment, f"{path}.sg[{i}]"))
    return Track(track_type=tt, segments=tuple(segments), raw=dict(value))


def _parse_segment(value: object, path: str) -> Segment:
    if not isinstance(value, Mapping):
        raise _fail(path, "a segment object", value)
    start: float | None = None
    for key in _START_KEYS:
        candidate = value.get(key)
        if isinstance(candidate, int | float) and not isinstance(candidate, bool):
            start = float(candidate)
            break
    label: str | None = None
    for key in _LABEL_KEYS:
        candidate = value.get(key)
        if isinstance(candidate, str) and candidate.strip():
            label = candidate.strip()
            break
    return Segment(
        duration_ms=_number(value.get("d"), f"{path}.d"),
        start_ms=start,
        label=label,
        raw=dict(value),
    )


def draft_fingerprint(draft: Mapping[str, Any] | Draft | None) -> str:
    """
    A stable digest of a draft: equal drafts give equal fingerprints whatever
    their key order. Used to tell whether a session's state changed.

    Example:
        >>> draft_fingerprint({"t": [], "d": 1}) == draft_fingerprint({"d": 1, "t": []})
        True
        >>> len(draft_fingerprint(None))
        64
    """
    if isinstance(draft, Draft):
        draft = draft.raw
    canonical = json.dumps(draft, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def _layout(track: Track) -> list[tuple[float, float]]:
    # Segments without an explicit start follow the previous one (clips of a
    # track play in sequence); a missing duration counts as 0.
    spans: list[tuple[float, float]] = []
    cursor = 0.0
    for segment in track.segments:
        start = segment.start_ms if segment.start_ms is not None else cursor
        end = start + (segment.duration_ms or 0.0)
        spans.append((start, end))
        cursor = end
    return spans


def _seconds(ms: float) -> str:
    seconds = ms / 1000.0
    if seconds == int(seconds):
        return str(int(seconds))
    return f"{seconds:.1f}".rstrip("0").rstrip(".")


def timeline_summary(draft: Draft | Mapping[str, Any] | None) -> str:
    """
    A readable, line-per-segment summary of a draft's timeline.

    The first line names the draft (title, length, size, track count); then one
    line per segment, ``<Kind>: <label> (<start>-<end>s)``.

    Example:
        >>> print(timeline_summary({
        ...     "m": {"title": "Sunset", "width": 1920, "height": 1080},
        ...     "t": [{"tt": 0, "sg": [{"d": 5000, "title": "Sunset timelapse"}, {"d": 5000}]},
        ...           {"tt": 1, "sg": [{"d": 10000}]},
        ...           {"tt": 7, "sg": [{"d": 2500, "text": "Golden hour"}]}]}))
        Draft 'Sunset': 10s, 1920x1080, 3 tracks
        Video: Sunset timelapse (0-5s)
        Video: clip 2 (5-10s)
        Audio: clip 1 (0-10s)
        Text: Golden hour (0-2.5s)
        >>> timeline_summary(None)
        'Empty draft: no tracks'
    """
    if not isinstance(draft, Draft):
        draft = parse_draft(draft)
    if not draft.tracks:
        return "Empty draft: no tracks"
    head = "Draft"
    title = draft.meta.get("title")
    if isinstance(title, str) and title:
        head += f" {title!r}"
    facts = [f"{_seconds(draft.total_ms)}s"]
    width, height = draft.meta.get("width"), draft.meta.get("height")
    if isinstance(width, int) and isinstance(height, int):
        facts.append(f"{width}x{height}")
    count = len(draft.tracks)
    facts.append(f"{count} track" + ("" if count == 1 else "s"))
    lines = [f"{head}: {', '.join(facts)}"]
    for track in draft.tracks:
        if not track.segments:
            lines.append(f"{track.kind}: (empty)")
            continue
        for i, (segment, (start, end)) in enumerate(
            zip(track.segments, _layout(track), strict=True), start=1
        ):
            # One line per segment, whatever the label holds (newlines, controls).
            label = (
                " ".join(
                    "".join(
                        c if c.isprintable() and not c.isspace() else " "
                        for c in segment.label or ""
                    ).split()
                )
                or f"clip {i}"
            )
            if len(label) > 60:
                label = label[:57] + "..."
            lines.append(f"{track.kind}: {label} ({_seconds(start)}-{_seconds(end)}s)")
    return "\n".join(lines)
