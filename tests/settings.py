"""Settings of the test suite.

Default mode: SQLite + fakeredis (runs anywhere). Live mode: `DATABASE_URL` (e.g.
postgres://postgres@127.0.0.1:5432/test) and `REDIS_URL` (redis://127.0.0.1:6379/15).
"""
import importlib.util
import os

import dj_database_url
import django

from jwt_sessions.testing import redis_cache

SECRET_KEY = "tests-secret-key-" + "x" * 48
DEBUG = False
USE_TZ = True
TIME_ZONE = "UTC"
ALLOWED_HOSTS = ["testserver", "localhost", "127.0.0.1"]
ROOT_URLCONF = "tests.urls"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
STATIC_URL = "/static/"

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "jwt_sessions",
]
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]
TEMPLATES = [{
    "BACKEND": "django.template.backends.django.DjangoTemplates",
    "APP_DIRS": True,
    "OPTIONS": {"context_processors": [
        "django.template.context_processors.request",
        "django.contrib.auth.context_processors.auth",
        "django.contrib.messages.context_processors.messages",
    ]},
}]

LIVE = bool(os.environ.get("REDIS_URL") or os.environ.get("DATABASE_URL"))
_sqlite = os.path.join(os.environ.get("TMPDIR", "/tmp"), f"jwt-sessions-tests-{os.getpid()}.db")
DATABASES = {"default": dj_database_url.parse(
    os.environ.get("DATABASE_URL") or f"sqlite:///{_sqlite}")}
if DATABASES["default"]["ENGINE"].endswith("postgresql"):
    # One test database per run: parallel runs on one server never collide.
    DATABASES["default"]["TEST"] = {"NAME": f"test_jwts_{os.getpid()}"}
elif DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    # A file (not :memory:) so that threads in the concurrency tests share it.
    DATABASES["default"]["TEST"] = {"NAME": _sqlite + ".test"}
    # IMMEDIATE: a transaction that reads then writes (revocation) waits for the write
    # lock instead of failing with "database is locked" when threads race (Django 5.1+).
    DATABASES["default"]["OPTIONS"] = {"timeout": 30}
    if django.VERSION >= (5, 1):
        DATABASES["default"]["OPTIONS"]["transaction_mode"] = "IMMEDIATE"
CACHES = {"default": redis_cache(os.environ.get("REDIS_URL"))}

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["jwt_sessions.authentication.JWTSessionAuthentication"],
}
JWT_SESSIONS = {"BCRYPT_ROUNDS": 4}

# django-allauth (the optional `allauth` extra), when installed: its headless API on the
# jwt_sessions token strategy. The suite also runs without it (those tests then skip).
ALLAUTH = importlib.util.find_spec("allauth") is not None
if ALLAUTH:
    INSTALLED_APPS += ["allauth", "allauth.account", "allauth.mfa", "allauth.headless"]
    MIDDLEWARE += ["allauth.account.middleware.AccountMiddleware"]
    HEADLESS_ONLY = True
    HEADLESS_TOKEN_STRATEGY = "jwt_sessions.allauth.TokenStrategy"
    HEADLESS_FRONTEND_URLS = {
        "account_confirm_email": "/account/verify-email/{key}",
        "account_reset_password_from_key": "/account/password/reset/key/{key}",
        "account_signup": "/account/signup",
    }
    ACCOUNT_LOGIN_METHODS = {"username"}
    ACCOUNT_SIGNUP_FIELDS = ["username*", "email", "password1*"]
    ACCOUNT_EMAIL_VERIFICATION = "none"
    ACCOUNT_LOGIN_BY_CODE_ENABLED = True
    ACCOUNT_RATE_LIMITS = False
    ACCOUNT_REAUTHENTICATION_METHODS = ("password", "mfa")
    MFA_SUPPORTED_TYPES = ["totp", "webauthn", "recovery_codes"]
    MFA_PASSKEY_LOGIN_ENABLED = True
    MFA_WEBAUTHN_ALLOW_INSECURE_ORIGIN = True
