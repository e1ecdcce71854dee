"""The exception tree: context on every error, no secret or query string in messages."""

from __future__ import annotations

import pickle

import aivideo_async as av
from aivideo_async import _exceptions


def test_tree_in_docstring_names_every_class() -> None:
    doc = _exceptions.__doc__ or ""
    for name in _exceptions.__all__:
        assert name in doc, name


def test_every_class_says_when_it_is_raised() -> None:
    for name in _exceptions.__all__:
        cls = getattr(_exceptions, name)
        assert "Raised when" in (cls.__doc__ or ""), name


def test_request_sent_classification() -> None:
    assert av.ConnectError("x").request_sent is False
    assert av.PoolTimeout("x").request_sent is False
    assert av.TLSError("x").request_sent is False
    for cls in (av.ReadTimeout, av.TotalTimeout, av.RemoteDisconnected, av.StreamIdleTimeout):
        assert cls("x").request_sent is True


def test_context_in_message() -> None:
    err = av.InsufficientCredits(
        "Insufficient credits",
        provider="nemovideo",
        status_code=200,
        body_code=2001,
        endpoint="POST /api/render/proxy/lambda",
    )
    assert str(err) == (
        "[nemovideo] POST /api/render/proxy/lambda -> HTTP 200 code 2001: Insufficient credits"
    )
    assert isinstance(err, av.APIStatusError)


def test_errors_pickle_with_their_context() -> None:
    err = av.RateLimited("slow", retry_after=3.0, provider="aivideomaker", endpoint="GET /x")
    clone = pickle.loads(pickle.dumps(err))
    assert type(clone) is av.RateLimited
    assert clone.retry_after == 3.0
    assert str(clone) == str(err)


def test_invalid_input_is_a_value_error_naming_everything() -> None:
    err = av.InvalidInput(field="duration", value="7", expected="one of '5', '10'")
    assert isinstance(err, ValueError)
    assert str(err) == "duration: got '7', expected one of '5', '10'"


def test_decode_error_mentions_path() -> None:
    assert "$.data.status" in str(av.DecodeError("expected str", path="$.data.status"))
