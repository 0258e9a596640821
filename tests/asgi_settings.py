"""Settings of the ASGI server process the WebSocket tests start (uvicorn): the test
suite's settings, aimed at the test process's database and Redis, with the example
project's WebSocket and the ninja test API."""
import json
import os

import dj_database_url

from jwt_sessions.testing import redis_cache
from tests.settings import *  # noqa: F403

DATABASES = {"default": dj_database_url.parse(os.environ["JWTS_SERVER_DATABASE_URL"])}
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    DATABASES["default"]["OPTIONS"] = {"timeout": 30}
CACHES = {"default": redis_cache(os.environ["JWTS_SERVER_REDIS_URL"])}
ROOT_URLCONF = "tests.ninja_urls"
# A test's own JWT_SESSIONS keys (JSON; durations in seconds).
JWT_SESSIONS = {**JWT_SESSIONS, **json.loads(os.environ.get("JWTS_SERVER_JWT_SESSIONS", "{}"))}  # noqa: F405
LOGGING = {"version": 1, "disable_existing_loggers": False,
           "handlers": {"console": {"class": "logging.StreamHandler"}},
           "root": {"handlers": ["console"], "level": "WARNING"}}
