"""A real ``redis-server`` on a free loopback port, for tests that need Redis.

The Debian package's binary is started with persistence off and its files in a temporary
directory.  Fixtures (import them, or register this module in ``pytest_plugins``):

- ``redis_url``: the URL of one server shared by the whole session, every database
  emptied before the test;
- ``redis_server``: that server (a :class:`RedisServer`).

Tests that need a server of their own (to stop it, or a second one) use
``with start_redis(directory) as url`` or :func:`launch_redis`.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis

from tests.support.polling import TimedOut, poll
from tests.support.ports import free_port
from tests.support.processes import log_tail, stop


@dataclass
class RedisServer:
    """A running redis-server started by :func:`launch_redis`."""

    port: int
    directory: Path
    process: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def client(self) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=5)

    def stop(self) -> None:
        """Terminate the server and wait for it (SIGKILL after 5 s)."""
        stop(self.process, 5)


def launch_redis(directory: Path, *extra: str, port: int | None = None,
                 timeout: float = 10.0) -> RedisServer:
    """Start redis-server with its files in ``directory``; return once it answers PING.

    ``extra`` are further ``--option value`` arguments.  A port taken between choosing
    and binding is retried with another one, unless ``port`` was given.
    """
    binary = shutil.which("redis-server")
    if binary is None:
        raise RuntimeError("redis-server is not installed (Debian package redis-server)")
    directory.mkdir(parents=True, exist_ok=True)
    for _attempt in range(1 if port is not None else 5):
        chosen = port or free_port()
        log = directory / f"redis-{chosen}.log"
        process = subprocess.Popen(
            [binary, "--port", str(chosen), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(directory), "--logfile", str(log), *extra],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        server = RedisServer(chosen, directory, process)

        def answered(server: RedisServer = server) -> bool | None:
            """True once it answers, False if it exited (a taken port), else None."""
            if server.process.poll() is not None:
                return False
            client = server.client()
            try:
                return True if client.ping() else None
            except redis.AuthenticationError:
                return True  # it answered: it wants a password (--requirepass)
            except redis.ConnectionError:
                return None
            finally:
                client.close()

        try:
            if poll(answered, f"redis-server on port {chosen}", timeout, interval=0.02):
                return server
        except TimedOut:
            pass
        server.stop()
        if "Address already in use" not in log_tail(log):
            raise RuntimeError(f"redis-server on port {chosen} did not start:\n{log_tail(log)}")
    raise RuntimeError("redis-server found no free port")


@contextmanager
def start_redis(directory: Path, *extra: str) -> Iterator[str]:
    """A redis-server of its own for the ``with`` block; yields its URL."""
    server = launch_redis(directory, *extra)
    try:
        yield server.url
    finally:
        server.stop()


_shared: RedisServer | None = None


def _shared_server(request: pytest.FixtureRequest,
                   factory: pytest.TempPathFactory) -> RedisServer:
    """The session's server, started on first use and stopped when the run ends.

    Kept here rather than in a session fixture so that importing ``redis_url`` alone is
    enough; a test that killed it gets a new one.
    """
    global _shared
    if _shared is None or _shared.process.poll() is not None:
        _shared = launch_redis(factory.mktemp("redis"))
        request.config.add_cleanup(_shared.stop)
    return _shared


@pytest.fixture
def redis_server(request: pytest.FixtureRequest,
                 tmp_path_factory: pytest.TempPathFactory) -> RedisServer:
    """The redis-server shared by the session (not emptied: use redis_url for that)."""
    return _shared_server(request, tmp_path_factory)


@pytest.fixture
def redis_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> str:
    """The URL of the session's redis-server, every database emptied first."""
    server = _shared_server(request, tmp_path_factory)
    client = server.client()
    try:
        client.flushall()
    finally:
        client.close()
    return server.url
