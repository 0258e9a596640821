"""Shared helpers for the introspection and revocation tests: form posts, a gateway
account, and a revocation made by another process."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlencode

from django.contrib.auth.models import Permission
from django.db import connection

from tests.conftest import bearer, next_ip, url

ROOT = Path(__file__).resolve().parent.parent
FORM = "application/x-www-form-urlencoded"


def post_form(api, name: str, fields: dict, **extra):
    extra.setdefault("REMOTE_ADDR", next_ip())
    return api.client.post(url(name), data=urlencode(fields), content_type=FORM, **extra)


def introspect(api, token: str, caller_access: str, **fields):
    return post_form(api, "introspect", {"token": token, **fields}, **bearer(caller_access))


def grant_introspection(user) -> None:
    user.user_permissions.add(Permission.objects.get(
        codename="introspect_session", content_type__app_label="jwt_sessions"))


def database_url() -> str:
    """The test database of this run, as a URL another process can open."""
    conf = connection.settings_dict
    if conf["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{conf['NAME']}"
    auth = conf["USER"] + (f":{conf['PASSWORD']}" if conf["PASSWORD"] else "")
    return f"postgres://{auth}@{conf['HOST']}:{conf['PORT'] or 5432}/{conf['NAME']}"


def revoke_in_another_process(session_id: str, redis_url: str) -> None:
    """`api.revoke_session` run by a separate Python process on the same database and
    Redis: nothing of it passes through this process's memory."""
    code = ("import sys, django; django.setup(); from jwt_sessions import api; "
            "sys.exit(0 if api.revoke_session(sys.argv[1]) else 1)")
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings",
           "DATABASE_URL": database_url(), "REDIS_URL": redis_url}
    subprocess.run([sys.executable, "-c", code, session_id], cwd=ROOT, env=env, check=True,
                   timeout=60)
