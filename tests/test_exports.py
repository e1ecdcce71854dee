"""The public namespace: ``__all__`` is exactly what the package exports (STYLE #2)."""

from __future__ import annotations

import importlib
import pkgutil

import aivideo_async


def test_all_is_sorted_and_unique() -> None:
    assert sorted(aivideo_async.__all__, key=str) == sorted(set(aivideo_async.__all__), key=str)
    assert len(aivideo_async.__all__) == len(set(aivideo_async.__all__))


def test_every_name_in_all_exists() -> None:
    for name in aivideo_async.__all__:
        assert hasattr(aivideo_async, name), name


def test_no_public_name_missing_from_all() -> None:
    public = {
        name
        for name, value in vars(aivideo_async).items()
        if not name.startswith("_") and not isinstance(value, type(aivideo_async))
    }
    assert public - {"annotations"} <= set(aivideo_async.__all__)


def test_public_classes_claim_the_package_module() -> None:
    for name in aivideo_async.__all__:
        obj = getattr(aivideo_async, name)
        if isinstance(obj, type):
            assert obj.__module__ == "aivideo_async", name


def test_every_public_name_has_a_docstring_with_an_example() -> None:
    missing = []
    for name in aivideo_async.__all__:
        obj = getattr(aivideo_async, name)
        if not (isinstance(obj, type) or callable(obj)):
            continue
        doc = obj.__doc__ or ""
        if ">>>" not in doc and "Example" not in doc:
            missing.append(name)
    assert missing == []


def test_all_private_modules_import() -> None:
    for info in pkgutil.walk_packages(aivideo_async.__path__, "aivideo_async."):
        if info.name.endswith("__main__"):
            continue
        importlib.import_module(info.name)
