"""Signals other code can hook into; each is sent after the transaction commits.

- `session_created(sender=Session, session, request)`: a login (or `api.issue_tokens`).
- `session_refreshed(sender=Session, session_id, user_id, request)`: a token refresh.
- `session_revoked(sender=Session, session, reason)`: one per revoked session.
- `refresh_token_reused(sender=Session, session_id, user_id, request)`: a superseded
  refresh token came back: the session has been revoked (theft is likely).
- `new_device_login(sender=Session, user, session, novelty, request)`: a login from a
  device, country or network none of the user's recent sessions used; `novelty` lists
  what was new (`"device"`, `"country"`, `"network"`).
"""
from django.dispatch import Signal

session_created = Signal()
session_refreshed = Signal()
session_revoked = Signal()
refresh_token_reused = Signal()
new_device_login = Signal()
