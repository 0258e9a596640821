"""Settings of the example project: works with nothing else running.

SQLite in the project folder, and an embedded Redis stand-in (fakeredis) unless
`REDIS_URL` is set (e.g. REDIS_URL=redis://127.0.0.1:6379/0 for a real Redis).
"""
import importlib.util
import os
from datetime import timedelta
from pathlib import Path

from jwt_sessions.testing import redis_cache

BASE_DIR = Path(__file__).resolve().parent.parent
SECRET_KEY = os.environ.get("SECRET_KEY", "example-project-insecure-key-" + "k" * 40)
DEBUG = os.environ.get("DEBUG", "1") == "1"
ALLOWED_HOSTS = ["localhost", "127.0.0.1", "[::1]", "testserver"]
ROOT_URLCONF = "example_project.urls"
WSGI_APPLICATION = "example_project.wsgi.application"
ASGI_APPLICATION = "example_project.asgi.application"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
USE_TZ = True
TIME_ZONE = "UTC"
STATIC_URL = "/static/"

INSTALLED_APPS = [
    "daphne",  # runserver serves ASGI (asgi.py): HTTP and the devices page's WebSocket
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "jwt_sessions",
    "example_project",
]
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
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
DATABASES = {"default": {
    "ENGINE": "django.db.backends.sqlite3",
    "NAME": os.environ.get("EXAMPLE_DB", BASE_DIR / "example.sqlite3"),
}}
CACHES = {"default": redis_cache(os.environ.get("REDIS_URL"))}

# The four lines of the install (see the README), plus the optional settings.
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["jwt_sessions.authentication.JWTSessionAuthentication"],
    # Optional: DRF's own errors on our views (no credentials, 404...) carry a `code` too.
    "EXCEPTION_HANDLER": "jwt_sessions.exceptions.exception_handler",
}
# The refresh token lives in an HttpOnly cookie scoped to /auth/ (never readable by
# JavaScript); the pages keep the short-lived access token through jwt_sessions/client.js.
JWT_SESSIONS = {"BCRYPT_ROUNDS": 10, "REFRESH_COOKIE": {}}
# EXAMPLE_ACCESS_SECONDS=5: watch access tokens expire and renew (the browser tests do).
if os.environ.get("EXAMPLE_ACCESS_SECONDS"):
    _access = timedelta(seconds=int(os.environ["EXAMPLE_ACCESS_SECONDS"]))
    JWT_SESSIONS.update(ACCESS_TOKEN_LIFETIME=_access,
                        REFRESH_REUSE_GRACE=min(_access, timedelta(seconds=10)))

# django-allauth's headless API (signup, passkeys) on jwt_sessions sessions, when the
# `allauth` extra is installed (the `example` extra brings it): the /passkey/ page.
ALLAUTH = importlib.util.find_spec("allauth") is not None
if ALLAUTH:
    INSTALLED_APPS += ["allauth", "allauth.account", "allauth.mfa", "allauth.headless"]
    MIDDLEWARE += ["allauth.account.middleware.AccountMiddleware"]
    HEADLESS_ONLY = True
    HEADLESS_CLIENTS = ("app",)  # the page keeps the pair in memory, as a native app would
    HEADLESS_TOKEN_STRATEGY = "jwt_sessions.allauth.TokenStrategy"
    HEADLESS_FRONTEND_URLS = {
        "account_confirm_email": "/passkey/?verify={key}",
        "account_reset_password_from_key": "/passkey/?reset={key}",
        "account_signup": "/passkey/",
    }
    ACCOUNT_LOGIN_METHODS = {"username"}
    ACCOUNT_SIGNUP_FIELDS = ["username*", "password1*"]
    ACCOUNT_EMAIL_VERIFICATION = "none"
    ACCOUNT_REAUTHENTICATION_METHODS = ("password", "mfa")
    MFA_SUPPORTED_TYPES = ["totp", "webauthn", "recovery_codes"]
    MFA_PASSKEY_LOGIN_ENABLED = True
    # WebAuthn wants https; http://localhost is a secure context for the browser, and
    # allauth accepts its origin only when told to (never in production).
    MFA_WEBAUTHN_ALLOW_INSECURE_ORIGIN = DEBUG
