"""Who may ask: query ACLs, transfer ACLs, TSIG keys and NOTIFY targets of a zone.

Read from a zone file's ``queries``, ``transfer`` and ``keys`` sections into frozen
values; the checks against a client address are here too, so the server and its tests
share one notion of "allowed".  A private list answers only its customers (the spirit
of rbldnsd's ``acl`` dataset); a public one answers everyone and lets only its
secondaries transfer the zone.
"""

from __future__ import annotations

import base64
import binascii
import errno
import ipaddress
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import yaml

from zoned.yamlconf import Report, Section, read_domain, read_items, read_text

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

# TSIG algorithms by the names operators write (RFC 8945 6; hmac-sha256 is the one
# every secondary supports), mapped to their DNS names.
ALGORITHMS = {
    "hmac-md5": "hmac-md5.sig-alg.reg.int",
    "hmac-sha1": "hmac-sha1",
    "hmac-sha224": "hmac-sha224",
    "hmac-sha256": "hmac-sha256",
    "hmac-sha384": "hmac-sha384",
    "hmac-sha512": "hmac-sha512",
}
DEFAULT_ALGORITHM = "hmac-sha256"
DEFAULT_NOTIFY_PORT = 53
_CACHE_LIMIT = 65536
_SECRET_LIMIT = 65536


class Networks:
    """A set of networks that answers ``address in networks`` for address strings.

    Clients repeat, so answers are cached per address string: parsing an address costs
    more than the rest of a fast-path answer.
    """

    __slots__ = ("networks", "_cache")

    def __init__(self, networks: tuple[Network, ...]) -> None:
        self.networks = networks
        self._cache: dict[str, bool] = {}

    def __contains__(self, address: object) -> bool:
        if not isinstance(address, str):
            return False
        hit = self._cache.get(address)
        if hit is None:
            hit = self._match(address)
            if len(self._cache) >= _CACHE_LIMIT:
                self._cache.clear()
            self._cache[address] = hit
        return hit

    def _match(self, address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address.split("%", 1)[0])
        except ValueError:
            return False
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped  # a dual-stack socket reports IPv4 clients as ::ffff:a.b.c.d
        return any(ip in net for net in self.networks if net.version == ip.version)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Networks) and other.networks == self.networks

    def __hash__(self) -> int:
        return hash(self.networks)

    def __repr__(self) -> str:
        return f"Networks({', '.join(str(net) for net in self.networks)})"


@dataclass(frozen=True, slots=True)
class TsigKey:
    """A shared TSIG secret (RFC 8945); its name is the key's owner name in messages."""

    name: str  # lowercase, no trailing dot
    algorithm: str  # the DNS name of the algorithm, e.g. "hmac-sha256"
    secret: bytes = b""

    def __repr__(self) -> str:
        return f"TsigKey({self.name!r}, {self.algorithm!r})"  # never the secret


@dataclass(frozen=True, slots=True)
class Target:
    """A secondary to NOTIFY (RFC 1996) of each new serial."""

    host: str
    port: int

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


@dataclass(frozen=True, slots=True)
class Transfer:
    """Who may transfer the zone, with which key, and whom to tell of new serials."""

    allow: Networks
    key: TsigKey | None
    notify: tuple[Target, ...]


@dataclass(frozen=True, slots=True)
class QueryAcl:
    """Who may query the zone; the others get REFUSED, or nothing at all (``drop``)."""

    allow: Networks
    denied: Literal["refuse", "drop"]


# --------------------------------------------------------------------------- reading


def read_networks(report: Report, node: yaml.Node, path: str) -> Networks:
    """A list of addresses and networks (host bits set are an error: a typo's symptom)."""
    networks: list[Network] = []
    for item, where in read_items(report, node, path, single=True):
        text = read_text(report, item, where, "an address or network")
        if text is None:
            continue
        try:
            networks.append(ipaddress.ip_network(text.strip()))
        except ValueError as exc:
            report.add(item, where, f"expected an address or network: {exc}")
    return Networks(tuple(networks))


def read_keys(report: Report, sec: Section | None, base: Path) -> dict[str, TsigKey]:
    """The ``keys`` section: name -> {algorithm, secret | secret_file}."""
    if sec is None:
        return {}
    keys: dict[str, TsigKey] = {}
    for name in sec.keys():
        node = sec.take(name)
        assert node is not None
        path = sec.field(name)
        key_sec = Section(report, node, path) if isinstance(node, yaml.MappingNode) else None
        if key_sec is None:
            report.add(node, path, "expected a mapping with algorithm and secret")
            continue
        domain = read_domain(report, sec.key_node(name) or node, path)
        algorithm = key_sec.text("algorithm", DEFAULT_ALGORITHM).lower()
        if algorithm not in ALGORITHMS:
            report.add(
                key_sec.take("algorithm"), key_sec.field("algorithm"),
                f"unknown TSIG algorithm {algorithm!r}; expected one of {', '.join(ALGORITHMS)}",
            )
        secret = _secret(report, key_sec, base)
        key_sec.done(("algorithm", "secret", "secret_file"))
        if domain is not None and secret is not None and algorithm in ALGORITHMS:
            keys[name] = TsigKey(domain, ALGORITHMS[algorithm], secret)
    return keys


def _secret(report: Report, sec: Section, base: Path) -> bytes | None:
    inline = sec.take("secret")
    file_node = sec.take("secret_file")
    if (inline is None) == (file_node is None):
        report.add(sec.anchor, sec.path, "expected exactly one of secret and secret_file")
        return None
    if inline is not None:
        text = read_text(report, inline, sec.field("secret"), "a base64 secret")
        node, path = inline, sec.field("secret")
    else:
        assert file_node is not None
        name = read_text(report, file_node, sec.field("secret_file"), "a file path")
        node, path = file_node, sec.field("secret_file")
        if name is None:
            return None
        try:
            file = base / Path(name).expanduser()
            text = _read_small(file).strip()
        except (OSError, RuntimeError, ValueError) as exc:  # ~nobody, a NUL byte, not UTF-8
            strerror = exc.strerror if isinstance(exc, OSError) else None
            report.add(node, path, f"cannot read {base / name}: {strerror or exc}")
            return None
    if text is None:
        return None
    try:
        secret = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        report.add(node, path, "the secret is not valid base64")
        return None
    if not secret:
        report.add(node, path, "the secret is empty")
        return None
    return secret


def _read_small(file: Path) -> str:
    """A secret file's text: a regular file of at most 64 KiB (not /dev/zero, not a FIFO)."""
    with file.open("rb") as handle:
        if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
            raise OSError(errno.EINVAL, "not a regular file")
        data = handle.read(_SECRET_LIMIT + 1)
    if len(data) > _SECRET_LIMIT:
        raise ValueError(f"larger than {_SECRET_LIMIT} bytes: not a secret")
    return data.decode("utf-8")


def read_transfer(
    report: Report, sec: Section | None, keys: dict[str, TsigKey]
) -> Transfer | None:
    """The ``transfer`` section; None (no transfers at all) when absent."""
    if sec is None:
        return None
    allow_node = sec.require("allow")
    allow = Networks(()) if allow_node is None else read_networks(
        report, allow_node, sec.field("allow")
    )
    key: TsigKey | None = None
    key_node = sec.take("key")
    if key_node is not None:
        name = read_text(report, key_node, sec.field("key"), "a key name from keys")
        if name is not None:
            key = keys.get(name)
            if key is None:
                known = ", ".join(keys) or "none defined"
                report.add(key_node, sec.field("key"), f"no key {name!r} in keys ({known})")
    targets: list[Target] = []
    notify_node = sec.take("notify")
    if notify_node is not None:
        for item, where in read_items(report, notify_node, sec.field("notify"), single=True):
            text = read_text(report, item, where, "an address, optionally with :port")
            target = None if text is None else parse_target(text)
            if target is None:
                if text is not None:
                    report.add(
                        item, where,
                        f"expected an address with an optional port (192.0.2.1, "
                        f"192.0.2.1:5300, [2001:db8::1]:5300), got {text!r}",
                    )
            else:
                targets.append(target)
    sec.done(("allow", "key", "notify"))
    return Transfer(allow, key, tuple(targets))


def parse_target(text: str) -> Target | None:
    """``addr``, ``addr:port``, ``[v6]:port`` or ``addr@port`` (BIND and Knot spelling)."""
    text = text.strip()
    host, port = text, DEFAULT_NOTIFY_PORT
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            return None
        host, rest = text[1:end], text[end + 1 :]
        if rest:
            if not rest.startswith(":") or not rest[1:].isdigit():
                return None
            port = int(rest[1:])
    elif "@" in text:
        host, _, number = text.rpartition("@")
        if not number.isdigit():
            return None
        port = int(number)
    elif text.count(":") == 1:
        host, _, number = text.partition(":")
        if not number.isdigit():
            return None
        port = int(number)
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return None
    if not 0 < port < 65536:
        return None
    return Target(str(address), port)


def read_queries(report: Report, sec: Section | None) -> QueryAcl | None:
    """The ``queries`` section; None (everyone may query) when absent."""
    if sec is None:
        return None
    allow_node = sec.require("allow")
    allow = Networks(()) if allow_node is None else read_networks(
        report, allow_node, sec.field("allow")
    )
    denied = sec.text("denied", "refuse")
    if denied not in ("refuse", "drop"):
        report.add(sec.take("denied"), sec.field("denied"),
                   f"expected refuse or drop, got {denied!r}")
        denied = "refuse"
    sec.done(("allow", "denied"))
    return QueryAcl(allow, "drop" if denied == "drop" else "refuse")
