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

from publisher.errors import PublisherError
from zoned.sourceconf import redact

log = logging.getLogger(__name__)

# Keyspace events we need: K (keyspace channel), g (DEL, EXPIRE, RENAME...), h (hash
# commands), x (expired), e (evicted).  'A' is an alias for every class but K/E/m/n.
NEEDED_EVENTS = "Kghxe"

Hash = dict[bytes, bytes]
# Keys, each one's HMGET reply (its values of the fields asked for, None where absent)
# and HLEN reply; a key of another type gets hiredis.ReplyError in both.
Batch = tuple[list[bytes], list[Any], list[Any]]
_RECV_SIZE = 1 << 16
_LIST: frozenset[type] = frozenset({list})
_INT: frozenset[type] = frozenset({int})


class SourceError(PublisherError):
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
        return ", ".join(redact(url) for url in self.urls)

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

    def scan_fetch(self, fields: Sequence[bytes], count: int = 1000) -> Iterator[Batch]:
        """Batches of keys under the prefix with ``fields`` of each (HMGET) and its HLEN.

        The full pass's fast read, from the one server of a :meth:`raw_capable` source:
        SCAN, HMGET and HLEN written as RESP bytes on one connection and parsed by
        hiredis, with no per-command objects.  HMGET replies are lists in both RESP2
        and RESP3, far cheaper to parse than HGETALL's maps; HLEN tells whether the
        hash holds other fields too, in which case the caller reads it whole.  Before a
        batch is handed over, the next batch's commands (and the SCAN after them) are
        already sent, so Redis answers them while the caller judges this one.  A key of
        another type gets a ``hiredis.ReplyError`` (WRONGTYPE) in both places.
        """
        template = _fields_template(fields)
        with _Raw(self) as raw:
            raw.send(raw.scan_command(b"0", count))
            cursor, keys = raw.scan_reply()
            while True:
                out = [template % (len(k), k, len(k), k) for k in keys]
                if cursor != b"0":
                    out.append(raw.scan_command(cursor, count))
                raw.send(b"".join(out))
                values, lengths = self._fields_replies(raw, keys, len(fields))
                if cursor == b"0":
                    raw.done = True
                    yield keys, values, lengths
                    return
                batch = keys
                cursor, keys = raw.scan_reply()
                yield batch, values, lengths

    def scan_keys(self, count: int = 1000) -> Iterator[list[bytes]]:
        """Batches of keys under the prefix (SCAN in RESP bytes; :meth:`raw_capable` only)."""
        with _Raw(self) as raw:
            cursor = b"0"
            while True:
                raw.send(raw.scan_command(cursor, count))
                cursor, keys = raw.scan_reply()
                if cursor == b"0":
                    raw.done = True
                    yield keys
                    return
                yield keys

    def fetch_fields(self, keys: Sequence[bytes], fields: Sequence[bytes]
                     ) -> tuple[list[Any], list[Any]]:
        """HMGET ``fields`` and HLEN of each key, as :meth:`scan_fetch` gives them."""
        template = _fields_template(fields)
        with _Raw(self) as raw:
            raw.send(b"".join([template % (len(k), k, len(k), k) for k in keys]))
            replies = self._fields_replies(raw, keys, len(fields))
            raw.done = True
        return replies

    def _fields_replies(self, raw: _Raw, keys: Sequence[bytes], width: int
                        ) -> tuple[list[Any], list[Any]]:
        replies = raw.read(2 * len(keys))
        values, lengths = replies[0::2], replies[1::2]
        # Replies come in the order the commands went: one of another shape (a push
        # message, say) stops the pass rather than shifting every reply onto the
        # wrong key.
        if not (set(map(type, values)) <= _LIST and set(map(type, lengths)) <= _INT):
            self._check_replies(keys, values, lengths, width)
        return values, lengths

    def _check_replies(self, keys: Sequence[bytes], values: Sequence[object],
                       lengths: Sequence[object], width: int) -> None:
        """Let WRONGTYPE through (the caller reads that key again); stop on anything else."""
        for key, value, length in zip(keys, values, lengths, strict=True):
            for reply, good in ((value, isinstance(value, list) and len(value) == width),
                                (length, type(length) is int)):
                if good:
                    continue
                if isinstance(reply, hiredis.ReplyError):
                    if str(reply).startswith("WRONGTYPE"):
                        continue
                    raise SourceError(f"{self.describe()}: {key!r}: {reply}")
                raise SourceError(f"{self.describe()}: {key!r}: unexpected reply "
                                  f"{reply!r:.200}")

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


class _Raw:
    """One pooled connection of a one-server source, spoken to in RESP bytes.

    redis-py connects it (TLS, AUTH, SELECT); commands are written to its socket and
    replies parsed by hiredis.  Unless ``done`` is set, replies may still be on their
    way when it is left, so it is disconnected rather than reused.
    """

    def __init__(self, source: RedisSource) -> None:
        self.source = source
        self.pattern = (_glob_escape(source.prefix) + "*").encode()
        self.pool = source.clients()[0].connection_pool
        self.conn: Any = None
        self.done = False
        self.reader = hiredis.Reader()

    def __enter__(self) -> _Raw:
        try:
            self.conn = self.pool.get_connection()
            self.conn.connect()
        except (redis.exceptions.RedisError, OSError) as exc:
            self._failed(exc)
        self.sock = self.conn._get_socket()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: object) -> None:
        if self.conn is not None:
            if not self.done:
                self.conn.disconnect()
            self.pool.release(self.conn)
        if isinstance(exc, redis.exceptions.RedisError | OSError | hiredis.ProtocolError):
            self._failed(exc)

    def _failed(self, exc: BaseException) -> None:
        self.source.close()
        raise SourceError(f"{self.source.describe()}: read failed: {exc}") from exc

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def read(self, n: int) -> list[Any]:
        """The next ``n`` replies."""
        replies: list[Any] = []
        append = replies.append
        gets = self.reader.gets
        while True:
            for _ in range(n - len(replies)):
                item = gets()
                if item is False:
                    break
                append(item)
            else:
                return replies
            data = self.sock.recv(_RECV_SIZE)
            if not data:
                raise ConnectionError("connection closed by the server")
            self.reader.feed(data)

    def scan_command(self, cursor: bytes, count: int) -> bytes:
        return _command(b"SCAN", cursor, b"MATCH", self.pattern, b"COUNT", b"%d" % count)

    def scan_reply(self) -> tuple[bytes, list[bytes]]:
        reply = self.read(1)[0]
        if (not isinstance(reply, list) or len(reply) != 2
                or not isinstance(reply[0], bytes) or not isinstance(reply[1], list)):
            raise SourceError(f"{self.source.describe()}: SCAN failed: {reply!r:.200}")
        return reply[0], reply[1]


def _fields_template(fields: Sequence[bytes]) -> bytes:
    """HMGET <key> <fields...> and HLEN <key> in RESP, the key's length and bytes as %d %s."""
    asked = b"".join(b"$%d\r\n%s\r\n" % (len(f), f) for f in fields)
    return (b"*%d\r\n$5\r\nHMGET\r\n" % (2 + len(fields)) + b"$%d\r\n%s\r\n"
            + asked.replace(b"%", b"%%") + b"*2\r\n$4\r\nHLEN\r\n$%d\r\n%s\r\n")


def _command(*parts: bytes) -> bytes:
    """One command in RESP: an array of bulk strings."""
    return b"*%d\r\n" % len(parts) + b"".join(b"$%d\r\n%s\r\n" % (len(p), p) for p in parts)


