"""One typed reader of settings from an environment mapping, for the hub, the portal and `ems`.

``Env`` wraps an explicit mapping (``os.environ`` in production, a dict in tests) and reads one
variable at a time, with its default and its bounds. A bad value stops start-up with a line that
names the variable, what it must be and what it got::

    HUB_BATCH_SIZE must be an integer ≥ 1, got 'abc'

An unset or empty variable means "use the default": compose files pass ``${X:-}`` through as
an empty string, and that must not differ from leaving ``X`` out.
"""

from __future__ import annotations

import builtins
import math
from collections.abc import Mapping
from pathlib import Path

# Values that mean "nobody chose a secret here" (copied from an example file unchanged).
PLACEHOLDERS = frozenset({"changeme", "change-me", "secret", "password", "jwt-secret"})
_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})


class SettingsError(ValueError):
    """A setting is missing or malformed; the message says which and why."""


def _bounds(ge: float | None, gt: float | None, le: float | None) -> str:
    low = f"≥ {ge:g}" if ge is not None else f"> {gt:g}" if gt is not None else ""
    if low and le is not None:
        if ge is not None:
            return f" between {ge:g} and {le:g}"
        return f" {low} and ≤ {le:g}"
    if le is not None:
        return f" ≤ {le:g}"
    return f" {low}" if low else ""


class Env:
    """Typed access to one environment; ``who`` names the program in a missing-secret error.

    The methods are named after the types they return (``env.int("X", 5)``), so inside this
    class the annotations spell the types ``builtins.int`` and so on.
    """

    def __init__(self, environ: Mapping[str, str], who: builtins.str = "the program") -> None:
        self._environ = environ
        self._who = who

    def _raw(self, name: builtins.str) -> builtins.str | None:
        raw = self._environ.get(name)
        return None if raw is None or raw == "" else raw

    def str(self, name: builtins.str, default: builtins.str) -> builtins.str:
        raw = self._raw(name)
        return default if raw is None else raw

    def path(self, name: builtins.str, default: builtins.str) -> Path:
        return Path(self.str(name, default))

    def bool(self, name: builtins.str, default: builtins.bool) -> builtins.bool:
        raw = self._raw(name)
        if raw is None:
            return default
        if raw.lower() in _TRUE:
            return True
        if raw.lower() in _FALSE:
            return False
        raise SettingsError(f"{name} must be true or false (1/0, yes/no, on/off), got {raw!r}")

    def int(
        self,
        name: builtins.str,
        default: builtins.int,
        *,
        ge: builtins.int | None = None,
        le: builtins.int | None = None,
    ) -> builtins.int:
        raw = self._raw(name)
        if raw is None:
            return default
        try:
            value = int(raw)
        except ValueError:
            value = None
        if value is None or (ge is not None and value < ge) or (le is not None and value > le):
            raise SettingsError(f"{name} must be an integer{_bounds(ge, None, le)}, got {raw!r}")
        return value

    def float(
        self,
        name: builtins.str,
        default: builtins.float,
        *,
        ge: builtins.float | None = None,
        gt: builtins.float | None = None,
        le: builtins.float | None = None,
    ) -> builtins.float:
        """A finite number: ``nan`` would slip past every bound, and no setting means ``inf``."""
        raw = self._raw(name)
        if raw is None:
            return default
        try:
            value = float(raw)
        except ValueError:
            value = math.nan
        if (
            not math.isfinite(value)
            or (ge is not None and value < ge)
            or (gt is not None and value <= gt)
            or (le is not None and value > le)
        ):
            raise SettingsError(f"{name} must be a number{_bounds(ge, gt, le)}, got {raw!r}")
        return value

    def secret(self, name: builtins.str, *, min_length: builtins.int = 1) -> builtins.str:
        """A value that must be set, and not to a placeholder: there is no safe default."""
        value = self._environ.get(name, "")
        if not value or value.lower() in PLACEHOLDERS:
            raise SettingsError(
                f"{name} must be set (and not to a placeholder) — {self._who} cannot start"
            )
        if len(value) < min_length:
            raise SettingsError(f"{name} must be at least {min_length} characters long")
        return value
