"""Reading reputation hashes from one or more Redis servers, or a Redis Cluster.

A source is a set of Redis URLs (TLS and passwords as redis-py reads them from a URL:
``rediss://:secret@host:6380/0``) and a key prefix.  Full syncs SCAN every server with
MATCH on the prefix and read hashes in pipelines; continuous syncs subscribe to
keyspace notifications.  The same token may live on several servers (sharded or
migrated scanners): :meth:`RedisSource.fetch` returns every server's hash of a key so
the caller can merge them.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import redis
import redis.cluster
import redis.exceptions

log = logging.getLogger(__name__)

# Keyspace events we need: K (keyspace channel), g (DEL, EXPIRE, RENAME...), h (hash
# commands), x (expired), e (evicted).  'A' is an alias for every class but K/E/m/n.
NEEDED_EVENTS = "Kghxe"

Hash = dict[bytes, bytes]


class SourceError(Exception):
    """Redis is unreachable or answered with an error we cannot work around."""


@dataclass
class Fetched:
    """One key as every server holds it: one hash per server ({} where absent)."""

    key: bytes
    per_server: list[Hash]
    wrong_type: bool = False

    @property
    def hashes(self) -> list[Hash]:
        """The servers' hashes that exist."""
        return [h for h in self.per_server if h]


def _glob_escape(text: str) -> str:
    """Escape Redis glob characters so a prefix matches literally."""
    return "".join("\\" + c if c in "*?[]\\" else c for c in text)


class RedisSource:
    """Connections to the servers of one source; reconnects lazily after failures."""

    def __init__(self, urls: Sequence[str], prefix: str, *, cluster: bool = False,
                 timeout: float = 10.0) -> None:
        self.urls = tuple(urls)
        self.prefix = prefix
        self.prefix_bytes = prefix.encode()
        self.cluster = cluster
        self.timeout = timeout
        self._clients: list[Any] | None = None

    # -- connections -------------------------------------------------------------
    def clients(self) -> list[Any]:
        """One client per server (one cluster client for a cluster)."""
        if self._clients is None:
            kwargs = {"socket_timeout": self.timeout, "socket_connect_timeout": self.timeout}
            if self.cluster:
                self._clients = [redis.cluster.RedisCluster.from_url(self.urls[0], **kwargs)]
            else:
                self._clients = [redis.Redis.from_url(url, **kwargs) for url in self.urls]
        return self._clients

    def close(self) -> None:
        for client in self._clients or []:
            try:
                client.close()
            except Exception:  # noqa: BLE001 - closing a broken connection may fail too
                pass
        self._clients = None

    def ping(self) -> None:
        """Raise SourceError unless every server answers."""
        try:
            for client in self.clients():
                client.ping()
        except (redis.exceptions.RedisError, OSError) as exc:
            self.close()
            raise SourceError(f"{self.describe()}: {exc}") from exc

    def describe(self) -> str:
        """The servers, without passwords, for log lines."""
        return ", ".join(_redact(url) for url in self.urls)

    # -- reading -----------------------------------------------------------------
    def scan(self, count: int = 1000) -> Iterator[list[bytes]]:
        """Batches of keys under the prefix, each key once even if several servers have it."""
        pattern = _glob_escape(self.prefix) + "*"
        multi = len(self.clients()) > 1
        seen: set[bytes] = set()
        try:
            for client in self.clients():
                batch: list[bytes] = []
                for key in client.scan_iter(match=pattern, count=count):
                    if multi:
                        if key in seen:
                            continue
                        seen.add(key)
                    batch.append(key)
                    if len(batch) >= count:
                        yield batch
                        batch = []
                if batch:
                    yield batch
        except (redis.exceptions.RedisError, OSError) as exc:
            self.close()
            raise SourceError(f"{self.describe()}: scan failed: {exc}") from exc

    def fetch(self, keys: Sequence[bytes]) -> list[Fetched]:
        """Every server's hash of each key, read with one pipeline per server."""
        results = [Fetched(key, []) for key in keys]
        try:
            for client in self.clients():
                pipe = client.pipeline(transaction=False)
                for key in keys:
                    pipe.hgetall(key)
                for item, value in zip(results, pipe.execute(raise_on_error=False), strict=True):
                    if isinstance(value, redis.exceptions.ResponseError):
                        if "WRONGTYPE" in str(value):
                            item.wrong_type = True
                            item.per_server.append({})
                            continue
                        raise SourceError(f"{self.describe()}: {item.key!r}: {value}")
                    item.per_server.append(value or {})
        except (redis.exceptions.RedisError, OSError) as exc:
            self.close()
            raise SourceError(f"{self.describe()}: read failed: {exc}") from exc
        return results

    # -- notifications -----------------------------------------------------------
    def subscribe(self) -> list[Any]:
        """Keyspace-notification subscriptions covering every server (or cluster primary).

        Enables the notification classes we need where CONFIG allows it, keeping the
        classes already set; where it does not, a warning says that only the periodic
        reconciliation will see changes.
        """
        subscriptions = []
        try:
            for client, db in self._notification_targets():
                self._enable_events(client)
                pubsub = client.pubsub(ignore_subscribe_messages=True)
                pubsub.psubscribe(f"__keyspace@{db}__:{_glob_escape(self.prefix)}*")
                subscriptions.append(pubsub)
        except (redis.exceptions.RedisError, OSError) as exc:
            for pubsub in subscriptions:
                pubsub.close()
            self.close()
            raise SourceError(f"{self.describe()}: subscribe failed: {exc}") from exc
        return subscriptions

    def _notification_targets(self) -> list[tuple[Any, int]]:
        if self.cluster:
            cluster = self.clients()[0]
            return [
                (redis.Redis(host=node.host, port=node.port, socket_timeout=self.timeout,
                             **_auth(cluster)), 0)
                for node in cluster.get_primaries()
            ]
        return [(client, int(client.connection_pool.connection_kwargs.get("db", 0)))
                for client in self.clients()]

    def _enable_events(self, client: Any) -> None:
        try:
            current = client.config_get("notify-keyspace-events").get(
                "notify-keyspace-events", "")
        except redis.exceptions.ResponseError as exc:
            log.warning("%s: cannot read notify-keyspace-events (%s); changes will be seen "
                        "by the periodic reconciliation only", self.describe(), exc)
            return
        if isinstance(current, bytes):
            current = current.decode()
        flags = set(current.replace("A", "g$lshzxetd"))
        missing = [c for c in NEEDED_EVENTS if c not in flags]
        if not missing:
            return
        wanted = current + "".join(missing)
        try:
            client.config_set("notify-keyspace-events", wanted)
            log.info("%s: notify-keyspace-events set to %r", self.describe(), wanted)
        except redis.exceptions.ResponseError as exc:
            log.warning("%s: cannot enable keyspace notifications (%s); changes will be seen "
                        "by the periodic reconciliation only", self.describe(), exc)


def _auth(cluster: Any) -> dict[str, Any]:
    """Username and password of a cluster client, for the per-node subscribers."""
    kwargs = cluster.get_default_node().redis_connection.connection_pool.connection_kwargs
    return {k: kwargs[k] for k in ("username", "password") if kwargs.get(k)}


def _redact(url: str) -> str:
    if "@" not in url:
        return url
    scheme, _, rest = url.partition("://")
    return f"{scheme}://***@{rest.rsplit('@', 1)[1]}"
