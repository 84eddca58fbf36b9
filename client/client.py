"""``Client`` and ``AsyncClient``: the lookup plan run over DNS (the bytes
from :mod:`client.dnswire`, carried by :mod:`client.transport`).

The two faces share one configuration (:class:`ClientConfig`) and everything that is
not I/O (:class:`BaseClient`, after httpx's ``BaseClient``): the plan, the cache, the
server rotation.  Each face adds only the loop that asks the plan's queries::

    BaseClient            configuration, LookupPlan, cache, retries order
    |-- Client            sync: a check's queries sent at once from one UDP socket and
    |                     their replies read as they come (TCP on TC); or
    |                     dns.resolver.Resolver on a thread pool (system resolver)
    `-- AsyncClient       asyncio: one UDP socket per server shared by all outstanding
                          queries (matched by ID and question), TCP on TC;
                          or dns.asyncresolver.Resolver; a limiter (a semaphore that
                          takes a check's queries at once) caps the queries in flight

How the bytes travel is the transport's (:mod:`client.transport`, ``transport=``): the
UDP multiplexers and TCP over real sockets by default, or in memory, handed to a
function, so that the faces are tested without a network.

``servers=None`` asks the system's resolvers (``/etc/resolv.conf``) through dnspython's
Resolver; otherwise the given servers are asked directly, in turn: attempt ``i`` goes to
``servers[i % len(servers)]``, ``retries`` further attempts after the first.  A timeout is
retried; SERVFAIL, REFUSED and network errors are retried only when there is another
server to ask.

Verifying a message's DKIM signatures and SPF (``check_message(..., verify=True)``,
:mod:`client.verify`) is the face's step too, taken before the plan starts: the sync
face runs it in place, the async face in a worker thread (dkimpy and pyspf block).

Nothing about the network raises out of a lookup: a timeout, SERVFAIL, REFUSED, an
unparseable reply or a malformed TXT record becomes that token's status, scored 0 and
listed in the result's ``errors`` (:mod:`client.plan`).  What does raise is the caller's
own mistake: an unknown selector name, a value that is not a token
(:class:`ValueError`), a message that cannot be parsed (:class:`client.facts.MessageError`).

The async face sends every query to a server from one socket (per server and client), so
the 16-bit ID and the question are what tell replies apart, as in most stub resolvers
(:class:`client.transport.Channel`).  Reusing the socket is what makes 20,000 lookups a
second possible in Python: a socket per query costs more than the rest of the lookup.
"""

from __future__ import annotations

import asyncio
import dataclasses
import ipaddress
from collections import deque
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self, cast

import dns.asyncresolver
import dns.exception
import dns.message
import dns.name
import dns.rdatatype
import dns.resolver

from client import asn as asnzone
from client.answers import Answer, Query, answer_from_reply, failure
from client.cache import TTLCache
from client.dnswire import (
    ReplyError,
    question_wire,
    read_reply,
    reply_from_message,
)
from client.facts import Facts, facts_from_message
from client.plan import Lookup, LookupPlan, value_tokens
from client.result import Result, SelectorResult
from client.selectorconfig import SelectorConfig
from client.transport import Channel, Server, Transport, UdpTransport
from client.verify import verify_message
from listformat.wire import OUR_PAYLOAD

AnswerCache = TTLCache[tuple[str, str], Answer]

DEFAULT_TIMEOUT = 2.0
DEFAULT_RETRIES = 2
DEFAULT_CONCURRENCY = 64
DNS_PORT = 53
# Statuses worth asking another server about (when there is one).
_RETRY_ELSEWHERE = frozenset({"servfail", "refused", "error"})
# Answers kept in the cache: real answers, including records we could not read (the
# list said them; asking again within the TTL gets the same bytes).
_CACHEABLE = frozenset({"hit", "nxdomain", "nodata", "malformed", "newer_version"})


def parse_server(spec: str | Server) -> Server:
    """``"127.0.0.1:5353"``, ``"[::1]:53"``, ``"192.0.2.53"`` or ``(host, port)`` as (host, port).

    The host must be an IP address: a server given by name would need a resolver to
    find the resolver.
    """
    if isinstance(spec, tuple):
        host, port = spec
    else:
        text = spec.strip()
        if text.startswith("["):
            host, _, rest = text[1:].partition("]")
            port = int(rest[1:]) if rest.startswith(":") else DNS_PORT
        elif text.count(":") == 1:
            host, _, raw = text.partition(":")
            port = int(raw)
        else:
            host, port = text, DNS_PORT
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        raise ValueError(f"server {spec!r}: {host!r} is not an IP address") from None
    if not 0 < port < 65536:
        raise ValueError(f"server {spec!r}: port {port} out of range")
    return (str(address), port)


@dataclass(frozen=True)
class ClientConfig:
    """Everything both faces are configured with; see the module docstring."""

    selectors: tuple[SelectorConfig, ...]
    servers: tuple[Server, ...] | None = None
    timeout: float = DEFAULT_TIMEOUT
    retries: int = DEFAULT_RETRIES
    concurrency: int = DEFAULT_CONCURRENCY
    trusted: tuple[str, ...] = ()
    #: Where to find a sender's ASN and country the caller did not give (client.asn);
    #: None, the default, never asks.
    asn: asnzone.AsnZones | None = None

    def __post_init__(self) -> None:
        if self.servers is not None:
            if not self.servers:
                raise ValueError("servers: give at least one, or None for the system resolver")
            object.__setattr__(self, "servers", tuple(parse_server(s) for s in self.servers))
        if not self.timeout > 0:
            raise ValueError(f"timeout must be positive, got {self.timeout!r}")
        if self.retries < 0:
            raise ValueError(f"retries must be >= 0, got {self.retries!r}")
        if self.concurrency < 1:
            raise ValueError(f"concurrency must be >= 1, got {self.concurrency!r}")


class BaseClient:
    """Configuration and the pure parts of a client; use :class:`Client` or :class:`AsyncClient`."""

    def __init__(
        self,
        selectors: Sequence[SelectorConfig],
        servers: Iterable[str | Server] | None = None,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        retries: int = DEFAULT_RETRIES,
        concurrency: int = DEFAULT_CONCURRENCY,
        cache: AnswerCache | None = None,
        trusted: Sequence[str] = (),
        asn: asnzone.AsnZones | None = None,
        transport: Transport | None = None,
    ) -> None:
        self.config = ClientConfig(
            selectors=tuple(selectors),
            servers=None if servers is None else tuple(parse_server(s) for s in servers),
            timeout=timeout,
            retries=retries,
            concurrency=concurrency,
            trusted=tuple(trusted),
            asn=asn,
        )
        self.plan = LookupPlan(self.config.selectors)
        self.cache = cache
        #: How queries reach the servers (client.transport): the network by default.
        self.transport: Transport = transport if transport is not None else UdpTransport()
        self._setup()

    def _setup(self) -> None:
        """The face's own state (sockets, pools, resolver); called by __init__."""

    @classmethod
    def from_config(cls, config: ClientConfig, *, cache: AnswerCache | None = None,
                    transport: Transport | None = None) -> Self:
        """A client from a ready :class:`ClientConfig` (e.g. one read by ``repq``)."""
        return cls(
            config.selectors,
            config.servers,
            timeout=config.timeout,
            retries=config.retries,
            concurrency=config.concurrency,
            cache=cache,
            trusted=config.trusted,
            asn=config.asn,
            transport=transport,
        )

    def _facts(self, data: bytes, given: dict[str, Any]) -> Facts:
        return facts_from_message(data, trusted=self.config.trusted, **given)

    @staticmethod
    def _verified(data: bytes, facts: Facts, given: dict[str, Any],
                  dns_server: Server | None) -> Facts:
        """The facts with verified DKIM and SPF (client.verify); blocks on DNS.

        ``bytes(data)``: dkimpy wants bytes, and a caller may pass a bytearray or memoryview
        as :func:`client.facts.facts_from_message` allows."""
        return verify_message(bytes(data), facts, given=given.keys(), dns_server=dns_server)

    def _value_lookup(self, selector: str, value: str, component: str | None) -> Lookup:
        config = self.plan.selector(selector)
        return self.plan.start_tokens(selector, value_tokens(config, value, component))

    def _cached(self, query: Query) -> Answer | None:
        if self.cache is None:
            return None
        answer = self.cache.get((query.qname, query.rdtype))
        if answer is None:
            return None
        remaining = self.cache.remaining((query.qname, query.rdtype))
        ttl = int(remaining) if remaining is not None else answer.ttl
        return dataclasses.replace(answer, query=query, cached=True, ttl=ttl)

    def _store(self, answer: Answer) -> None:
        if self.cache is not None and answer.status in _CACHEABLE:
            self.cache.put((answer.query.qname, answer.query.rdtype), answer, answer.ttl)

    def _attempts(self) -> list[Server]:
        servers = self.config.servers
        assert servers is not None
        return [servers[i % len(servers)] for i in range(self.config.retries + 1)]

    def _retry_elsewhere(self, answer: Answer) -> bool:
        servers = self.config.servers
        return answer.status in _RETRY_ELSEWHERE and servers is not None and len(servers) > 1

    def _try_again(self, answer: Answer) -> bool:
        return answer.status == "timeout" or self._retry_elsewhere(answer)

    def _read(
        self, query: Query, server: Server, question: bytes, wire: bytes | None
    ) -> Answer | None:
        """The answer a reply (or its absence) gives; None when it was truncated (TCP)."""
        if wire is None:
            return failure(
                query, "timeout", f"no reply from {_where(server)} in {self.config.timeout:g} s"
            )
        try:
            reply = read_reply(wire, question)
        except ReplyError as exc:
            return failure(query, "error", f"{_where(server)}: {exc}")
        if reply.truncated:
            return None
        return answer_from_reply(query, reply)

    def _resolver_setup(self, resolver: dns.resolver.BaseResolver) -> None:
        resolver.timeout = self.config.timeout
        resolver.lifetime = self.config.timeout * (self.config.retries + 1)
        resolver.cache = None  # ours honours negative TTLs and is shared by both faces
        resolver.use_edns(0, 0, OUR_PAYLOAD)


def _message(query: Query) -> dns.message.QueryMessage:
    return dns.message.make_query(
        query.qname + ".", dns.rdatatype.TXT, use_edns=0, payload=OUR_PAYLOAD
    )


def _where(server: Server) -> str:
    host, port = server
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _message_answer(query: Query, message: dns.message.Message) -> Answer:
    return answer_from_reply(query, reply_from_message(message))


def _resolver_failure(query: Query, exc: Exception) -> Answer:
    """Map a dnspython Resolver exception to an answer (the system-resolver path)."""
    if isinstance(exc, dns.resolver.NXDOMAIN):
        responses = exc.kwargs.get("responses") or {}
        for message in responses.values():
            if isinstance(message, dns.message.Message):
                return _message_answer(query, message)
        return Answer(query, "nxdomain")
    if isinstance(exc, dns.resolver.NoNameservers):
        errors = exc.kwargs.get("errors") or []
        for error in reversed(errors):
            response = error[4] if len(error) > 4 else None
            if isinstance(response, dns.message.Message):
                return _message_answer(query, response)
        return failure(query, "servfail", str(exc))
    if isinstance(exc, dns.exception.Timeout):
        return failure(query, "timeout", str(exc))
    return failure(query, "error", f"{type(exc).__name__}: {exc}")


# ------------------------------------------------------------------ sync face


class Client(BaseClient):
    """The synchronous face: ``check``, ``check_message`` and ``lookup`` block.

    With servers given, a check's queries go out at once from one UDP socket (at most
    ``concurrency`` in flight) and their replies are read as they come, one attempt
    after the other; the socket lives for one call, so a client may be shared by
    threads.  Through the system resolver the queries run on a thread pool of
    ``concurrency`` threads (created on first use; ``close()`` or a ``with`` block
    ends it).
    """

    def _setup(self) -> None:
        self._pool: ThreadPoolExecutor | None = None
        self.resolver: dns.resolver.Resolver | None = None
        if self.config.servers is None:
            self.resolver = dns.resolver.Resolver()
            self._resolver_setup(self.resolver)

    def check(self, facts: Facts) -> Result:
        """Run every selector over ``facts`` (asn and country looked up first, if set up)."""
        query = asnzone.lookup_query(self.config.asn, facts)
        if query is not None:
            facts = asnzone.apply(facts, self.answer(query))
        return self._run(self.plan.start(facts))

    def check_message(self, data: bytes, *, verify: bool = False,
                      dns_server: Server | None = None, **facts: Any) -> Result:
        """Extract the facts of an RFC 5322 message (``facts`` override them), then check.

        ``verify``: check the DKIM signatures and SPF first (:mod:`client.verify`, DNS at
        ``dns_server`` or the system resolver) and prefer those results.
        """
        found = self._facts(data, facts)
        if verify:
            found = self._verified(data, found, facts, dns_server)
        return self.check(found)

    def lookup(self, selector: str, value: str, *, component: str | None = None) -> SelectorResult:
        """Look one value up with one configured selector (see plan.value_tokens)."""
        return self._run(self._value_lookup(selector, value, component)).selectors[0]

    def answer(self, query: Query) -> Answer:
        """One query's answer: from the cache, else from the servers (never raises)."""
        return self.answers([query])[0]

    def close(self) -> None:
        """Stop the thread pool."""
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def answers(self, queries: Sequence[Query]) -> list[Answer]:
        """Several queries' answers, in order, asked concurrently (never raises)."""
        found: list[Answer | None] = [self._cached(q) for q in queries]
        todo = [i for i, answer in enumerate(found) if answer is None]
        if todo:
            if self.resolver is not None:
                asked = self._resolve_all([queries[i] for i in todo])
            else:
                asked = self._ask_all([queries[i] for i in todo])
            for index, answer in zip(todo, asked, strict=True):
                self._store(answer)
                found[index] = answer
        return cast(list[Answer], found)

    def _run(self, lookup: Lookup) -> Result:
        return lookup.result(self.answers(lookup.queries))

    def _resolve_all(self, queries: Sequence[Query]) -> list[Answer]:
        if len(queries) <= 1 or self.config.concurrency == 1:
            return [self._resolve(q) for q in queries]
        if self._pool is None:
            self._pool = ThreadPoolExecutor(
                self.config.concurrency, thread_name_prefix="repzone-client"
            )
        return list(self._pool.map(self._resolve, queries))

    def _resolve(self, query: Query) -> Answer:
        assert self.resolver is not None
        try:
            resolved = self.resolver.resolve(
                query.qname + ".", dns.rdatatype.TXT, raise_on_no_answer=False, search=False,
            )
        except Exception as exc:  # every resolver failure becomes a status
            return _resolver_failure(query, exc)
        return _message_answer(query, resolved.response)

    def _ask_all(self, queries: Sequence[Query]) -> list[Answer]:
        """Every query through the attempts: each attempt asks all that are left at once."""
        answers: list[Answer | None] = [None] * len(queries)
        questions: dict[int, bytes] = {}
        for index, query in enumerate(queries):
            try:
                questions[index] = question_wire(query.qname)
            except ValueError as exc:
                answers[index] = failure(query, "error", str(exc))
        todo = list(questions)
        for server in self._attempts():
            if not todo:
                break
            replies = self.transport.exchange(
                server, [(i, questions[i]) for i in todo],
                timeout=self.config.timeout, limit=self.config.concurrency,
            )
            again = []
            for index in todo:
                query, reply = queries[index], replies.get(index)
                if isinstance(reply, OSError):
                    answer = failure(query, "error", f"{_where(server)}: {reply}")
                else:
                    read = self._read(query, server, questions[index], reply)
                    answer = read if read is not None else self._tcp(query, server)
                answers[index] = answer
                if self._try_again(answer):
                    again.append(index)
            todo = again
        return cast(list[Answer], answers)

    def _tcp(self, query: Query, server: Server) -> Answer:
        """The answer over TCP, after a truncated UDP reply (RFC 7766)."""
        try:
            response = self.transport.tcp(_message(query), server, self.config.timeout)
        except _TCP_ERRORS as exc:
            return _tcp_failure(query, server, exc)
        return _message_answer(query, response)


_TCP_ERRORS = (dns.exception.DNSException, OSError, EOFError, ValueError)


def _tcp_failure(query: Query, server: Server, exc: BaseException) -> Answer:
    """What a failed TCP exchange reports; both faces share the wording."""
    if isinstance(exc, dns.exception.Timeout):
        return failure(query, "timeout", f"no TCP reply from {_where(server)}")
    if isinstance(exc, OSError | EOFError):
        return failure(query, "error", f"{_where(server)} over TCP: {exc}")
    return failure(query, "error", f"{_where(server)}: unparseable response: {exc}")


# ------------------------------------------------------------------ async face


class _Limiter:
    """At most ``limit`` queries in flight; several can be taken at once, without a Task.

    asyncio.Semaphore hands out one slot per ``acquire()`` coroutine, so a check would
    need a Task per query; on the benchmark machine a Task and a semaphore cost ten times
    what the query's own future does.  Waiters are served in order.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0
        self._waiters: deque[tuple[int, asyncio.Future[None]]] = deque()

    def try_take(self, count: int) -> bool:
        """Take ``count`` slots now if they are free and nobody is waiting."""
        if self._waiters or self.used + count > self.limit:
            return False
        self.used += count
        return True

    async def take(self) -> None:
        """Take one slot, waiting for it."""
        if self.try_take(1):
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        entry = (1, future)
        self._waiters.append(entry)
        try:
            await future
        except BaseException:
            if future.done() and not future.cancelled():
                self.give(1)  # granted just as we were cancelled: pass it on
            else:
                self._waiters.remove(entry)
            raise

    def give(self, count: int) -> None:
        """Return slots and wake the waiters they now fit."""
        self.used -= count
        while self._waiters and self.used + self._waiters[0][0] <= self.limit:
            wanted, future = self._waiters.popleft()
            if future.done():
                continue  # cancelled while waiting
            self.used += wanted
            future.set_result(None)


class AsyncClient(BaseClient):
    """The asyncio face: the same methods as :class:`Client`, as coroutines.

    A check sends the first attempt of all its queries at once and awaits their futures
    directly; only queries that need another attempt get a Task of their own.  Use a
    client from one event loop; ``aclose()`` or ``async with`` closes its sockets.
    """

    def _setup(self) -> None:
        self._limiter = _Limiter(self.config.concurrency)
        self._channels: dict[Server, Channel] = {}
        self.resolver: dns.asyncresolver.Resolver | None = None
        if self.config.servers is None:
            self.resolver = dns.asyncresolver.Resolver()
            self._resolver_setup(self.resolver)

    async def check(self, facts: Facts) -> Result:
        """Run every selector over ``facts``; the queries run concurrently.

        The sender's asn and country are looked up first when set up and not given.
        """
        query = asnzone.lookup_query(self.config.asn, facts)
        if query is not None:
            facts = asnzone.apply(facts, await self.answer(query))
        lookup = self.plan.start(facts)
        return lookup.result(await self.answers(lookup.queries))

    async def check_message(self, data: bytes, *, verify: bool = False,
                            dns_server: Server | None = None, **facts: Any) -> Result:
        """Extract the facts of an RFC 5322 message (``facts`` override them), then check.

        ``verify``: check the DKIM signatures and SPF first, as :meth:`Client.check_message`
        does; dkimpy and pyspf block, so the check runs in a worker thread and the event
        loop goes on serving other checks meanwhile.
        """
        found = self._facts(data, facts)
        if verify:
            found = await asyncio.to_thread(self._verified, data, found, facts, dns_server)
        return await self.check(found)

    async def lookup(
        self, selector: str, value: str, *, component: str | None = None
    ) -> SelectorResult:
        """Look one value up with one configured selector (see plan.value_tokens)."""
        lookup = self._value_lookup(selector, value, component)
        return lookup.result(await self.answers(lookup.queries)).selectors[0]

    async def answer(self, query: Query) -> Answer:
        """One query's answer: from the cache, else from the servers (never raises)."""
        return (await self.answers([query]))[0]

    async def aclose(self) -> None:
        """Close the sockets."""
        for channel in self._channels.values():
            channel.close()
        self._channels.clear()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def answers(self, queries: Sequence[Query]) -> list[Answer]:
        """Several queries' answers, in order (never raises).

        From the cache where it can; the others' first attempts go out at once and are
        awaited as bare futures; only those that need another attempt get a Task.
        """
        found: list[Answer | None] = [self._cached(q) for q in queries]
        todo = [i for i, answer in enumerate(found) if answer is None]
        if todo and self.resolver is None and self._limiter.try_take(len(todo)):
            try:
                first = await self._first_attempt([queries[i] for i in todo])
            finally:
                self._limiter.give(len(todo))
            again = []
            for index, answer in zip(todo, first, strict=True):
                if self._try_again(answer) and self.config.retries > 0:
                    again.append(index)
                else:
                    self._store(answer)
                    found[index] = answer
            todo, start = again, 1
        else:
            start = 0
        if len(todo) == 1:
            found[todo[0]] = await self._one(queries[todo[0]], start)
        elif todo:
            rest = await asyncio.gather(*(self._one(queries[i], start) for i in todo))
            for index, answer in zip(todo, rest, strict=True):
                found[index] = answer
        return [answer for answer in found if answer is not None]

    async def _first_attempt(self, queries: Sequence[Query]) -> list[Answer]:
        """Send every query to the first server at once, then collect the replies."""
        server = self._attempts()[0]
        answers: list[Answer | None] = [None] * len(queries)
        sent: list[tuple[int, bytes]] = []
        for index, query in enumerate(queries):
            try:
                sent.append((index, question_wire(query.qname)))
            except ValueError as exc:
                answers[index] = failure(query, "error", str(exc))
        if sent:
            try:
                channel = self._channel(server)
                batch = channel.send([question for _, question in sent], self.config.timeout)
                await batch.future
            except OSError as exc:
                for index, _ in sent:
                    answers[index] = failure(queries[index], "error", f"{_where(server)}: {exc}")
            else:
                for (index, question), wire in zip(sent, batch.replies, strict=True):
                    query = queries[index]
                    answer = self._read(query, server, question, wire)
                    answers[index] = (answer if answer is not None
                                      else await self._tcp(query, server))
        return cast(list[Answer], answers)

    async def _one(self, query: Query, start: int) -> Answer:
        """One query through the attempts from ``start`` on, holding one slot."""
        await self._limiter.take()
        try:
            answer = await self._ask(query, start)
        finally:
            self._limiter.give(1)
        self._store(answer)
        return answer

    def _channel(self, server: Server) -> Channel:
        """The open socket to ``server``, opened on first use (raises OSError)."""
        channel = self._channels.get(server)
        if channel is not None and channel.open:
            return channel
        channel = self.transport.channel(server, asyncio.get_running_loop())
        self._channels[server] = channel
        return channel

    async def _ask(self, query: Query, start: int = 0) -> Answer:
        if self.resolver is not None:
            try:
                resolved = await self.resolver.resolve(
                    query.qname + ".", dns.rdatatype.TXT, raise_on_no_answer=False,
                    search=False,
                )
            except Exception as exc:  # every resolver failure becomes a status
                return _resolver_failure(query, exc)
            return _message_answer(query, resolved.response)
        try:
            question = question_wire(query.qname)
        except ValueError as exc:
            return failure(query, "error", str(exc))
        answer = failure(query, "timeout", "no attempt made")
        for server in self._attempts()[start:]:
            try:
                channel = self._channel(server)
                batch = channel.send([question], self.config.timeout)
                await batch.future
            except OSError as exc:
                answer = failure(query, "error", f"{_where(server)}: {exc}")
            else:
                read = self._read(query, server, question, batch.replies[0])
                answer = read if read is not None else await self._tcp(query, server)
            if not self._try_again(answer):
                return answer
        return answer

    async def _tcp(self, query: Query, server: Server) -> Answer:
        """The answer over TCP, after a truncated UDP reply (RFC 7766)."""
        try:
            response = await self.transport.tcp_async(_message(query), server,
                                                      self.config.timeout)
        except _TCP_ERRORS as exc:
            return _tcp_failure(query, server, exc)
        return _message_answer(query, response)
