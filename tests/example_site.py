"""The example project as the README starts it (migrate, createdemo, runserver), on a free
loopback port with a database of its own; stopped by its pid. Used by the browser tests and
by the docs' shell blocks that talk to http://127.0.0.1:8000."""
from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

from tests.polling import eventually

ROOT = Path(__file__).resolve().parent.parent
STARTUP_SECONDS = 60


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def manage(env: dict, *args: str) -> None:
    subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, check=True,
                   timeout=120)


def wait_until_serving(process: subprocess.Popen, base: str, timeout: float, what: str,
                       interval: float, exited: Callable[[], str]) -> None:
    """Wait until the server `process` answers `base/login/`; fail with `exited()` if it
    has stopped instead."""
    def serving() -> bool:
        if process.poll() is not None:
            raise RuntimeError(exited())
        try:
            urllib.request.urlopen(f"{base}/login/", timeout=2).close()
        except OSError:
            return False
        return True

    eventually(serving, timeout, what, interval)


@contextlib.contextmanager
def example_site(db_dir: Path, **extra_env: str) -> Iterator[str]:
    """The README's commands: migrate, createdemo, runserver (SQLite + embedded Redis)."""
    env = {key: value for key, value in os.environ.items()
           if key not in ("REDIS_URL", "DATABASE_URL", "DJANGO_SETTINGS_MODULE")}
    env.update(DJANGO_SETTINGS_MODULE="example_project.settings", DEBUG="1",
               EXAMPLE_DB=str(db_dir / "db.sqlite3"), **extra_env)
    manage(env, "migrate", "-v0")
    manage(env, "createdemo")
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "manage.py", "runserver", "--noreload", f"127.0.0.1:{port}"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_serving(server, base, STARTUP_SECONDS, "the example project to serve", 0.2,
                           lambda: "the example project exited")
        yield base
    finally:
        server.terminate()
        server.wait(timeout=10)
