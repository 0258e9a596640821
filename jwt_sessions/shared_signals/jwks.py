"""The keys of the transmitters this deployment trusts: a JWKS given in the settings,
or fetched from its URL, kept for JWKS_CACHE_TTL and fetched again when a SET names a
`kid` not seen yet (the transmitter rotated its key), at most once every few seconds.

A fetch that fails (unreachable, an error status, a redirect, a document that is no
JWKS) is not tried again for a while, a back-off that doubles up to a minute: SETs,
forged ones too, never make us fetch once each. Meanwhile the keys fetched last still
count, however old; without them a SET is answered "try again later"."""
from __future__ import annotations

import json
import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import jwt

from . import settings as ssf
from .outbound import opener

logger = logging.getLogger("jwt_sessions")

# An unknown kid refetches at most this often, so forged kids cannot make us hammer
# the transmitter; it is also the first wait after a failed fetch.
_REFETCH_INTERVAL = 5.0
_MAX_RETRY_INTERVAL = 60.0
_MAX_JWKS_BYTES = 256 * 1024

Keys = dict[str | None, Any]  # PyJWKs by kid (None: a key without one)


class KeyUnavailable(Exception):
    """No key of this transmitter verifies the SET's header."""


class JwksUnavailable(Exception):
    """The transmitter's JWKS could not be fetched: try again later."""


@dataclass(frozen=True)
class _Known:
    """What one JWKS URL gave us, replaced whole so readers need no lock."""

    keys: Keys | None = None  # the keys fetched last; None before any fetch succeeded
    fresh_until: float = 0.0
    tried_at: float = float("-inf")  # the last fetch, whatever came of it
    backoff: float = 0.0  # 0 while the URL answers; else how long the last failure waits
    retry_at: float = 0.0

    def needs_fetch(self, kid: str | None, now: float) -> bool:
        if now < self.retry_at:
            return False  # the URL failed a moment ago
        if self.keys is None or now >= self.fresh_until:
            return True
        return _pick(self.keys, kid) is None and now - self.tried_at >= _REFETCH_INTERVAL

    def fetched(self, keys: Keys, now: float) -> _Known:
        ttl = ssf.setting("JWKS_CACHE_TTL").total_seconds()
        return _Known(keys, now + ttl, now)

    def failed(self, now: float) -> _Known:
        backoff = min(max(2 * self.backoff, _REFETCH_INTERVAL), _MAX_RETRY_INTERVAL)
        return _Known(self.keys, self.fresh_until, now, backoff, now + backoff)


@dataclass
class _Source:
    known: _Known = field(default_factory=_Known)
    fetching: threading.Lock = field(default_factory=threading.Lock)  # one fetch at a time


_sources: dict[str, _Source] = {}
_lock = threading.Lock()


def _parse(jwks: Any) -> Keys:
    """The usable keys of a JWKS. Members that are no key we can use (another key type,
    not an object, a `kid` that is not a string) are ignored, as RFC 7517 asks."""
    if not isinstance(jwks, dict) or not isinstance(jwks.get("keys"), list):
        raise KeyUnavailable("not a JWKS")
    keys: Keys = {}
    for entry in jwks["keys"]:
        if not (isinstance(entry, dict) and isinstance(entry.get("kid"), (str, type(None)))):
            continue  # no JWK, or a kid no header could name
        try:
            keys[entry.get("kid")] = jwt.PyJWK(entry)
        except (jwt.PyJWKError, jwt.InvalidKeyError, KeyError, TypeError, ValueError):
            continue  # a key type we cannot use; the others still count
    return keys


def _fetch(url: str) -> Keys:
    if not url.startswith(("https://", "http://")):
        raise JwksUnavailable("a JWKS URL is http(s)")
    timeout = ssf.setting("PUSH_TIMEOUT").total_seconds()
    try:
        with opener.open(url, timeout=timeout) as response:  # no redirect is followed
            return _parse(json.loads(response.read(_MAX_JWKS_BYTES)))
    except (OSError, ValueError, RecursionError, KeyUnavailable) as exc:
        raise JwksUnavailable(f"{type(exc).__name__}: {exc}"[:300]) from exc


def _pick(keys: Keys, kid: str | None) -> Any:
    """The key a SET header's `kid` names (the only key, for a header without one)."""
    if kid in keys:
        return keys[kid]
    if kid is None and len(keys) == 1:
        return next(iter(keys.values()))
    return None


def key_for(transmitter: dict[str, Any], kid: str | None) -> Any:
    """The transmitter's PyJWK for a SET header's `kid`."""
    source = transmitter.get("jwks")
    keys = _parse(source) if isinstance(source, dict) else _keys_from_url(str(source), kid)
    key = _pick(keys, kid)
    if key is None:
        raise KeyUnavailable("unknown kid")
    return key


def _keys_from_url(url: str, kid: str | None) -> Keys:
    with _lock:
        source = _sources.setdefault(url, _Source())
    if source.known.needs_fetch(kid, time.monotonic()):
        # Stale keys that have this kid serve at once while another request fetches;
        # without it, wait (as long as one fetch may take) rather than refuse a key that
        # fetch may bring.
        keys = source.known.keys
        has_kid = keys is not None and _pick(keys, kid) is not None
        wait = 0.0 if has_kid else ssf.setting("PUSH_TIMEOUT").total_seconds()
        if source.fetching.acquire(timeout=wait):
            try:
                _refresh(source, url, kid)
            finally:
                source.fetching.release()
    known = source.known
    if known.keys is None or (known.backoff and _pick(known.keys, kid) is None):
        raise JwksUnavailable(f"JWKS of {url} unavailable")  # a later retry may find it
    return known.keys


def _refresh(source: _Source, url: str, kid: str | None) -> None:
    """Fetch the JWKS, unless a request that held the lock before us just did."""
    now = time.monotonic()
    if not source.known.needs_fetch(kid, now):
        return
    try:
        source.known = source.known.fetched(_fetch(url), now)
    except JwksUnavailable as exc:
        source.known = source.known.failed(now)
        logger.warning("JWKS of %s not fetched (%s): next try in %.0f s", url, exc,
                       source.known.backoff)


def forget() -> None:
    """Drop every cached JWKS (tests; a transmitter known to have rotated)."""
    with _lock:
        _sources.clear()
