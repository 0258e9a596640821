"""A real ASGI server process (uvicorn) serving tests/asgi_app.py on a free loopback port,
sharing the test process's database and a redis-server of its own; stopped by its pid."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tests.polling import eventually

ROOT = Path(__file__).resolve().parent.parent
START_TIMEOUT = 30.0


def database_url(settings_dict: dict[str, Any]) -> str:
    """The URL of the database the test process uses (its test database)."""
    if settings_dict["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{settings_dict['NAME']}"
    user = settings_dict.get("USER") or "postgres"
    password = f":{settings_dict['PASSWORD']}" if settings_dict.get("PASSWORD") else ""
    host = settings_dict.get("HOST") or "127.0.0.1"
    port = settings_dict.get("PORT") or 5432
    return f"postgres://{user}{password}@{host}:{port}/{settings_dict['NAME']}"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class AsgiServer:
    def __init__(self, port: int, log: Path, process: subprocess.Popen) -> None:
        self.port, self.log, self.process = port, log, process

    @property
    def ws(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


@contextmanager
def uvicorn_server(database: str, redis_url: str, log_dir: Path,
                   app: str = "tests.asgi_app:application", workers: int = 1,
                   port: int | None = None, env: dict[str, str] | None = None):
    """uvicorn on 127.0.0.1:<port, else a free one>; yields an AsgiServer, then stops it
    by pid. `env` adds to the server's environment (e.g. another settings module)."""
    port = port or free_port()
    log = log_dir / f"uvicorn-{port}.log"
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.asgi_settings",
           "JWTS_SERVER_DATABASE_URL": database, "JWTS_SERVER_REDIS_URL": redis_url,
           "PYTHONPATH": str(ROOT), **(env or {})}
    with open(log, "ab") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", app, "--host", "127.0.0.1", "--port", str(port),
             "--lifespan", "off", "--log-level", "info", "--workers", str(workers)],
            cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        def listening() -> bool:
            if process.poll() is not None:
                raise RuntimeError(f"uvicorn exited: {log.read_text()[-2000:]}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            except OSError:
                return False
            return True

        eventually(listening, START_TIMEOUT, "uvicorn to listen", 0.1)
        yield AsgiServer(port, log, process)
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


@contextmanager
def serving_the_test_database(redis_url: str, django_db_blocker: Any, log_dir: Path,
                              env: dict[str, str] | None = None) -> Iterator[AsgiServer]:
    """`uvicorn_server` on the test process's own database and `redis_url`; the test
    process's pools are dropped after it (its Redis goes with the module)."""
    from django.db import connection

    from tests.redis_servers import forget_redis_pools

    with django_db_blocker.unblock():
        url = database_url(connection.settings_dict)
    with uvicorn_server(url, redis_url, log_dir, env=env) as running:
        yield running
    forget_redis_pools()
