"""Real Redis processes for fault tests: servers, a cluster, a sentinel and a TCP proxy.

    server = start_redis()                # own redis-server on a free loopback port
    proxy = TcpProxy(server.port)         # clients connect to proxy.url
    proxy.cut(); proxy.restore()          # a network cut: Redis keeps its data
    proxy.latency = 0.3                   # a slow network
    server.stop(); server.start()         # a restart (empty: nothing is persisted)

Every server runs with `--save "" --appendonly no` in its own temporary directory and is
stopped by pid. `point_cache_at(settings, url)` aims Django's cache (and so jwt_sessions)
at a URL without letting django-redis reuse a pool from another test.
"""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterable
from typing import Any

import pytest

from jwt_sessions.testing import redis_cache
from tests.polling import eventually

START_TIMEOUT = 10.0


def require_redis_server() -> str:
    """The redis-server binary; skip without it, but fail in CI (JWT_SESSIONS_CI=1)."""
    binary = shutil.which("redis-server")
    if binary is None:
        message = "redis-server is not installed (apt-get install redis-server)"
        if os.environ.get("JWT_SESSIONS_CI"):
            pytest.fail(message)
        pytest.skip(message)
    return binary


def free_port(with_cluster_bus: bool = False) -> int:
    """A loopback port free right now (and, for cluster nodes, port + 10000 too)."""
    for _ in range(100):
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        if not with_cluster_bus:
            return port
        if port + 10000 < 65536 and _is_free(port + 10000):
            return port
    raise RuntimeError("no free loopback port found")


def _is_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


class RedisServer:
    """One redis-server process owned by the test; stop() ends it by pid."""

    def __init__(self, port: int | None = None, extra_args: Iterable[str] = ()) -> None:
        self.binary = require_redis_server()
        self.port = port or free_port()
        self.extra_args = list(extra_args)
        self.dir = tempfile.mkdtemp(prefix=f"jwts-redis-{self.port}-")
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def client(self, **kwargs: Any):
        """A direct redis-py client (not through any proxy), for inspecting the data."""
        import redis

        return redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=5, **kwargs)

    def start(self) -> RedisServer:
        args = [self.binary, "--port", str(self.port), "--bind", "127.0.0.1",
                "--save", "", "--appendonly", "no", "--dir", self.dir, *self.extra_args]
        self.process = subprocess.Popen(args, stdout=subprocess.DEVNULL,
                                        stderr=subprocess.DEVNULL, cwd=self.dir)
        eventually(self._answers, START_TIMEOUT, f"redis-server on port {self.port}", 0.02)
        return self

    def _answers(self) -> bool:
        if self.process is not None and self.process.poll() is not None:
            raise RuntimeError(f"redis-server on port {self.port} exited "
                               f"({self.process.returncode})")
        try:
            with self.client(socket_connect_timeout=0.2) as conn:
                return bool(conn.ping())
        except Exception:
            return False

    def stop(self) -> None:
        """Stop this server (by its pid); its data is gone, as nothing is persisted."""
        if self.process is None:
            return
        self.process.terminate()
        try:
            self.process.wait(5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)
        self.process = None

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


def start_redis(port: int | None = None, extra_args: Iterable[str] = ()) -> RedisServer:
    """Start a redis-server on a free loopback port (or `port`); `.stop()` ends it."""
    return RedisServer(port, extra_args).start()


# ------------------------------------------------------------------ a TCP proxy
class TcpProxy:
    """Forwards a loopback port to a Redis port; cuts, restores and slows the link.

    cut("refuse"): live connections are closed and new ones refused (a firewall reject).
    cut("blackhole"): connections stay open or are accepted, but nothing gets through,
    so clients wait for their timeouts (a dropped link). Either way Redis keeps its data.
    `latency` (seconds) delays every chunk sent towards Redis.
    """

    def __init__(self, target_port: int, port: int | None = None) -> None:
        self.target_port = target_port
        self.port = port or free_port()
        self.latency = 0.0
        self.mode: str | None = None
        self.dropped = 0  # chunks swallowed while blackholed
        self._lock = threading.Lock()
        self._sockets: set[socket.socket] = set()
        self._listener: socket.socket | None = None
        self._listen()

    def url(self, db: int = 0) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    def _listen(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # listener closed
            self._track(client)
            if self.mode == "blackhole":
                threading.Thread(target=self._pump, args=(client, None), daemon=True).start()
                continue
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target_port), timeout=5)
                upstream.settimeout(None)
            except OSError:
                self._close(client)
                continue
            self._track(upstream)
            threading.Thread(target=self._pump, args=(client, upstream, True),
                             daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client), daemon=True).start()

    def _pump(self, source: socket.socket, dest: socket.socket | None,
              towards_redis: bool = False) -> None:
        try:
            while True:
                chunk = source.recv(65536)
                if not chunk:
                    break
                if self.mode == "blackhole" or dest is None:
                    self.dropped += 1
                    continue
                if towards_redis and self.latency:
                    time.sleep(self.latency)
                dest.sendall(chunk)
        except OSError:
            pass
        finally:
            self._close(source)
            if dest is not None:
                self._close(dest)

    def _track(self, sock: socket.socket) -> None:
        with self._lock:
            self._sockets.add(sock)

    def _close(self, sock: socket.socket) -> None:
        with self._lock:
            self._sockets.discard(sock)
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        sock.close()

    def _drop_connections(self) -> None:
        with self._lock:
            sockets = list(self._sockets)
        for sock in sockets:
            self._close(sock)

    def cut(self, mode: str = "refuse") -> None:
        """Break the link; Redis itself keeps running with all its keys."""
        if mode not in ("refuse", "blackhole"):
            raise ValueError(mode)
        self.mode = mode
        if mode == "refuse":
            self._stop_listening()
            self._drop_connections()

    def restore(self) -> None:
        """Let traffic through again (connections made during a blackhole are dropped)."""
        was = self.mode
        self.mode = None
        if was == "blackhole":
            self._drop_connections()
        if self._listener is None:
            self._listen()

    def _stop_listening(self) -> None:
        if self._listener is not None:
            try:  # shutdown wakes the thread blocked in accept(); close alone does not
                self._listener.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            self._listener.close()
            self._listener = None

    def close(self) -> None:
        self._stop_listening()
        self._drop_connections()


# ------------------------------------------------------------------ cluster and sentinel
class RedisClusterNodes:
    """A Redis Cluster of `masters` primaries and no replicas, on free loopback ports."""

    def __init__(self, masters: int = 3) -> None:
        self.nodes = [RedisServer(free_port(with_cluster_bus=True), [
            "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
            "--cluster-node-timeout", "5000"]) for _ in range(masters)]

    @property
    def url(self) -> str:
        return self.nodes[0].url

    def start(self) -> RedisClusterNodes:
        for node in self.nodes:
            node.start()
        addresses = [f"127.0.0.1:{node.port}" for node in self.nodes]
        subprocess.run([_redis_cli(), "--cluster", "create", *addresses,
                        "--cluster-replicas", "0", "--cluster-yes"],
                       check=True, capture_output=True, timeout=60)
        eventually(self._ready, START_TIMEOUT, "the cluster to be ready", 0.02)
        return self

    def _ready(self) -> bool:
        for node in self.nodes:
            with node.client() as conn:
                info = conn.execute_command("CLUSTER", "INFO")
                text = info.decode() if isinstance(info, bytes) else info
                if "cluster_state:ok" not in text:
                    return False
        return True

    def close(self) -> None:
        for node in self.nodes:
            node.close()


def _redis_cli() -> str:
    require_redis_server()
    binary = shutil.which("redis-cli")
    if binary is None:
        pytest.fail("redis-cli is missing although redis-server is installed")
    return binary


def start_cluster(masters: int = 3) -> RedisClusterNodes:
    """Start `masters` cluster-enabled servers and join them (`redis-cli --cluster create`)."""
    return RedisClusterNodes(masters).start()


class SentinelServer(RedisServer):
    """A redis-server in sentinel mode watching one master under `name`."""

    def __init__(self, master: RedisServer, name: str = "mymaster") -> None:
        super().__init__()
        self.name = name
        config = os.path.join(self.dir, "sentinel.conf")
        with open(config, "w") as handle:
            handle.write(f"sentinel monitor {name} 127.0.0.1 {master.port} 1\n"
                         f"sentinel down-after-milliseconds {name} 1000\n"
                         f"sentinel failover-timeout {name} 5000\n")
        self.config = config

    def start(self) -> SentinelServer:
        args = [self.binary, self.config, "--sentinel", "--port", str(self.port),
                "--bind", "127.0.0.1", "--dir", self.dir]
        self.process = subprocess.Popen(args, stdout=subprocess.DEVNULL,
                                        stderr=subprocess.DEVNULL, cwd=self.dir)
        eventually(self._answers, START_TIMEOUT, f"redis sentinel on port {self.port}", 0.02)
        return self


def start_sentinel(master: RedisServer, name: str = "mymaster") -> SentinelServer:
    """Start a sentinel (quorum 1) monitoring `master` as `name`."""
    return SentinelServer(master, name).start()


# ------------------------------------------------------------------ Django's cache
def forget_redis_pools() -> None:
    """Disconnect and drop django-redis's process-global pools (and cluster clients)."""
    from django_redis.pool import ConnectionFactory

    from jwt_sessions.cluster import ClusterConnectionFactory

    for pool in list(ConnectionFactory._pools.values()):
        pool.disconnect()
    ConnectionFactory._pools.clear()
    ClusterConnectionFactory.forget_clients()


def point_cache_at(settings: Any, url: str, timeout: float = 0.5,
                   **options: Any) -> None:
    """Aim the default cache at `url` for one test (pytest-django `settings` restores it)."""
    forget_redis_pools()
    cache = redis_cache(url, timeout=timeout)
    cache["OPTIONS"].update(options)
    settings.CACHES = {"default": cache}
