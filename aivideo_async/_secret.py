"""
:class:`Secret`: a credential that never shows itself by accident.
"""

from __future__ import annotations

import os
from typing import Any, NoReturn

from ._exceptions import MissingCredential

__all__ = ["Secret"]


class Secret:
    """
    A credential (API key, bearer token) with a redacted ``repr``/``str``.

    The clear value is only available through :meth:`get_secret_value`. A
    ``Secret`` cannot be pickled, copied into JSON by cattrs (no unstructure
    hook is registered, and ``__getstate__`` refuses), or formatted into a
    message (RELIABILITY #39).

    Example:
        >>> key = Secret("sk-live-123")
        >>> key
        Secret('**********')
        >>> str(key)
        '**********'
        >>> key.get_secret_value()
        'sk-live-123'
    """

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        if not isinstance(value, str):
            raise TypeError(f"Secret value must be a str, got {type(value).__name__}")
        object.__setattr__(self, "_value", value)

    @classmethod
    def from_env(cls, name: str) -> Secret:
        """
        Read a secret from the environment variable ``name``.

        Raises:
            MissingCredential: the variable is unset or empty; the message names it.

        Example:
            >>> import os
            >>> os.environ["DEMO_KEY"] = "abc"
            >>> Secret.from_env("DEMO_KEY")
            Secret('**********')
        """
        value = os.environ.get(name, "")
        if not value:
            raise MissingCredential(
                f"environment variable {name} is not set; export {name}=<your key> "
                f"or pass the key explicitly",
                variable=name,
            )
        return cls(value)

    def get_secret_value(self) -> str:
        """Return the clear value. Only the session layer should call this."""
        value: str = object.__getattribute__(self, "_value")
        return value

    def __repr__(self) -> str:
        return "Secret('**********')"

    def __str__(self) -> str:
        return "**********"

    def __format__(self, format_spec: str) -> str:
        return "**********"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Secret):
            return NotImplemented
        return self.get_secret_value() == other.get_secret_value()

    def __hash__(self) -> int:
        return hash(("Secret", self.get_secret_value()))

    def __len__(self) -> int:
        return len(self.get_secret_value())

    def __setattr__(self, name: str, value: Any) -> NoReturn:
        raise AttributeError("Secret is immutable")

    def __getstate__(self) -> NoReturn:
        raise TypeError("a Secret cannot be pickled; pass it again after unpickling")

    def __reduce__(self) -> NoReturn:
        raise TypeError("a Secret cannot be pickled; pass it again after unpickling")
