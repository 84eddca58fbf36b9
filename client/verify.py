"""Optional DKIM and SPF verification of a message, with dkimpy and pyspf when installed.

:func:`client.facts.facts_from_message` calls this module when passed ``verify=True``;
verified results then replace the ones read from ``Authentication-Results`` (facts the
caller passes as keywords still win over both).  Neither package is a dependency of
repzone: install them with the ``verify`` extra (dkimpy) and ``pip install pyspf``.
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

**SPF** (pyspf): ``spf.check2`` for the sending IP, the envelope sender (``from_smtp``;
the HELO name for the null sender) and the HELO name; the result word and the checked
domain replace ``spf_result`` and ``spf_domain``.  pyspf always resolves through its
own module-wide DNS setup (pydns or dnspython's default resolver) and offers no
per-call server, so SPF is verified only when ``dns_server`` is None; with a
``dns_server`` the SPF facts stay those of ``Authentication-Results``.  Nothing is
checked without a sending IP.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Sequence
from typing import Any

import dns.exception
import dns.resolver

from client.facts import DkimResult

__all__ = ["SpfVerdict", "txt_lookup", "verify_dkim", "verify_spf"]

log = logging.getLogger(__name__)

DnsServer = tuple[str, int]
SpfVerdict = tuple[str, str | None]  # (result, domain)

_warned: set[str] = set()
_D_TAG = re.compile(r"(?:^|;)\s*d\s*=\s*([^;\s]+)", re.IGNORECASE)


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


def verify_spf(ip: str | None, from_smtp: str | None, helo: str | None, *,
               dns_server: DnsServer | None = None, timeout: float = 20.0
               ) -> SpfVerdict | None:
    """The SPF result and checked domain; None when not checked (pyspf missing,
    ``dns_server`` given, no IP, or neither sender nor HELO)."""
    spf = _import("pyspf", "spf")
    if spf is None or ip is None:
        return None
    if dns_server is not None:
        log.debug("SPF not verified: pyspf cannot query a given DNS server")
        return None
    sender = from_smtp or ""
    domain = sender.rpartition("@")[2].lower() if sender else (helo or "").lower()
    if not domain:
        return None
    try:
        result, _ = spf.check2(i=ip, s=sender, h=helo or "", querytime=timeout)
    except Exception as exc:  # pyspf errors leave the recorded facts in place
        log.debug("SPF check failed: %s", exc)
        return None
    return str(result).lower(), domain.rstrip(".")
