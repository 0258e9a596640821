"""Settings of a Shared Signals peer process (a receiver server, or a transmitter's
`sendsecurityevents`): the ASGI server's settings plus SHARED_SIGNALS from the
environment (JSON in JWTS_SHARED_SIGNALS)."""
import json
import os

from tests.asgi_settings import *  # noqa: F403

JWT_SESSIONS = {**JWT_SESSIONS,  # noqa: F405
                "SHARED_SIGNALS": json.loads(os.environ["JWTS_SHARED_SIGNALS"])}
