"""System checks of `JWT_SESSIONS["DPOP"]`: a bad value fails at start-up, not on the
first proof. Ids E040-E044 (docs/checks.md)."""
from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core import checks

from ..conf import as_timedelta
from .settings import DEFAULTS, DURATIONS, SUPPORTED_ALGORITHMS


def _error(msg: str, hint: str, number: int) -> checks.Error:
    return checks.Error(msg, hint=hint, id=f"jwt_sessions.E{number:03d}")


@checks.register(checks.Tags.security)
def check_dpop(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    raw = (getattr(settings, "JWT_SESSIONS", None) or {})
    value = raw.get("DPOP", {}) if isinstance(raw, dict) else {}
    if not isinstance(value, dict):
        return [_error("JWT_SESSIONS['DPOP'] must be a dict.",
                       'For example {"REQUIRED": True}; {} (the default) honours proofs '
                       "when clients send them.", 40)]
    return [*_unknown_keys(value), *_flags(value), *_algorithms(value), *_durations(value)]


def _unknown_keys(value: dict) -> Iterator[checks.Error]:
    for key in sorted(set(value) - set(DEFAULTS)):
        yield _error(f"Unknown JWT_SESSIONS['DPOP'] key {key!r}.",
                     f"Use one of: {', '.join(sorted(DEFAULTS))}.", 41)


def _flags(value: dict) -> Iterator[checks.Error]:
    for key in ("REQUIRED", "NONCE"):
        if not isinstance(value.get(key, False), bool):
            yield _error(f"JWT_SESSIONS['DPOP'][{key!r}] must be True or False.",
                         "Give a bool.", 42)


def _algorithms(value: dict) -> Iterator[checks.Error]:
    algorithms = value.get("ALGORITHMS", DEFAULTS["ALGORITHMS"])
    if (isinstance(algorithms, str) or not isinstance(algorithms, (list, tuple))
            or not algorithms or not set(algorithms) <= SUPPORTED_ALGORITHMS):
        yield _error("JWT_SESSIONS['DPOP']['ALGORITHMS'] must be a non-empty list of "
                     "asymmetric JWS algorithms.",
                     f"Choose among: {', '.join(sorted(SUPPORTED_ALGORITHMS))}.", 43)


def _durations(value: dict) -> Iterator[checks.Error]:
    for key in DURATIONS:
        duration = as_timedelta(value.get(key, DEFAULTS[key]))
        if not isinstance(duration, timedelta) or duration <= timedelta(0):
            yield _error(f"JWT_SESSIONS['DPOP'][{key!r}] must be a positive timedelta "
                         "(or seconds).", "For example timedelta(seconds=60).", 44)
