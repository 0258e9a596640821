"""How long things stay valid, as the settings decide: an access token, and the reach of
a revocation (which every tombstone and every replay after an outage must cover)."""
from __future__ import annotations

from datetime import timedelta

from .conf import jwt_settings

# Clocks of servers and in-flight requests: a revocation's reach outlives its access
# tokens by this much.
REVOCATION_MARGIN = timedelta(seconds=5)


def access_token_ttl() -> timedelta:
    """How long an access token can be accepted: its lifetime plus the clock leeway."""
    return jwt_settings.ACCESS_TOKEN_LIFETIME + jwt_settings.LEEWAY


def revocation_window() -> timedelta:
    """How long after a revocation one of its access tokens may still pass somewhere:
    both a tombstone's life and the window `replay_recent_revocations` covers."""
    return access_token_ttl() + REVOCATION_MARGIN
