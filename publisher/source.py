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

import hiredis
import redis
import redis.cluster
import redis.exceptions

log = logging.getLogger(__name__)

# Keyspace events we need: K (keyspace channel), g (DEL, EXPIRE, RENAME...), h (hash
# commands), x (expired), e (evicted).  'A' is an alias for every class but K/E/m/n.
NEEDED_EVENTS = "Kghxe"

Hash = dict[bytes, bytes]
# One HGETALL reply as hiredis gives it: {field: value} (RESP3, redis-py's default),
# [field, value, field, value...] (RESP2), or the error a key of another type gets.
RawReply = dict[bytes, bytes] | list[bytes] | hiredis.ReplyError
_RECV_SIZE = 1 << 16


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

    def raw_capable(self) -> bool:
        """Whether :meth:`scan_fetch` can read this source: one server, not a cluster."""
        return not self.cluster and len(self.urls) == 1

    def scan_fetch(self, count: int = 1000) -> Iterator[tuple[list[bytes], list[RawReply]]]:
        """Batches of (keys under the prefix, their HGETALL replies) from the one server.

        The full pass's fast read: SCAN and pipelined HGETALLs written as RESP bytes on
        one connection and parsed by hiredis, with no per-command objects.  Before a
        batch is handed over, the next batch's HGETALLs (and the SCAN after them) are
        already sent, so Redis answers them while the caller judges this one.  Only for
        :meth:`raw_capable` sources; a key of another type gets a ``hiredis.ReplyError``.
        """
        pattern = (_glob_escape(self.prefix) + "*").encode()
        scan_tail = [b"MATCH", pattern, b"COUNT", str(count).encode()]
        pool = self.clients()[0].connection_pool
        conn: Any = None
        done = False
        try:
            conn = pool.get_connection()
            conn.connect()
            sock = conn._get_socket()  # redis-py did the handshake (TLS, AUTH, SELECT)
            reader = hiredis.Reader()

            def read(n: int) -> list[Any]:
                replies: list[Any] = []
                append = replies.append
                gets = reader.gets
                while len(replies) < n:
                    item = gets()
                    if item is False:
                        data = sock.recv(_RECV_SIZE)
                        if not data:
                            raise ConnectionError("connection closed by the server")
                        reader.feed(data)
                        continue
                    append(item)
                return replies

            def scan_reply() -> tuple[bytes, list[bytes]]:
                reply = read(1)[0]
                if (not isinstance(reply, list) or len(reply) != 2
                        or not isinstance(reply[0], bytes) or not isinstance(reply[1], list)):
                    raise SourceError(f"{self.describe()}: SCAN failed: {reply!r:.200}")
                return reply[0], reply[1]

            # Replies are read in the order the commands were sent: anything of another
            # shape than expected (a push message, say) stops the pass rather than
            # shifting every reply onto the wrong key.
            hash_type = dict if str(conn.protocol) == "3" else list
            sock.sendall(_command(b"SCAN", b"0", *scan_tail))
            cursor, keys = scan_reply()
            while True:
                out = [b"*2\r\n$7\r\nHGETALL\r\n$%d\r\n%s\r\n" % (len(k), k) for k in keys]
                if cursor != b"0":
                    out.append(_command(b"SCAN", cursor, *scan_tail))
                sock.sendall(b"".join(out))
                replies = read(len(keys))
                for key, reply in zip(keys, replies, strict=True):
                    if type(reply) is not hash_type:
                        self._check_reply(key, reply, hash_type)
                if cursor == b"0":
                    done = True
                    yield keys, replies
                    return
                batch = keys
                cursor, keys = scan_reply()
                yield batch, replies
        except (redis.exceptions.RedisError, OSError, hiredis.ProtocolError) as exc:
            done = False
            self.close()
            raise SourceError(f"{self.describe()}: scan failed: {exc}") from exc
        finally:
            if conn is not None:
                if not done:
                    conn.disconnect()  # replies may still be on their way
                pool.release(conn)

    def _check_reply(self, key: bytes, reply: object, hash_type: type) -> None:
        """Let WRONGTYPE through (the caller skips that key); stop on anything else."""
        if isinstance(reply, hiredis.ReplyError):
            if str(reply).startswith("WRONGTYPE"):
                return
            raise SourceError(f"{self.describe()}: {key!r}: {reply}")
        raise SourceError(f"{self.describe()}: {key!r}: expected a hash reply "
                          f"({hash_type.__name__}), got {reply!r:.200}")

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


def _command(*parts: bytes) -> bytes:
    """One command in RESP: an array of bulk strings."""
    return b"*%d\r\n" % len(parts) + b"".join(b"$%d\r\n%s\r\n" % (len(p), p) for p in parts)


def _redact(url: str) -> str:
    if "@" not in url:
        return url
    scheme, _, rest = url.partition("://")
    return f"{scheme}://***@{rest.rsplit('@', 1)[1]}"
