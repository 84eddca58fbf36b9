"""Entry building: the store keys a token is published under, and its packed answer.

A token becomes one store entry per owner: in IP zones its network's key, in name and
hash zones one name per hash scheme (listformat.names), each holding the answer
:func:`zoned.answers.token_answer` packs from the token's TXT fields and return code.
The general sync path, ``zonepub import`` (JSON lines and rbldnsd datasets, which
build their IP entries themselves) and the benchmarks all publish through here, so a
token is published under the same keys whoever publishes it.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from listformat import names
from listformat.txt import TxtError
from publisher.errors import PublisherError
from zoned import keys
from zoned.answers import token_answer
from zoned.config import NetworkTooWide, ZoneConfig
from zoned.wire import name_labels

Fields = Mapping[str, int | float | str]


class RecordError(PublisherError, ValueError):
    """A record cannot be published; the message names the file and line."""


@dataclass(frozen=True)
class TokenRecord:
    """What is known of one token: where it came from, its TXT fields, an optional code."""

    source: str  # "file:line" for messages
    token: str
    fields: Fields
    code: ipaddress.IPv4Address | None = None


def owner_keys(config: ZoneConfig, token: str) -> list[bytes]:
    """Store keys a token is published under: its network, or one name per hash scheme.

    Raises OwnerNameError, and nothing else, when the token cannot be a name under the
    zone's scheme: text that is not UTF-8 (lone surrogates), an address with a NUL, a
    network wider than the zone's ``widest_prefix`` (never /0).
    """
    if not token.isascii():
        try:
            token.encode("utf-8")
        except UnicodeEncodeError:
            raise names.OwnerNameError(f"{token[:80]!r} is not UTF-8 text") from None
    if config.scheme.kind == "ip":
        if ":" not in token and "/" not in token:
            try:  # a single IPv4 address, the common token, without ipaddress objects
                packed = socket.inet_pton(socket.AF_INET, token)
                if socket.inet_ntop(socket.AF_INET, packed) == token:
                    return [keys.net_key_from(packed, 32)]
            except (OSError, ValueError):  # ValueError: an embedded NUL
                pass
        network = names.parse_network(token)
        try:
            config.widest_prefix.check(network)
        except NetworkTooWide as exc:
            raise names.OwnerNameError(str(exc)) from None
        return [keys.net_key(network)]
    return [
        keys.name_key([label.lower() for label in name_labels(owner)])
        for owner in names.owner_names(config.scheme, token)
    ]


def token_entries(config: ZoneConfig, token: str, fields: Fields,
                  code: ipaddress.IPv4Address | None = None) -> list[tuple[bytes, bytes]]:
    """Store (key, packed answer) pairs for one token: one per owner name or network.

    Raises RecordError saying what is wrong; the caller prefixes the place (a file's line,
    a Redis key), so an import and a sync word the same problem alike.
    """
    try:
        answer = token_answer(config, fields, code)
    except TxtError as exc:
        raise RecordError(str(exc)) from exc
    if answer is None:
        return []
    try:
        return [(key, answer) for key in owner_keys(config, token)]
    except names.OwnerNameError as exc:
        raise RecordError(f"token {token!r}: {exc}") from exc


def entries(config: ZoneConfig, record: TokenRecord) -> list[tuple[bytes, bytes]]:
    """:func:`token_entries` of one record, its problems named by the record's source."""
    try:
        return token_entries(config, record.token, record.fields, record.code)
    except RecordError as exc:
        raise RecordError(f"{record.source}: {exc}") from exc.__cause__


def record_entries(config: ZoneConfig, records: Iterable[TokenRecord], problems: list[str]
                   ) -> dict[bytes, bytes]:
    """The entries of ``records``, a later record's key replacing an earlier one's.

    A record that cannot be published is appended to ``problems`` (its source named)
    and left out; the caller decides whether any problem stops the write.
    """
    result: dict[bytes, bytes] = {}
    for record in records:
        try:
            result.update(entries(config, record))
        except RecordError as exc:
            problems.append(str(exc))
    return result
