"""A real three-node Redis Cluster on loopback, for the tests that need one."""

from __future__ import annotations

import random
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
import redis.cluster

from tests.support.polling import TimedOut, until
from tests.support.processes import stop


def _cluster_port() -> int:
    """A free port whose cluster bus port (port + 10000, at most 65535) is free too."""
    for _ in range(200):
        port = random.randrange(20000, 45000)
        if all(_free(p) for p in (port, port + 10000)):
            return port
    raise RuntimeError("no free port pair for a cluster node")


def _free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _wait_ping(port: int, deadline: float) -> None:
    client = redis.Redis(port=port, socket_timeout=1)

    def pong() -> bool:
        try:
            return bool(client.ping())
        except redis.exceptions.ConnectionError:
            return False

    try:
        until(pong, f"redis-server on port {port}", deadline - time.monotonic())
    except TimedOut:
        raise RuntimeError(f"redis-server on port {port} did not start") from None
    finally:
        client.close()


@pytest.fixture(scope="module")
def redis_cluster_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``redis://127.0.0.1:PORT/0`` of one node of a fresh three-node cluster."""
    server = shutil.which("redis-server")
    cli = shutil.which("redis-cli")
    if server is None or cli is None:
        pytest.fail("redis-server and redis-cli are required (Debian package redis-server)")
    base = tmp_path_factory.mktemp("cluster")
    ports: list[int] = []
    while len(ports) < 3:
        port = _cluster_port()
        if port not in ports and port + 10000 not in ports and port - 10000 not in ports:
            ports.append(port)
    processes = []
    try:
        for port in ports:
            node = Path(base / str(port))
            node.mkdir()
            processes.append(subprocess.Popen(
                [server, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                 "--appendonly", "no", "--cluster-enabled", "yes",
                 "--cluster-config-file", str(node / "nodes.conf"), "--dir", str(node)],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        deadline = time.monotonic() + 15
        for port in ports:
            _wait_ping(port, deadline)
        subprocess.run(
            [cli, "--cluster", "create", *[f"127.0.0.1:{p}" for p in ports],
             "--cluster-replicas", "0", "--cluster-yes"],
            check=True, capture_output=True, timeout=60)
        client = redis.cluster.RedisCluster(host="127.0.0.1", port=ports[0])
        while time.monotonic() < deadline + 30:
            try:
                if client.cluster_info().get("cluster_state") == "ok":
                    break
            except redis.exceptions.RedisError:
                pass
            time.sleep(0.1)
        client.close()
        yield f"redis://127.0.0.1:{ports[0]}/0"
    finally:
        for process in processes:
            stop(process)
