"""Registrable domains (eTLD+1) as Rspamd computes them.

Rspamd's reputation plugin keys its dkim and url tokens by ``rspamd_util.get_tld`` and
``url:get_tld()``, so a zone only answers for a name when we cut it exactly where Rspamd
does.  The suffix data is the Public Suffix List shipped by the ``publicsuffixlist``
package; the cutting rule is Rspamd's (``rspamd_url_find_tld`` in src/libserver/url.c,
read for the facts, not copied):

- **Exception rules (``!``) are ignored.** Rspamd skips them when it loads the list, so
  ``www.city.kawasaki.jp`` keeps all four labels under ``*.kawasaki.jp`` where the PSL
  algorithm gives ``city.kawasaki.jp``.
- **No default rule.** A name whose last label is not in the list (``localhost``,
  ``foo.unknowntld``, ``sub.example.com:8080``) comes back unchanged, where the PSL
  algorithm treats the unknown label as a suffix.
- **A suffix comes back whole**: ``com``, ``co.uk``, ``github.io`` are returned as
  given rather than ``None``.
- **Case is kept** (``WWW.Example.COM`` gives ``Example.COM``); matching ignores it.
- **One trailing dot is kept** (``example.com.`` gives ``example.com.``).
- **Empty labels count as labels**: ``.example.com`` gives ``example.com`` and
  ``example..com`` gives ``.com``.
- **IP literals** (``192.0.2.1``, ``2001:db8::1``, ``[::1]``) come back unchanged.
- **U-labels and A-labels** both match (``пример.рф``, ``example.xn--p1ai``); neither is
  converted into the other, as Rspamd keeps the form it was given.

Deliberate deviations from Rspamd's results in ``rspamd-tld-vectors.json``: **none**.
The vectors where Rspamd itself departs from the PSL algorithm are listed in
tests/test_tld.py.  What can still differ is the list itself: Rspamd uses the copy it
was built with, we use the package's; suffixes added or removed in between cut
differently (update the package to follow the PSL).
"""

from __future__ import annotations

import functools
import ipaddress
from functools import cache

from publicsuffixlist import PSLFILE, PublicSuffixList

# Stands in for an empty label when asking the PSL package, which refuses names with
# empty labels; no rule can match it, as no rule can match an empty label in Rspamd.
_EMPTY_LABEL = "\x00"


@cache
def _psl() -> PublicSuffixList:
    """The PSL without exception rules and without the default ``*`` rule (loaded once)."""
    with open(PSLFILE, "rb") as f:
        rules = [line for line in f if not line.lstrip().startswith(b"!")]
    return PublicSuffixList(rules, accept_unknown=False)


def _is_ip_literal(host: str) -> bool:
    text = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    if ":" not in text and not text[-1:].isdigit():
        return False  # neither IPv6 nor dotted IPv4: spare the parser (and its exception)
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def _suffix_labels(labels: list[str]) -> int:
    """How many trailing ``labels`` the longest matching rule covers (0: none matches)."""
    probe = ".".join(label or _EMPTY_LABEL for label in labels)
    suffix = _psl().publicsuffix(probe, accept_unknown=False)
    return 0 if suffix is None else suffix.count(".") + 1


@functools.lru_cache(maxsize=65536)
def etld1(host: str) -> str:
    """The registrable part of ``host`` (eTLD+1), cut as Rspamd's ``get_tld`` cuts it.

    Returns ``host`` unchanged when no rule of the list matches (unknown or missing
    TLD), when it is an IP literal, and when it has no label left of its suffix.
    """
    if not host or _is_ip_literal(host):
        return host
    body, dot = (host[:-1], ".") if host.endswith(".") else (host, "")
    labels = body.split(".")
    covered = _suffix_labels(labels)
    if covered == 0:
        return host
    return ".".join(labels[-(covered + 1):]) + dot


@functools.lru_cache(maxsize=65536)
def has_known_suffix(host: str) -> bool:
    """Whether a rule of the list matches ``host`` with a label left of it.

    Rspamd's URL parser drops a URL whose host has no such suffix unless the host is
    an IP address (``http://localhost/`` and ``http://com/`` are not URLs to it); a
    suffix counts only when a dot precedes it, so ``co.uk`` qualifies by ``uk``.
    """
    body = host[:-1] if host.endswith(".") else host
    labels = body.split(".")
    if len(labels) < 2:
        return False
    return _suffix_labels(labels[1:]) > 0
