"""Optional DKIM and SPF verification of a message, with dkimpy and pyspf when installed.

Verification is the one step between a message and its facts that does DNS I/O, so it
is not part of :func:`client.facts.facts_from_message` (which reads the message only)
but a step of its own that the faces take: ``Client.check_message(data, verify=True)``
calls :func:`verify_message` where it does its other I/O, and ``AsyncClient`` runs it
in a worker thread, since dkimpy and pyspf block, so that its event loop never waits
on a key or record lookup.  Verified results replace the ones read from
``Authentication-Results`` (facts the caller passes as keywords still win over both).
Neither package is a dependency of repzone: install them with the ``verify`` extra
(``pip install 'repzone[verify]'``).
When a package is missing, one warning is logged (once per process) and the caller
keeps the ``Authentication-Results`` facts: no exception is raised.

**DKIM** (dkimpy): every ``DKIM-Signature`` header is verified in order, giving one
:class:`~client.facts.DkimResult` per signature with the ``d=`` domain and ``pass`` or
``fail`` as dkimpy's ``verify`` decides (a body hash mismatch, a missing or bad key and
a malformed signature all fail), ``temperror`` when the key lookup timed out and
``permerror`` when dkimpy breaks on the message in an unexpected way.  A message
without signatures verifies to no results.
The key (TXT at ``<selector>._domainkey.<domain>``) is looked up with dnspython, at
``dns_server`` (host, port) when given, else through the system resolver.

**SPF** (pyspf): one RFC 7208 check of the sending IP for the envelope sender
(``from_smtp``; ``postmaster@<HELO>`` for the null sender), with every DNS query of
the check (the record, includes, redirects, a, mx, ptr, exists) sent to ``dns_server``
(host, port) when given, else to the system resolver.  The result word (pass, fail,
softfail, neutral, none, temperror, permerror), the checked domain and the domain's
SPF record text replace ``spf_result``, ``spf_domain`` and ``spf_record``: the record
is what the spf selector hashes.  A record that cannot be fetched (timeout, SERVFAIL,
REFUSED) gives ``temperror`` and no record.  Nothing is checked without a sending IP.
"""

from __future__ import annotations

import dataclasses
import logging
import re
import sys
import warnings
from collections.abc import Callable, Collection, Sequence
from contextvars import ContextVar
from typing import Any, NamedTuple

import dns.exception
import dns.resolver

from client.facts import DkimResult, Facts

__all__ = [
    "SpfVerdict", "spf_resolver", "txt_lookup", "verify_dkim", "verify_message", "verify_spf",
]

log = logging.getLogger(__name__)

DnsServer = tuple[str, int]

_warned: set[str] = set()
_D_TAG = re.compile(r"(?:^|;)\s*d\s*=\s*([^;\s]+)", re.IGNORECASE)
_SPF_VERSION = re.compile(rb"v=spf1(?: |$)", re.IGNORECASE)  # RFC 7208 section 4.5


def _missing(package: str, module: str) -> None:
    if module not in _warned:
        _warned.add(module)
        log.warning("verify=True but %s (import %s) is not installed: using the "
                    "Authentication-Results headers instead", package, module)


def _import(package: str, module: str) -> Any | None:
    try:
        return __import__(module)
    except ImportError:
        _missing(package, module)
        return None


def txt_lookup(dns_server: DnsServer | None, timeout: float = 5.0
               ) -> Callable[..., bytes | None]:
    """A dkimpy ``dnsfunc``: the first TXT record of a name, its strings joined.

    Queries ``dns_server`` (host, port) when given, else the system resolver.  None
    when the name or the record does not exist; :class:`dns.exception.Timeout` when
    no server answered.
    """
    resolver = dns.resolver.Resolver(configure=dns_server is None)
    if dns_server is not None:
        resolver.nameservers = [dns_server[0]]
        resolver.port = dns_server[1]

    def lookup(name: bytes | str, timeout: float = timeout) -> bytes | None:
        qname = name.decode("ascii", "replace") if isinstance(name, bytes) else name
        try:
            answer = resolver.resolve(qname, "TXT", lifetime=timeout, search=False,
                                      raise_on_no_answer=False)
        except (dns.resolver.NXDOMAIN, dns.resolver.NoNameservers):
            return None
        for rdata in answer.rrset or ():
            return b"".join(rdata.strings)
        return None

    return lookup


def _domain(signature: str) -> str:
    match = _D_TAG.search(re.sub(r"\s+", " ", signature))
    return match[1].strip().lower().rstrip(".") if match else ""


def verify_dkim(raw: bytes, signatures: Sequence[str], *,
                dns_server: DnsServer | None = None, timeout: float = 5.0
                ) -> tuple[DkimResult, ...] | None:
    """One result per DKIM-Signature of ``raw`` (``signatures``: their header values,
    in message order, for the ``d=`` domains); None when dkimpy is not installed."""
    dkim = _import("dkimpy", "dkim")
    if dkim is None:
        return None
    if not signatures:
        return ()
    lookup = txt_lookup(dns_server, timeout)

    def dnsfunc(name: bytes | str, timeout: float = timeout) -> bytes | None:
        try:
            return lookup(name, timeout)
        except dns.exception.Timeout as exc:
            raise dkim.DnsTimeoutError(str(exc)) from exc

    results: list[DkimResult] = []
    for idx, signature in enumerate(signatures):
        try:
            checker = dkim.DKIM(raw, timeout=int(timeout) or 1)
            ok = checker.verify(idx=idx, dnsfunc=dnsfunc)
            result = "pass" if ok else "fail"
        except dkim.DnsTimeoutError:
            result = "temperror"
        except dkim.DKIMException as exc:  # body hash mismatch, bad key...: as dkim.verify
            log.debug("DKIM signature %d fails: %s", idx, exc)
            result = "fail"
        except Exception as exc:  # dkimpy's parse errors: never fatal here
            log.debug("DKIM signature %d not verifiable: %s", idx, exc)
            result = "permerror"
        results.append(DkimResult(_domain(signature), result))
    return tuple(results)


class SpfVerdict(NamedTuple):
    """What pyspf decided: the result word, the checked domain, and that domain's SPF
    record text (its character-strings joined, as Rspamd hashes it; None when the
    record could not be fetched or there is none)."""

    result: str
    domain: str
    record: str | None


class _SpfDns:
    """The DNS of one SPF check: a resolver, and the TXT answers it saw, by name."""

    def __init__(self, resolver: dns.resolver.Resolver) -> None:
        self.resolver = resolver
        self.txt: dict[str, list[bytes]] = {}

    def lookup(self, name: str, qtype: str, strict: object = True, timeout: float = 20.0
               ) -> list[tuple[tuple[str, str], Any]]:
        """pyspf's ``DNSLookup`` contract: ``((name, qtype), value)`` pairs, [] for
        NXDOMAIN and NODATA, ``spf.TempError`` for a timeout, SERVFAIL or REFUSED."""
        spf = sys.modules["spf"]
        try:
            answer = self.resolver.resolve(name, qtype, lifetime=timeout, search=False,
                                           raise_on_no_answer=False)
        except dns.resolver.NXDOMAIN:
            return []
        except (dns.exception.Timeout, dns.resolver.NoNameservers) as exc:
            raise spf.TempError(f"DNS {exc}") from exc
        found: list[tuple[tuple[str, str], Any]] = []
        for rdata in answer.rrset or ():
            value: Any
            if qtype in ("A", "AAAA"):
                value = rdata.address
            elif qtype == "MX":
                value = (rdata.preference, rdata.exchange)
            elif qtype == "PTR":
                value = rdata.target.to_text(True)
            elif qtype in ("TXT", "SPF"):
                value = tuple(rdata.strings)
                if qtype == "TXT":
                    self.txt.setdefault(name.lower().rstrip("."), []).append(b"".join(value))
            else:
                continue
            found.append(((name, qtype), value))
        return found


_spf_dns: ContextVar[_SpfDns | None] = ContextVar("repzone_spf_dns", default=None)
_system_resolver: list[dns.resolver.Resolver] = []


def _spf_module() -> Any | None:
    """pyspf, with its DNS routed through :data:`_spf_dns` while a check of ours runs.

    pyspf resolves through one module function (``spf.DNSLookup``) and offers no
    per-call server; it is replaced once by a dispatcher that uses the resolver of the
    check running in the current context (thread or task) and pyspf's own function
    otherwise, so other users of pyspf in the process see no change and no resolver
    outlives its check.  pyspf 2.0.14 has invalid escape sequences that warn when it is
    compiled without a cached .pyc: silenced for the import.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", SyntaxWarning)
        spf = _import("pyspf", "spf")
    if spf is None:
        return None
    if not getattr(spf.DNSLookup, "_repzone", False):
        original = spf.DNSLookup

        def dispatch(name: str, qtype: str, strict: object = True, timeout: float = 20.0
                     ) -> list[tuple[tuple[str, str], Any]]:
            current = _spf_dns.get()
            if current is None:
                return original(name, qtype, strict, timeout)  # type: ignore[no-any-return]
            return current.lookup(name, qtype, strict, timeout)

        dispatch._repzone = True  # type: ignore[attr-defined]
        spf.DNSLookup = dispatch
    return spf


def spf_resolver(dns_server: DnsServer | None) -> dns.resolver.Resolver:
    """A resolver asking ``dns_server`` (host, port), or the system's (one per process)."""
    if dns_server is None:
        if not _system_resolver:
            _system_resolver.append(dns.resolver.Resolver())
        return _system_resolver[0]
    resolver = dns.resolver.Resolver(configure=False)
    resolver.nameservers = [dns_server[0]]
    resolver.port = dns_server[1]
    return resolver


def verify_spf(ip: str | None, from_smtp: str | None, helo: str | None, *,
               dns_server: DnsServer | None = None, timeout: float = 20.0
               ) -> SpfVerdict | None:
    """The SPF verdict for ``ip`` sending as ``from_smtp`` (the HELO name for the null
    sender), with DNS at ``dns_server`` or the system resolver; None when not checked
    (pyspf missing, no IP, or neither sender nor HELO).  ``timeout`` bounds the whole
    check (RFC 7208 section 4.6.4 suggests 20 s)."""
    if ip is None:
        return None
    spf = _spf_module()
    if spf is None:
        return None
    sender = from_smtp or ""
    domain = (sender.rpartition("@")[2] if sender else helo or "").lower().rstrip(".")
    if not domain:
        return None
    spf_dns = _SpfDns(spf_resolver(dns_server))
    token = _spf_dns.set(spf_dns)
    try:
        result, _, _ = spf.query(i=ip, s=sender, h=helo or "", querytime=timeout).check()
    except Exception as exc:  # pyspf errors leave the recorded facts in place
        log.debug("SPF check failed: %s", exc)
        return None
    finally:
        _spf_dns.reset(token)
    records = [t for t in spf_dns.txt.get(domain, ()) if _SPF_VERSION.match(t)]
    record = records[0].decode("ascii", "replace") if len(records) == 1 else None
    return SpfVerdict(str(result).lower(), domain, record)


def verify_message(raw: bytes, facts: Facts, *, given: Collection[str] = (),
                   dns_server: DnsServer | None = None) -> Facts:
    """``facts`` (those of ``raw``) with their DKIM and SPF facts replaced by verified ones.

    ``given``: the names of the facts the caller passed (they win: ``dkim`` given skips
    the DKIM check, ``spf_result`` given the SPF one, ``spf_domain``/``spf_record`` given
    are kept).  The signatures checked are the facts' ``DKIM-Signature`` headers, in
    message order.  A check that cannot run (package missing, no sending IP) leaves its
    facts as they are.  Blocks on DNS (``dns_server`` or the system resolver).
    """
    changes: dict[str, Any] = {}
    if "dkim" not in given:
        signatures = facts.headers.get("dkim-signature", ())
        dkim = verify_dkim(raw, signatures, dns_server=dns_server)
        if dkim is not None:
            changes["dkim"] = dkim
    if "spf_result" not in given:
        spf = verify_spf(facts.ip, facts.from_smtp, facts.helo, dns_server=dns_server)
        if spf is not None:
            changes["spf_result"] = spf.result
            if "spf_domain" not in given:
                changes["spf_domain"] = spf.domain
            if "spf_record" not in given:
                changes["spf_record"] = spf.record
    return dataclasses.replace(facts, **changes) if changes else facts
