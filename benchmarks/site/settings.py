"""Settings of the benchmark project: four auth schemes plus a floor, one database, one Redis.

Environment: `BENCH_REDIS_URL` (default redis://127.0.0.1:6379/5), `BENCH_DATABASE_URL`
(default a SQLite file in $TMPDIR; postgres://... with `run.py --postgres`).
"""
import os
from datetime import timedelta

import dj_database_url

from jwt_sessions.testing import redis_cache

SECRET_KEY = "benchmark-secret-key-" + "x" * 48
DEBUG = False
USE_TZ = True
TIME_ZONE = "UTC"
ALLOWED_HOSTS = ["testserver", "localhost", "127.0.0.1"]
ROOT_URLCONF = "benchmarks.site.urls"
WSGI_APPLICATION = "benchmarks.site.wsgi.application"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "rest_framework",
    "rest_framework_simplejwt",
    "rest_framework_simplejwt.token_blacklist",
    "knox",
    "jwt_sessions",
]
# The stack a typical project runs: every scheme pays for the same middleware.
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]

REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/5")
# A port nobody listens on: "Redis is dead" for the failure-policy figures.
DEAD_REDIS_URL = os.environ.get("BENCH_DEAD_REDIS_URL", "redis://127.0.0.1:1/0")
CACHES = {"default": redis_cache(REDIS_URL), "dead": redis_cache(DEAD_REDIS_URL)}

_sqlite = os.path.join(os.environ.get("TMPDIR", "/tmp"), "jwt-sessions-bench.sqlite3")
DATABASES = {"default": dj_database_url.parse(
    os.environ.get("BENCH_DATABASE_URL") or f"sqlite:///{_sqlite}")}
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    DATABASES["default"]["OPTIONS"] = {"timeout": 30}

# Password hashing is the same work for every scheme: a fast hasher keeps it out of the
# figures (jwt_sessions' own bcrypt of the session secret stays at its default cost).
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["jwt_sessions.authentication.JWTSessionAuthentication"],
    # simplejwt and knox have no throttles by default: measure jwt_sessions without its own.
    "DEFAULT_THROTTLE_RATES": {"jwt_sessions_login": None, "jwt_sessions_login_user": None,
                               "jwt_sessions_refresh": None, "jwt_sessions_introspect": None},
}
JWT_SESSIONS = {"ACCESS_TOKEN_LIFETIME": timedelta(minutes=15)}
SIMPLE_JWT = {
    "ACCESS_TOKEN_LIFETIME": timedelta(minutes=15),
    "ROTATE_REFRESH_TOKENS": True,
    "BLACKLIST_AFTER_ROTATION": True,
    "UPDATE_LAST_LOGIN": False,
}
REST_KNOX = {"TOKEN_TTL": timedelta(hours=10), "AUTO_REFRESH": False}

LOGGING = {"version": 1, "disable_existing_loggers": False,
           "loggers": {"jwt_sessions": {"level": "ERROR"}}}
