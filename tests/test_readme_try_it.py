"""The README's "Try it", pasted into a fresh clone: a new virtualenv, the example's
dependencies, migrate, createdemo, runserver; then the demo account signs in. CI runs it
(JWT_SESSIONS_FRESH_CLONE=1): it installs from the package index, which takes a minute.
Only the address changes (a free port instead of 8000, which a running demo may hold).
"""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from tests.example_site import free_port, wait_until_serving

if os.environ.get("JWT_SESSIONS_FRESH_CLONE") != "1":
    pytest.skip("fresh-clone test: set JWT_SESSIONS_FRESH_CLONE=1", allow_module_level=True)

ROOT = Path(__file__).resolve().parent.parent
START_SECONDS = 600


def try_it_command() -> str:
    """The first sh block of the README's "Try it" section."""
    section = (ROOT / "README.md").read_text().split("## Try it", 1)[1]
    block = re.search(r"^```sh\n(.*?)^```$", section, re.S | re.M)
    assert block
    return block.group(1).strip()


def newcomers_env() -> dict[str, str]:
    """A shell without this suite's virtualenv or settings."""
    venv_bin = str(Path(sys.executable).parent)
    env = {key: value for key, value in os.environ.items()
           if key not in ("DJANGO_SETTINGS_MODULE", "REDIS_URL", "DATABASE_URL", "VIRTUAL_ENV")}
    env["PATH"] = os.pathsep.join(part for part in env["PATH"].split(os.pathsep)
                                  if part != venv_bin)
    return env


def sign_in(base: str) -> dict:
    request = urllib.request.Request(
        f"{base}/auth/login/", data=json.dumps({"username": "alice", "password": "alice"})
        .encode(), headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.load(response)


def test_try_it_works_as_pasted_in_a_fresh_clone(tmp_path):
    clone = tmp_path / "jwt_sessions"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True, timeout=120)
    port = free_port()
    command = try_it_command()
    assert command.endswith("manage.py runserver")
    log = (tmp_path / "try-it.log").open("wb")
    process = subprocess.Popen(["bash", "-c", f"{command} 127.0.0.1:{port}"], cwd=clone,
                               env=newcomers_env(), stdout=log, stderr=subprocess.STDOUT,
                               start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_serving(process, base, START_SECONDS, "the demo to serve", 1,
                           lambda: (tmp_path / "try-it.log").read_text()[-3000:])
        assert sign_in(base)["access"].startswith("eyJ")
    finally:
        os.killpg(process.pid, signal.SIGTERM)  # the group this test started
        process.wait(timeout=30)
