"""The Secret type never shows its value by accident (RELIABILITY #39)."""

from __future__ import annotations

import copy
import logging
import pickle
import traceback

import cattrs
import pytest

from aivideo_async import MissingCredential, Secret

VALUE = "sk-live-VERY-SECRET-123"


def test_repr_and_str_and_format_are_redacted() -> None:
    key = Secret(VALUE)
    for text in [repr(key), str(key), f"{key}", f"{key!r}", "%s" % key, [key].__repr__()]:
        assert VALUE not in text


def test_clear_value_is_explicit() -> None:
    assert Secret(VALUE).get_secret_value() == VALUE


def test_pickle_refused() -> None:
    with pytest.raises(TypeError):
        pickle.dumps(Secret(VALUE))
    with pytest.raises(TypeError):
        copy.copy(Secret(VALUE))


def test_cattrs_cannot_unstructure_it_in_clear() -> None:
    converter = cattrs.Converter()
    out = converter.unstructure({"key": Secret(VALUE)})
    assert VALUE not in repr(out)


def test_immutable() -> None:
    key = Secret(VALUE)
    with pytest.raises(AttributeError):
        key._value = "x"


def test_not_in_logs_or_tracebacks(caplog: pytest.LogCaptureFixture) -> None:
    key = Secret(VALUE)
    logging.getLogger("aivideo_async.test").warning("using %s / %r", key, key)
    try:
        raise RuntimeError(f"failed with {key}")
    except RuntimeError:
        text = traceback.format_exc()
    assert VALUE not in caplog.text
    assert VALUE not in text


def test_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIV_TEST_KEY", VALUE)
    assert Secret.from_env("AIV_TEST_KEY").get_secret_value() == VALUE


def test_from_env_missing_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AIV_TEST_MISSING", raising=False)
    with pytest.raises(MissingCredential) as info:
        Secret.from_env("AIV_TEST_MISSING")
    assert info.value.variable == "AIV_TEST_MISSING"
    assert "AIV_TEST_MISSING" in str(info.value)


def test_equality_without_exposure() -> None:
    assert Secret("a") == Secret("a")
    assert Secret("a") != Secret("b")
