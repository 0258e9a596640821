"""Over HTTP: the benchmark project under gunicorn on loopback, loaded by wrk."""
from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GUNICORN = Path(sys.executable).with_name("gunicorn")
UVICORN = Path(sys.executable).with_name("uvicorn")


@dataclass
class WrkResult:
    per_second: float
    p50_ms: float
    p99_ms: float
    errors: int
    requests: int = 0  # completed in the run


_pids: dict[str, int] = {}  # a running server's URL -> its main process


def server_cpu_seconds(url: str) -> float:
    """CPU time (user + system) used so far by the server at `url`, its workers
    included (Linux /proc): the server's own cost, whatever else shares the cores."""
    tick = os.sysconf("SC_CLK_TCK")
    pending, total = [_pids[url]], 0.0
    while pending:
        pid = pending.pop()
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            pending += map(int, Path(f"/proc/{pid}/task/{pid}/children").read_text().split())
        except (FileNotFoundError, ProcessLookupError):
            continue  # a worker that ended meanwhile
        total += (int(fields[11]) + int(fields[12])) / tick  # utime, stime
    return total


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def gunicorn(workers: int = 2):
    """A gunicorn of the benchmark site on a free loopback port; stopped by its pid."""
    with _server([str(GUNICORN), "benchmarks.site.wsgi:application", "-w", str(workers),
                  "--log-level", "warning", "--chdir", str(ROOT)],
                 lambda port: ["-b", f"127.0.0.1:{port}"], "gunicorn") as url:
        yield url


@contextmanager
def uvicorn(workers: int = 2):
    """uvicorn serving the benchmark site's ASGI application (HTTP and WebSockets)."""
    with _server([str(UVICORN), "benchmarks.site.asgi:application", "--workers",
                  str(workers), "--log-level", "warning", "--lifespan", "off",
                  "--no-access-log"],
                 lambda port: ["--host", "127.0.0.1", "--port", str(port)], "uvicorn") as url:
        yield url


@contextmanager
def _server(command: list[str], bind, name: str):
    """Run `command` bound (by `bind(port)`'s arguments) to a free loopback port until
    the block ends; stopped by its pid."""
    port = free_port()
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "benchmarks.site.settings"}
    proc = subprocess.Popen([*command, *bind(port)], cwd=ROOT, env=env)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.2)
        else:
            raise RuntimeError(f"{name} did not start")
        time.sleep(1)  # let every worker finish booting
        url = f"http://127.0.0.1:{port}"
        _pids[url] = proc.pid
        yield url
    finally:
        _pids.pop(f"http://127.0.0.1:{port}", None)
        proc.terminate()
        proc.wait(timeout=30)


def _ms(text: str) -> float:
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", text).groups()
    return float(value) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[unit]


def wrk(url: str, header: str, seconds: int, connections: int = 8,
        form: str | None = None) -> WrkResult:
    """Bounded load: one wrk thread, a few connections, a fixed duration; with `form`
    (an urlencoded body) each request is a form POST."""
    command = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", "-H", header]
    with tempfile.NamedTemporaryFile("w", suffix=".lua") as script:
        if form is not None:
            script.write(_post_script(form))
            script.flush()
            command += ["-s", script.name]
        out = subprocess.run(command + [url], capture_output=True, text=True, check=True,
                             timeout=seconds + 30).stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p50 = _ms(re.search(r"\s50%\s+(\S+)", out).group(1))
    p99 = _ms(re.search(r"\s99%\s+(\S+)", out).group(1))
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    socket_errors = re.search(r"Socket errors: (.*)", out)
    if socket_errors:
        print(f"  wrk socket errors on {url}: {socket_errors.group(1)}", file=sys.stderr)
    return WrkResult(rate, p50, p99, int(errors.group(1)) if errors else 0,
                     int(re.search(r"(\d+) requests in", out).group(1)))


def _post_script(form: str) -> str:
    return (f'wrk.method = "POST"\nwrk.body = "{form}"\n'
            'wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"\n')


def available(server: Path = GUNICORN) -> bool:
    return shutil.which("wrk") is not None and server.exists()
