"""The keys of the transmitters this deployment trusts: a JWKS given in the settings,
or fetched from its URL, kept for JWKS_CACHE_TTL and fetched again when a SET names a
`kid` not seen yet (the transmitter rotated its key), at most once every few seconds."""
from __future__ import annotations

import json
import threading
import time
import urllib.request
from typing import Any

import jwt

from . import settings as ssf

# An unknown kid refetches at most this often, so forged kids cannot make us hammer
# the transmitter.
_REFETCH_INTERVAL = 5.0
_MAX_JWKS_BYTES = 256 * 1024


class KeyUnavailable(Exception):
    """No key of this transmitter verifies the SET's header."""


class JwksUnavailable(Exception):
    """The transmitter's JWKS could not be fetched: try again later."""


class _Cached:
    def __init__(self, keys: dict[str | None, Any], fetched_at: float) -> None:
        self.keys, self.fetched_at = keys, fetched_at


_cache: dict[str, _Cached] = {}
_lock = threading.Lock()


def _parse(jwks: Any) -> dict[str | None, Any]:
    if not isinstance(jwks, dict) or not isinstance(jwks.get("keys"), list):
        raise KeyUnavailable("not a JWKS")
    keys: dict[str | None, Any] = {}
    for entry in jwks["keys"]:
        try:
            key = jwt.PyJWK(entry)
        except (jwt.PyJWKError, jwt.InvalidKeyError, KeyError, TypeError, ValueError):
            continue  # a key type we cannot use; the others still count
        keys[entry.get("kid")] = key
    return keys


def _fetch(url: str) -> dict[str | None, Any]:
    if not url.startswith(("https://", "http://")):
        raise JwksUnavailable("a JWKS URL is http(s)")
    timeout = ssf.setting("PUSH_TIMEOUT").total_seconds()
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 (http(s) only)
            return _parse(json.loads(response.read(_MAX_JWKS_BYTES)))
    except (OSError, ValueError) as exc:
        raise JwksUnavailable(f"JWKS of {url} unavailable") from exc


def key_for(transmitter: dict[str, Any], kid: str | None) -> Any:
    """The transmitter's PyJWK for a SET header's `kid`."""
    source = transmitter.get("jwks")
    if isinstance(source, dict):
        keys = _parse(source)
    else:
        keys = _keys_from_url(str(source), kid)
    if kid in keys:
        return keys[kid]
    if kid is None and len(keys) == 1:
        return next(iter(keys.values()))
    raise KeyUnavailable("unknown kid")


def _keys_from_url(url: str, kid: str | None) -> dict[str | None, Any]:
    now = time.monotonic()
    with _lock:
        cached = _cache.get(url)
    fresh = cached is not None and now - cached.fetched_at < ssf.setting(
        "JWKS_CACHE_TTL").total_seconds()
    may_refetch = cached is None or now - cached.fetched_at >= _REFETCH_INTERVAL
    if cached is not None and fresh and (kid in cached.keys or not may_refetch):
        return cached.keys
    try:
        keys = _fetch(url)
    except JwksUnavailable:
        if cached is None:
            raise
        return cached.keys  # the transmitter's JWKS is down: its last keys still count
    with _lock:
        _cache[url] = _Cached(keys, now)
    return keys


def forget() -> None:
    """Drop every cached JWKS (tests; a transmitter known to have rotated)."""
    with _lock:
        _cache.clear()
