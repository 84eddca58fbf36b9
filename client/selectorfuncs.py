"""What a selector expression can call: the extractors, object methods and transforms.

The library :mod:`client.selectorlang` type-checks and compiles expressions against.
An extractor reads :class:`~client.facts.Facts` and yields a string, a list of strings,
or objects (an address, the IP, URLs, e-mails, header entries, Received headers), each
with its ``:method`` names and an implicit text.  A transform says which arguments it
takes and how it applies to a string or a list (Rspamd's ``types``/``map_type``);
:class:`Kind` is the static type both are checked with.  Rspamd's own tables are
``lua_selectors/extractors.lua``, ``transforms.lua`` and ``common.lua``.
"""

from __future__ import annotations

import abc
import email.errors
import email.header
import email.utils
import functools
import hashlib
import ipaddress
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import ClassVar, Literal
from urllib.parse import urlsplit

from client.facts import Facts, Url
from client.received import Received
from client.tld import etld1
from listformat.hashing import digest as _digest
from listformat.hashing import encode as _encode

__all__ = [
    "EXTRACTORS",
    "LIST",
    "STRING",
    "STRING_METHODS",
    "TRANSFORMS",
    "UNSUPPORTED_EXTRACTORS",
    "UNSUPPORTED_TRANSFORMS",
    "Args",
    "Extractor",
    "Kind",
    "Obj",
    "ReceivedObj",
    "Transform",
    "Value",
    "is_listed_url",
    "sender_address",
    "url_protocol",
]

# ------------------------------------------------------------------- object values


class Obj(abc.ABC):
    """An extractor's object: converted to text implicitly, or by a method after ':'."""

    methods: ClassVar[frozenset[str]] = frozenset()

    @abc.abstractmethod
    def text(self) -> str | None:
        """The object as Rspamd converts it to a string."""

    @abc.abstractmethod
    def call(self, name: str) -> str | None:
        """The value of method ``name`` (one of ``methods``)."""


def _split_address(addr: str) -> tuple[str, str]:
    user, at, domain = addr.rpartition("@")
    return (user, domain) if at else (addr, "")


@dataclass(frozen=True)
class _Address(Obj):
    """Rspamd's address table: ``addr``, ``user``, ``domain``, ``name``."""

    addr: str
    user: str
    domain: str
    name: str

    methods: ClassVar[frozenset[str]] = frozenset({"addr", "user", "domain", "name", "raw"})

    @classmethod
    def of(cls, value: str, name: str = "") -> _Address:
        addr = value.strip()
        if addr.startswith("<") and addr.endswith(">"):
            addr = addr[1:-1]
        user, domain = _split_address(addr)
        return cls(addr, user, domain, name)

    def text(self) -> str:
        return self.addr

    def call(self, name: str) -> str | None:
        if name == "raw":
            return f"{self.name} <{self.addr}>" if self.name else f"<{self.addr}>"
        value: str = getattr(self, name)
        return value


@dataclass(frozen=True)
class _Ip(Obj):
    """The sender IP: its text and version (``ip:get_version``)."""

    address: ipaddress.IPv4Address | ipaddress.IPv6Address

    methods: ClassVar[frozenset[str]] = frozenset({"to_string", "tostring", "get_version"})

    def text(self) -> str:
        return str(self.address)

    def call(self, name: str) -> str | None:
        if name == "get_version":
            return str(self.address.version)
        return str(self.address)


_URL_METHODS = frozenset(
    {
        "get_host", "get_tld", "get_text", "tostring", "get_raw", "get_protocol", "get_path",
        "get_query", "get_fragment", "get_user", "get_port", "is_html_displayed",
        "is_redirected",
    }
)  # fmt: skip


@dataclass(frozen=True)
class _UrlObj(Obj):
    """A URL of the message, with the ``rspamd_url`` methods that need no more than Facts."""

    url: Url

    methods: ClassVar[frozenset[str]] = _URL_METHODS

    def text(self) -> str:
        return self.url.url

    def call(self, name: str) -> str | None:
        if name == "get_host":
            return self.url.host
        if name == "get_tld":
            return _tld(self.url.host)
        if name in ("get_text", "tostring", "get_raw"):
            return self.url.url
        if name == "is_html_displayed":
            return "true" if "html_displayed" in self.url.flags else "false"
        if name == "is_redirected":
            return "true" if "redirected" in self.url.flags else "false"
        try:
            parts = urlsplit(self.url.url)
            port = parts.port
        except ValueError:
            return None
        if name == "get_protocol":
            return parts.scheme.lower() or "http"
        # Rspamd gives nil, not an empty string, for a part the URL lacks.
        if name == "get_path":
            return parts.path.lstrip("/") or None
        if name == "get_query":
            return parts.query or None
        if name == "get_fragment":
            return parts.fragment or None
        if name == "get_user":
            return parts.username or None
        return str(port) if port is not None else None  # get_port


@dataclass(frozen=True)
class _Email(Obj):
    """An address found in the body, as Rspamd's mailto URL objects present it."""

    address: str

    methods: ClassVar[frozenset[str]] = frozenset(
        {"get_host", "get_tld", "get_user", "get_text", "tostring", "get_raw", "get_protocol"}
    )

    def text(self) -> str:
        return self.address

    def call(self, name: str) -> str | None:
        user, domain = _split_address(self.address)
        if name == "get_host":
            return domain
        if name == "get_tld":
            return _tld(domain)
        if name == "get_user":
            return user
        if name == "get_protocol":
            return "mailto"
        return self.address


@dataclass(frozen=True)
class _Header(Obj):
    """One header as ``header(name, 'full')`` gives it: name, value, decoded value."""

    name: str
    value: str
    raw: str

    methods: ClassVar[frozenset[str]] = frozenset({"name", "value", "raw", "decoded"})

    def text(self) -> str:
        return self.value

    def call(self, name: str) -> str | None:
        if name == "decoded":
            return _decode_header(self.value)
        value: str = getattr(self, name)
        return value


# Rspamd's Received table fields (task:get_received_headers()) and where Facts keep them.
_RECEIVED_FIELDS: Mapping[str, Callable[[Received], str | float | None]] = {
    "from_hostname": lambda r: r.from_hostname,
    "helo": lambda r: r.from_hostname,
    "real_hostname": lambda r: r.real_hostname,
    "real_ip": lambda r: r.real_ip,
    "from_ip": lambda r: r.real_ip,
    "by_hostname": lambda r: r.by_hostname,
    "proto": lambda r: r.proto,
    "for": lambda r: r.for_addr,
    "timestamp": lambda r: r.timestamp,
}


def _received_field(received: Received, name: str) -> str | None:
    """A field of a Received header under Rspamd's name, as Lua's tostring shows it."""
    value = _RECEIVED_FIELDS[name](received)
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    return value


@dataclass(frozen=True)
class ReceivedObj(Obj):
    """A parsed Received header; only its fields are usable (``received:from_ip``)."""

    received: Received

    methods: ClassVar[frozenset[str]] = frozenset(_RECEIVED_FIELDS)

    def text(self) -> str | None:
        return None

    def call(self, name: str) -> str | None:
        return _received_field(self.received, name)


def _tld(host: str) -> str | None:
    """eTLD+1 of ``host``, or None when there is no host to speak of."""
    host = host.strip()
    if not host:
        return None
    try:
        return etld1(host)
    except ValueError:
        return None


_FOLD = re.compile(r"\r?\n(?=[ \t])")


def _unfold(raw: str) -> str:
    return _FOLD.sub("", raw).strip()


def _decode_header(value: str) -> str:
    """RFC 2047 words decoded, as Rspamd's ``task:get_header`` returns them."""
    if "=?" not in value:
        return value
    try:
        return str(email.header.make_header(email.header.decode_header(value)))
    except (LookupError, ValueError, UnicodeError, email.errors.HeaderParseError):
        return value


# ---------------------------------------------------------------------- the types

KindName = Literal["string", "list", "object", "objects"]


@dataclass(frozen=True)
class Kind:
    """A value's static type: string, list of strings, or (a list of) one object class."""

    name: KindName
    cls: type[Obj] | None = None

    def __str__(self) -> str:
        if self.name == "object" and self.cls is not None:
            return f"an object ({self.cls.__name__.lstrip('_').lower()})"
        if self.name == "objects" and self.cls is not None:
            return f"a list of objects ({self.cls.__name__.lstrip('_').lower()})"
        return "a string" if self.name == "string" else "a list of strings"


STRING = Kind("string")
LIST = Kind("list")

Value = str | list[str] | Obj | list[Obj]
Args = tuple[str | int, ...]


# ---------------------------------------------------------------------- extractors


@dataclass(frozen=True)
class Extractor:
    arity: tuple[int, int]
    kind: Callable[[tuple[str, ...]], Kind]
    get: Callable[[Facts, tuple[str, ...]], Value | None]
    choices: tuple[tuple[str, ...], ...] = ()  # allowed values per argument, when fixed
    # Further checks of the arguments: the index of a bad one and why, or None.
    check: Callable[[tuple[str, ...]], tuple[int, str] | None] | None = None


def _header_flags(args: tuple[str, ...]) -> tuple[int, str] | None:
    # Rspamd matches the flags as patterns: any text that contains 'strong' or 'full'.
    if len(args) > 1 and "strong" not in args[1] and "full" not in args[1]:
        return 1, "the flags of 'header' are 'strong' and/or 'full'"
    return None


def _address_source(args: tuple[str, ...]) -> str:
    return args[0] if args else "any"


_SOURCES = ("smtp", "mime", "any", "envelope")


def _from(facts: Facts, args: tuple[str, ...]) -> Value | None:
    source = _address_source(args)
    if source in ("smtp", "envelope", "any") and facts.from_smtp is not None:
        return _Address.of(facts.from_smtp)
    if source in ("mime", "any") and facts.from_mime is not None:
        name = ""
        for header_name, addr in email.utils.getaddresses(_headers(facts, "from")):
            if addr.lower() == facts.from_mime.lower():
                name = header_name
                break
        return _Address.of(facts.from_mime, name)
    return None


def _mime_rcpts(facts: Facts) -> list[_Address]:
    raw = [*_headers(facts, "to"), *_headers(facts, "cc"), *_headers(facts, "bcc")]
    if not raw:
        # Facts.rcpts holds To/Cc addresses when no envelope recipients were given.
        return [_Address.of(rcpt) for rcpt in facts.rcpts]
    return [_Address.of(addr, name) for name, addr in email.utils.getaddresses(raw) if addr]


def _rcpt_list(facts: Facts, source: str) -> list[_Address]:
    if source in ("smtp", "envelope"):
        return [_Address.of(rcpt) for rcpt in facts.rcpts]
    if source == "mime":
        return _mime_rcpts(facts)
    # 'any': the envelope when there is one, else the headers (Rspamd's get_recipients(0)).
    return [_Address.of(rcpt) for rcpt in facts.rcpts] or _mime_rcpts(facts)


def _rcpts(facts: Facts, args: tuple[str, ...]) -> Value | None:
    found: list[Obj] = list(_rcpt_list(facts, _address_source(args)))
    return found or None


def _to(facts: Facts, args: tuple[str, ...]) -> Value | None:
    # task:get_principal_recipient(): the first envelope recipient, else the first header one.
    found = _rcpt_list(facts, "any")
    return found[0].addr if found else None


def _headers(facts: Facts, name: str) -> tuple[str, ...]:
    key = name.lower()
    values = facts.headers.get(key)
    if values is None:
        for other, found in facts.headers.items():
            if other.lower() == key:
                return tuple(found)
        return ()
    return tuple(values)


def _header(facts: Facts, args: tuple[str, ...]) -> Value | None:
    values = _headers(facts, args[0])
    if len(args) > 1 and "full" in args[1]:
        entries: list[Obj] = [_Header(args[0], _unfold(v), v) for v in values]
        return entries or None
    return _decode_header(_unfold(values[0])) if values else None


def _header_kind(args: tuple[str, ...]) -> Kind:
    return Kind("objects", _Header) if len(args) > 1 and "full" in args[1] else STRING


def _received(facts: Facts, args: tuple[str, ...]) -> Value | None:
    if not facts.received:
        return None
    if args:
        values = [_received_field(r, args[0]) for r in facts.received]
        return [v for v in values if v is not None]
    found: list[Obj] = [ReceivedObj(r) for r in facts.received]
    return found


def _urls(facts: Facts, args: tuple[str, ...]) -> Value | None:
    # task:get_urls(): web and file URLs, without images or inline content.
    urls = [
        _UrlObj(u) for u in facts.urls if url_protocol(u) in _WEB_PROTOCOLS and is_listed_url(u)
    ]
    if not urls:
        return None
    if args:
        values = [u.call(args[0]) for u in urls]
        return [v for v in values if v is not None]
    found: list[Obj] = list(urls)
    return found


def _emails(facts: Facts, args: tuple[str, ...]) -> Value | None:
    emails = [_Email(address) for address in facts.emails]
    if not emails:
        return None
    if args:
        values = [e.call(args[0]) for e in emails]
        return [v for v in values if v is not None]
    found: list[Obj] = list(emails)
    return found


# task:get_urls() protocols without need_emails (lua_task.c: default_protocols_mask).
_WEB_PROTOCOLS = frozenset({"http", "https", "ftp", "file"})


_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*")


def url_protocol(url: Url) -> str:
    """The URL's scheme as Rspamd names its protocol; bare host names count as http."""
    scheme, colon, _ = url.url.partition(":")
    if not colon or not _SCHEME.fullmatch(scheme):
        return "http"
    return scheme.lower()


_NOT_LISTED = frozenset({"image", "content"})


def is_listed_url(url: Url) -> bool:
    """Whether ``task:get_urls()`` returns ``url``: not an image or inline content."""
    return url.flags.isdisjoint(_NOT_LISTED)


def sender_address(text: str | None) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The sender IP as Rspamd parses it (IPv4-mapped IPv6 as IPv4), or None if invalid."""
    if not text:
        return None
    return _sender_address(text)


@functools.lru_cache(maxsize=4096)
def _sender_address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """Parsed once per check, not once per rule: ip, rule_applies and ip() all ask."""
    try:
        address = ipaddress.ip_address(text.strip().removeprefix("[").removesuffix("]"))
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _ip(facts: Facts, args: tuple[str, ...]) -> Value | None:
    address = sender_address(facts.ip)
    return None if address is None else _Ip(address)


def _scalar(getter: Callable[[Facts], str | None]) -> Extractor:
    return Extractor((0, 0), lambda _: STRING, lambda facts, _: getter(facts))


def _subject(facts: Facts) -> str | None:
    if facts.subject is not None:
        return facts.subject
    values = _headers(facts, "subject")
    return _decode_header(_unfold(values[0])) if values else None


def _id(facts: Facts, args: tuple[str, ...]) -> Value | None:
    return args[0] if args else ""


EXTRACTORS: Mapping[str, Extractor] = {
    "ip": Extractor((0, 0), lambda _: Kind("object", _Ip), _ip),
    "from": Extractor(
        (0, 2), lambda _: Kind("object", _Address), _from, (_SOURCES, ("orig",))
    ),
    "rcpts": Extractor(
        (0, 2), lambda _: Kind("objects", _Address), _rcpts, (_SOURCES, ("orig",))
    ),
    "to": Extractor((0, 0), lambda _: STRING, _to),
    "helo": _scalar(lambda f: f.helo),
    "hostname": _scalar(lambda f: f.hostname),
    "user": _scalar(lambda f: f.user),
    "subject": _scalar(_subject),
    "asn": _scalar(lambda f: f.asn),
    "country": _scalar(lambda f: f.country),
    "header": Extractor((1, 2), _header_kind, _header, check=_header_flags),
    "received": Extractor(
        (0, 1),
        lambda a: LIST if a else Kind("objects", ReceivedObj),
        _received,
        (tuple(sorted(_RECEIVED_FIELDS)),),
    ),
    "urls": Extractor(
        (0, 1),
        lambda a: LIST if a else Kind("objects", _UrlObj),
        _urls,
        (tuple(sorted(_URL_METHODS)),),
    ),
    "emails": Extractor(
        (0, 1),
        lambda a: LIST if a else Kind("objects", _Email),
        _emails,
        (tuple(sorted(_Email.methods)),),
    ),
    "id": Extractor((0, 1), lambda _: STRING, _id),
    "list": Extractor((0, 64), lambda _: LIST, lambda _, a: list(a)),
}

# Rspamd extractors that need what Facts do not hold: named so the error says so.
UNSUPPORTED_EXTRACTORS = frozenset(
    {"digest", "attachments", "files", "languages", "specific_urls", "urls_filtered",
     "pool_var", "task_cache", "request_header", "time", "words", "queueid", "uid",
     "messageid", "symbol", "scan_result", "metatokens"}
)  # fmt: skip


# ---------------------------------------------------------------------- transforms


def _ascii_lower(value: str) -> str:
    # Lua's string.lower changes ASCII letters only.
    return value.translate(_ASCII_LOWER)


def _ascii_upper(value: str) -> str:
    return value.translate(_ASCII_UPPER)


_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")
_ASCII_UPPER = str.maketrans("abcdefghijklmnopqrstuvwxyz", "ABCDEFGHIJKLMNOPQRSTUVWXYZ")

# common.lua: blake2 digests are keyed with blake2b("rspamd") "to be compatible with
# various get_digest methods".
_DIGEST_KEY = hashlib.blake2b(b"rspamd", digest_size=64).digest()
_DIGEST_ENCODINGS = {"hex": "hex", "base32": "base32", "bleach32": "bleach",
                     "rbase32": "rbase32", "base64": "base64"}  # fmt: skip
_DIGEST_ALGS = ("blake2", "sha256", "sha1", "sha512", "md5")


def _digest_of(value: str, args: Args) -> str:
    encoding = str(args[0]) if args else "hex"
    alg = str(args[1]) if len(args) > 1 else "blake2"
    data = value.encode("utf-8", "surrogateescape")
    if alg == "blake2":
        raw = hashlib.blake2b(data, key=_DIGEST_KEY, digest_size=64).digest()
    else:
        raw = _digest(alg, data)
    return _encode(_DIGEST_ENCODINGS[encoding], raw)


def _lua_sub(value: str, args: Args) -> str:
    """Lua's ``string.sub`` over UTF-8 bytes: 1-based, inclusive, negative from the end."""
    data = value.encode("utf-8", "surrogateescape")
    size = len(data)
    start = int(args[0]) if args else 1
    end = int(args[1]) if len(args) > 1 else -1
    if start < 0:
        start = max(size + start + 1, 1)
    elif start == 0:
        start = 1
    if end < 0:
        end = size + end + 1
    elif end > size:
        end = size
    if start > end:
        return ""
    return data[start - 1 : end].decode("utf-8", "replace")


def _ipmask(value: str, args: Args) -> str | None:
    try:
        address = ipaddress.ip_address(value.strip())
    except ValueError:
        return None
    mask = int(args[0]) if address.version == 4 or len(args) < 2 else int(args[1])
    if not 0 <= mask <= address.max_prefixlen:
        return None
    return str(ipaddress.ip_network(f"{address}/{mask}", strict=False).network_address)


def _to_ascii(value: str, replacement: str) -> str:
    # Lua works on bytes: every byte of a non-ASCII character is replaced.
    return "".join(
        ch if ord(ch) < 0x80 else replacement * len(ch.encode("utf-8", "surrogateescape"))
        for ch in value
    )


def _email_addr(value: str) -> str | None:
    _, addr = email.utils.parseaddr(value)
    return addr or None


def _email_part(value: str, part: Literal["user", "domain"]) -> str | None:
    addr = _email_addr(value) or value.strip()
    user, at, domain = addr.rpartition("@")
    if not at:
        return None
    return user if part == "user" else domain


def _nth(values: list[str], n: int) -> str | None:
    return values[n - 1] if 1 <= n <= len(values) else None


def _uniq(values: list[str]) -> list[str]:
    return list(dict.fromkeys(values))


@dataclass(frozen=True)
class Transform:
    """How one transform applies, after Rspamd's ``types``/``map_type`` rules.

    ``on_string`` applies to a string and, when ``maps``, to each element of a list (the
    elements it turns into None are dropped); ``on_list`` applies to a whole list.
    """

    arity: tuple[int, int] = (0, 0)
    on_string: Callable[[str, Args], Value | None] | None = None
    on_list: Callable[[list[str], Args], Value | None] | None = None
    maps: bool = True
    string_kind: Callable[[Args], Kind] = lambda _: STRING
    list_kind: Callable[[Args], Kind] = lambda _: LIST
    numeric: tuple[bool, ...] = ()  # which arguments are integers
    choices: tuple[tuple[str, ...], ...] = ()
    minimum: int | None = None  # smallest value a numeric argument may take


def _str_fn(fn: Callable[[str], str | None]) -> Callable[[str, Args], Value | None]:
    return lambda value, _: fn(value)


def _first(values: list[str], _: Args) -> str | None:
    return values[0] if values else None


def _last(values: list[str], _: Args) -> str | None:
    return values[-1] if values else None


def _id_value(args: Args) -> Value:
    if len(args) >= 2:
        return [str(a) for a in args]
    return str(args[0]) if args else ""


def _id_kind(args: Args) -> Kind:
    return LIST if len(args) >= 2 else STRING


def _in(value: str, args: Args) -> str | None:
    return value if value in args else None


def _not_in(value: str, args: Args) -> str | None:
    return None if value in args else value


TRANSFORMS: Mapping[str, Transform] = {
    "lower": Transform(on_string=_str_fn(_ascii_lower)),
    "lower_utf8": Transform(on_string=_str_fn(str.lower)),
    "upper": Transform(on_string=_str_fn(_ascii_upper)),
    "first": Transform(on_list=_first, list_kind=lambda _: STRING),
    "last": Transform(on_list=_last, list_kind=lambda _: STRING),
    "nth": Transform(
        (1, 1),
        on_list=lambda v, a: _nth(v, int(a[0])),
        list_kind=lambda _: STRING,
        numeric=(True,),
        minimum=1,
    ),
    "take_n": Transform(
        (0, 1), on_list=lambda v, a: v[: int(a[0]) if a else 1], numeric=(True,), minimum=0
    ),
    "drop_n": Transform(
        (0, 1), on_list=lambda v, a: v[int(a[0]) if a else 1 :], numeric=(True,), minimum=0
    ),
    "join": Transform(
        (0, 1), on_list=lambda v, a: (str(a[0]) if a else "").join(v),
        list_kind=lambda _: STRING,
    ),  # fmt: skip
    "sort": Transform(on_list=lambda v, _: sorted(v)),
    "uniq": Transform(on_list=lambda v, _: _uniq(v)),
    "digest": Transform(
        (0, 2), on_string=_digest_of, choices=(tuple(_DIGEST_ENCODINGS), _DIGEST_ALGS)
    ),
    "substring": Transform((0, 2), on_string=_lua_sub, numeric=(True, True)),
    "prepend": Transform((0, 64), on_string=lambda v, a: "".join(map(str, a)) + v),
    "append": Transform((0, 64), on_string=lambda v, a: v + "".join(map(str, a))),
    "id": Transform(
        (0, 64),
        on_string=lambda _, a: _id_value(a),
        on_list=lambda _, a: _id_value(a),
        string_kind=_id_kind,
        list_kind=_id_kind,
    ),
    "equal": Transform((1, 1), on_string=lambda v, a: v if v == a[0] else None),
    "in": Transform((0, 64), on_string=_in),
    "not_in": Transform((0, 64), on_string=_not_in),
    "ipmask": Transform((1, 2), on_string=_ipmask, numeric=(True, True), minimum=0),
    "to_ascii": Transform(
        (0, 1),
        on_string=lambda v, _: _to_ascii(v, "?"),
        on_list=lambda v, a: [_to_ascii(s, str(a[0]) if a else "?") for s in v],
    ),
    "get_tld": Transform(on_string=_str_fn(_tld)),
    "filter_string_nils": Transform(on_list=lambda v, _: [s for s in v if s != "nil"]),
    # repzone's: the parts of an e-mail address, so that '.domain' reads like ':domain'.
    "addr": Transform(on_string=_str_fn(_email_addr)),
    "domain": Transform(on_string=_str_fn(lambda v: _email_part(v, "domain"))),
    "user": Transform(on_string=_str_fn(lambda v: _email_part(v, "user"))),
}

UNSUPPORTED_TRANSFORMS = frozenset(
    {"regexp", "match", "filter_map", "except_map", "apply_map", "inverse", "pack_numbers"}
)

# Lua string methods usable as ':method' on a string value.
STRING_METHODS: Mapping[str, Callable[[str], str]] = {
    "lower": _ascii_lower,
    "upper": _ascii_upper,
    "len": lambda v: str(len(v.encode("utf-8", "surrogateescape"))),
}

