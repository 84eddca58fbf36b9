"""A subset of Rspamd's selector language, parsed once and evaluated over Facts.

Rspamd's generic reputation rule keys its counters by what a selector expression yields
(``lualib/lua_selectors``), so the client must evaluate the same expression to the same
strings to find the same tokens.  Grammar and type rules follow Rspamd 3.4
(``lua_selectors/init.lua``: ``make_grammar``, ``process_selector``, ``combine_selectors``)::

    list  := expr (spc [;*] spc expr)*
    expr  := call (':' method)? ('.' call)*
    call  := atom spc ('(' spc (arg (spc ',' spc)*)* spc ')')?
    arg   := atom | 'single quoted' | "double quoted"     (backslashes are kept as written)
    atom  := one or more of [A-Za-z0-9_-] or non-ASCII characters
    spc   := [ \\t\\n]*

An extractor yields a string, a list of strings, or objects (an address, the IP, URLs,
header entries, Received headers).  Objects become strings through the method after
``:`` (``from:domain``, ``urls:get_host``, ``received:by_hostname``) or, without one,
implicitly: an address is its ``addr``, a header entry its value, anything else its
text.  On a string, ``:`` calls a Lua string method (``lower``, ``upper``, ``len``).
A transform that takes a string is mapped over a list, dropping elements it turns into
nothing; one that takes a list gets the whole list.  Selectors joined by ``;`` are
zipped element by element and joined with a delimiter (``:`` in the reputation plugin);
when any of them yields nothing the expression yields nothing.

Differences from Rspamd, on purpose:

- Rspamd silently ignores whatever follows the longest prefix it can parse
  (``ip.lower junk`` is ``ip.lower``) and only logs, per message, a transform applied to
  the wrong type; here both are :class:`SelectorError` at parse time, as are unknown
  names and bad arguments.  Numeric arguments must be integers.
- Extensions: extractors ``subject`` and ``hostname``; transforms ``domain``, ``addr`` and
  ``user`` (parts of an e-mail address, so ``from.domain`` equals ``from:domain``) and
  ``upper``.  ``uniq`` keeps first occurrences in order (Rspamd's order is a hash's).
- Not supported (a :class:`SelectorError` that says so): names that need what Facts do
  not carry (maps, regexps, attachments, words, symbols, time...), ``{...}`` table
  arguments, a second argument list, and ``received`` without a field (Rspamd would
  print a Lua table).
- ``header(name, 'strong')`` matches the name case-insensitively: Facts keep lowercased
  names.  Header values are unfolded and trimmed; ``header()`` decodes RFC 2047 words.
"""

from __future__ import annotations

import email.errors
import email.header
import email.utils
import hashlib
import ipaddress
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import ClassVar, Literal
from urllib.parse import urlsplit

from client.facts import Facts, Received, Url
from client.hashing import digest as _digest
from client.hashing import encode as _encode
from client.tld import etld1

__all__ = [
    "EXTRACTORS",
    "TRANSFORMS",
    "Expression",
    "SelectorError",
    "compile_expression",
    "evaluate",
    "is_listed_url",
    "parse",
    "sender_address",
    "url_protocol",
]

# --------------------------------------------------------------------------- errors


class SelectorError(ValueError):
    """The expression cannot be used; ``position`` is the offending character's index."""

    def __init__(self, message: str, position: int, expression: str = "") -> None:
        super().__init__(message, position, expression)
        self.message = message
        self.position = position
        self.expression = expression

    def __str__(self) -> str:
        if not self.expression:
            return f"{self.message} (at position {self.position})"
        # One display column per character: control whitespace would break the caret.
        shown = re.sub(r"[\t\n\r\f\v]", " ", self.expression)
        caret = " " * min(self.position, len(shown)) + "^"
        return f"{self.message} (at position {self.position})\n  {shown}\n  {caret}"


# ----------------------------------------------------------------------------- AST


@dataclass(frozen=True)
class Call:
    """One name with its arguments, and where each stands in the expression."""

    name: str
    args: tuple[str, ...]
    position: int
    arg_positions: tuple[int, ...]
    end: int  # index just past the call, for errors about what follows it


@dataclass(frozen=True)
class SelectorAst:
    """One ``;``-separated selector: extractor, optional method, transforms."""

    extractor: Call
    method: Call | None
    transforms: tuple[Call, ...]


_SPACE = " \t\n"
_ATOM_ASCII = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-")


def _is_atom_char(ch: str) -> bool:
    # Rspamd's atom also takes UTF-8 multibyte sequences: any non-ASCII character here.
    return ch in _ATOM_ASCII or ord(ch) > 0x7F


class _Parser:
    """Recursive descent over Rspamd's selector grammar, remembering positions."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def error(self, message: str, position: int | None = None) -> SelectorError:
        return SelectorError(message, self.pos if position is None else position, self.text)

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def skip_space(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos] in _SPACE:
            self.pos += 1

    def describe(self) -> str:
        ch = self.peek()
        return "end of expression" if not ch else repr(ch)

    def atom(self, what: str) -> tuple[str, int]:
        start = self.pos
        while self.pos < len(self.text) and _is_atom_char(self.text[self.pos]):
            self.pos += 1
        if self.pos == start:
            raise self.error(f"expected {what}, found {self.describe()}")
        return self.text[start : self.pos], start

    def quoted(self) -> tuple[str, int]:
        quote = self.text[self.pos]
        start = self.pos
        self.pos += 1
        while self.pos < len(self.text):
            ch = self.text[self.pos]
            if ch == quote:
                self.pos += 1
                return self.text[start + 1 : self.pos - 1], start
            if ch in "\r\n\f":
                break
            # A backslash escapes the next character but stays in the value, as in Rspamd.
            self.pos += 2 if ch == "\\" else 1
        raise self.error(f"unterminated {quote}-quoted string", start)

    def argument(self) -> tuple[str, int] | None:
        ch = self.peek()
        if ch in ("'", '"'):
            return self.quoted()
        if ch == "{":
            raise self.error("table arguments {...} are not supported")
        if ch and _is_atom_char(ch):
            return self.atom("an argument")
        return None

    def call(self, what: str) -> Call:
        name, start = self.atom(what)
        self.skip_space()
        args: list[str] = []
        positions: list[int] = []
        if self.peek() == "(":
            self.pos += 1
            self.skip_space()
            while True:
                arg = self.argument()
                if arg is None:
                    break
                args.append(arg[0])
                positions.append(arg[1])
                # Rspamd allows any number of commas (even none) after an argument.
                while True:
                    save = self.pos
                    self.skip_space()
                    if self.peek() == ",":
                        self.pos += 1
                        self.skip_space()
                    else:
                        self.pos = save
                        break
            self.skip_space()
            if self.peek() != ")":
                if self.peek() in ("'", '"') or (self.peek() and _is_atom_char(self.peek())):
                    raise self.error(f"expected ',' or ')' in the arguments of {name!r}")
                if not self.peek():
                    raise self.error(f"unbalanced '(': arguments of {name!r} are not closed")
                raise self.error(f"expected ')' to close the arguments of {name!r}, "
                                 f"found {self.describe()}")
            self.pos += 1
            if self.peek() == "(":
                raise self.error(f"a second argument list for {name!r} is not supported")
        return Call(name, tuple(args), start, tuple(positions), self.pos)

    def selector(self) -> SelectorAst:
        extractor = self.call("an extractor name")
        method = None
        if self.peek() == ":":
            self.pos += 1
            method = self.call("a method name after ':'")
        transforms: list[Call] = []
        while self.peek() == ".":
            self.pos += 1
            transforms.append(self.call("a transform name after '.'"))
        return SelectorAst(extractor, method, tuple(transforms))

    def parse(self) -> tuple[SelectorAst, ...]:
        if not self.text.strip(_SPACE):
            raise self.error("empty selector expression")
        selectors = [self.selector()]
        while True:
            save = self.pos
            self.skip_space()
            if self.peek() in (";", "*") and self.peek():
                self.pos += 1
                self.skip_space()
                selectors.append(self.selector())
                continue
            self.pos = save
            break
        self.skip_space()
        if self.pos < len(self.text):
            ch = self.peek()
            if ch == ")":
                raise self.error("unbalanced ')'")
            if ch == ":":
                raise self.error("a method (':name') must follow the extractor directly")
            raise self.error(f"unexpected {self.describe()}")
        return tuple(selectors)


def parse(text: str) -> tuple[SelectorAst, ...]:
    """The syntax tree of ``text``; :class:`SelectorError` on a syntax error."""
    return _Parser(text).parse()


# ------------------------------------------------------------------- object values


class _Obj:
    """An extractor's object: converted to text implicitly, or by a method after ':'."""

    methods: ClassVar[frozenset[str]] = frozenset()

    def text(self) -> str | None:
        raise NotImplementedError

    def call(self, name: str) -> str | None:
        raise NotImplementedError


def _split_address(addr: str) -> tuple[str, str]:
    user, at, domain = addr.rpartition("@")
    return (user, domain) if at else (addr, "")


@dataclass(frozen=True)
class _Address(_Obj):
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
class _Ip(_Obj):
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
class _UrlObj(_Obj):
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
class _Email(_Obj):
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
class _Header(_Obj):
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
class _Received(_Obj):
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


def _unfold(raw: str) -> str:
    return re.sub(r"\r?\n(?=[ \t])", "", raw).strip()


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
    cls: type[_Obj] | None = None

    def __str__(self) -> str:
        if self.name == "object" and self.cls is not None:
            return f"an object ({self.cls.__name__.lstrip('_').lower()})"
        if self.name == "objects" and self.cls is not None:
            return f"a list of objects ({self.cls.__name__.lstrip('_').lower()})"
        return "a string" if self.name == "string" else "a list of strings"


STRING = Kind("string")
LIST = Kind("list")

Value = str | list[str] | _Obj | list[_Obj]
Args = tuple[str | int, ...]


# ---------------------------------------------------------------------- extractors


@dataclass(frozen=True)
class _Extractor:
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
    found: list[_Obj] = list(_rcpt_list(facts, _address_source(args)))
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
        entries: list[_Obj] = [_Header(args[0], _unfold(v), v) for v in values]
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
    found: list[_Obj] = [_Received(r) for r in facts.received]
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
    found: list[_Obj] = list(urls)
    return found


def _emails(facts: Facts, args: tuple[str, ...]) -> Value | None:
    emails = [_Email(address) for address in facts.emails]
    if not emails:
        return None
    if args:
        values = [e.call(args[0]) for e in emails]
        return [v for v in values if v is not None]
    found: list[_Obj] = list(emails)
    return found


# task:get_urls() protocols without need_emails (lua_task.c: default_protocols_mask).
_WEB_PROTOCOLS = frozenset({"http", "https", "ftp", "file"})


def url_protocol(url: Url) -> str:
    """The URL's scheme as Rspamd names its protocol; bare host names count as http."""
    scheme, colon, _ = url.url.partition(":")
    if not colon or not re.fullmatch(r"[A-Za-z][A-Za-z0-9+.-]*", scheme):
        return "http"
    return scheme.lower()


def is_listed_url(url: Url) -> bool:
    """Whether ``task:get_urls()`` returns ``url``: not an image or inline content."""
    return not url.flags & {"image", "content"}


def sender_address(text: str | None) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The sender IP as Rspamd parses it (IPv4-mapped IPv6 as IPv4), or None if invalid."""
    if not text:
        return None
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


def _scalar(getter: Callable[[Facts], str | None]) -> _Extractor:
    return _Extractor((0, 0), lambda _: STRING, lambda facts, _: getter(facts))


def _subject(facts: Facts) -> str | None:
    if facts.subject is not None:
        return facts.subject
    values = _headers(facts, "subject")
    return _decode_header(_unfold(values[0])) if values else None


def _id(facts: Facts, args: tuple[str, ...]) -> Value | None:
    return args[0] if args else ""


EXTRACTORS: Mapping[str, _Extractor] = {
    "ip": _Extractor((0, 0), lambda _: Kind("object", _Ip), _ip),
    "from": _Extractor(
        (0, 2), lambda _: Kind("object", _Address), _from, (_SOURCES, ("orig",))
    ),
    "rcpts": _Extractor(
        (0, 2), lambda _: Kind("objects", _Address), _rcpts, (_SOURCES, ("orig",))
    ),
    "to": _Extractor((0, 0), lambda _: STRING, _to),
    "helo": _scalar(lambda f: f.helo),
    "hostname": _scalar(lambda f: f.hostname),
    "user": _scalar(lambda f: f.user),
    "subject": _scalar(_subject),
    "asn": _scalar(lambda f: f.asn),
    "country": _scalar(lambda f: f.country),
    "header": _Extractor((1, 2), _header_kind, _header, check=_header_flags),
    "received": _Extractor(
        (0, 1),
        lambda a: LIST if a else Kind("objects", _Received),
        _received,
        (tuple(sorted(_RECEIVED_FIELDS)),),
    ),
    "urls": _Extractor(
        (0, 1),
        lambda a: LIST if a else Kind("objects", _UrlObj),
        _urls,
        (tuple(sorted(_URL_METHODS)),),
    ),
    "emails": _Extractor(
        (0, 1),
        lambda a: LIST if a else Kind("objects", _Email),
        _emails,
        (tuple(sorted(_Email.methods)),),
    ),
    "id": _Extractor((0, 1), lambda _: STRING, _id),
    "list": _Extractor((0, 64), lambda _: LIST, lambda _, a: list(a)),
}

# Rspamd extractors that need what Facts do not hold: named so the error says so.
_UNSUPPORTED_EXTRACTORS = frozenset(
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
class _Transform:
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


TRANSFORMS: Mapping[str, _Transform] = {
    "lower": _Transform(on_string=_str_fn(_ascii_lower)),
    "lower_utf8": _Transform(on_string=_str_fn(str.lower)),
    "upper": _Transform(on_string=_str_fn(_ascii_upper)),
    "first": _Transform(on_list=_first, list_kind=lambda _: STRING),
    "last": _Transform(on_list=_last, list_kind=lambda _: STRING),
    "nth": _Transform(
        (1, 1),
        on_list=lambda v, a: _nth(v, int(a[0])),
        list_kind=lambda _: STRING,
        numeric=(True,),
        minimum=1,
    ),
    "take_n": _Transform(
        (0, 1), on_list=lambda v, a: v[: int(a[0]) if a else 1], numeric=(True,), minimum=0
    ),
    "drop_n": _Transform(
        (0, 1), on_list=lambda v, a: v[int(a[0]) if a else 1 :], numeric=(True,), minimum=0
    ),
    "join": _Transform(
        (0, 1), on_list=lambda v, a: (str(a[0]) if a else "").join(v),
        list_kind=lambda _: STRING,
    ),  # fmt: skip
    "sort": _Transform(on_list=lambda v, _: sorted(v)),
    "uniq": _Transform(on_list=lambda v, _: _uniq(v)),
    "digest": _Transform(
        (0, 2), on_string=_digest_of, choices=(tuple(_DIGEST_ENCODINGS), _DIGEST_ALGS)
    ),
    "substring": _Transform((0, 2), on_string=_lua_sub, numeric=(True, True)),
    "prepend": _Transform((0, 64), on_string=lambda v, a: "".join(map(str, a)) + v),
    "append": _Transform((0, 64), on_string=lambda v, a: v + "".join(map(str, a))),
    "id": _Transform(
        (0, 64),
        on_string=lambda _, a: _id_value(a),
        on_list=lambda _, a: _id_value(a),
        string_kind=_id_kind,
        list_kind=_id_kind,
    ),
    "equal": _Transform((1, 1), on_string=lambda v, a: v if v == a[0] else None),
    "in": _Transform((0, 64), on_string=_in),
    "not_in": _Transform((0, 64), on_string=_not_in),
    "ipmask": _Transform((1, 2), on_string=_ipmask, numeric=(True, True), minimum=0),
    "to_ascii": _Transform(
        (0, 1),
        on_string=lambda v, _: _to_ascii(v, "?"),
        on_list=lambda v, a: [_to_ascii(s, str(a[0]) if a else "?") for s in v],
    ),
    "get_tld": _Transform(on_string=_str_fn(_tld)),
    "filter_string_nils": _Transform(on_list=lambda v, _: [s for s in v if s != "nil"]),
    # repzone's: the parts of an e-mail address, so that '.domain' reads like ':domain'.
    "addr": _Transform(on_string=_str_fn(_email_addr)),
    "domain": _Transform(on_string=_str_fn(lambda v: _email_part(v, "domain"))),
    "user": _Transform(on_string=_str_fn(lambda v: _email_part(v, "user"))),
}

_UNSUPPORTED_TRANSFORMS = frozenset(
    {"regexp", "match", "filter_map", "except_map", "apply_map", "inverse", "pack_numbers"}
)

# Lua string methods usable as ':method' on a string value.
_STRING_METHODS: Mapping[str, Callable[[str], str]] = {
    "lower": _ascii_lower,
    "upper": _ascii_upper,
    "len": lambda v: str(len(v.encode("utf-8", "surrogateescape"))),
}


# ------------------------------------------------------------------------ compiling

Step = Callable[[Value], Value | None]


def _check_args(
    call: Call, arity: tuple[int, int], what: str, text: str,
    numeric: tuple[bool, ...] = (), choices: tuple[tuple[str, ...], ...] = (),
    minimum: int | None = None,
) -> Args:  # fmt: skip
    low, high = arity
    count = len(call.args)
    if not low <= count <= high:
        if high == 0:
            expected = "no arguments"
        elif low == high:
            expected = f"{low} argument{'s' if low != 1 else ''}"
        else:
            expected = f"{low} to {high} arguments"
        where = call.arg_positions[high] if count > high else call.position
        raise SelectorError(
            f"{what} {call.name!r} takes {expected}, got {count}", where, text
        )
    parsed: list[str | int] = []
    for index, (arg, position) in enumerate(zip(call.args, call.arg_positions, strict=True)):
        if index < len(numeric) and numeric[index]:
            if not re.fullmatch(r"-?[0-9]{1,9}", arg):
                raise SelectorError(
                    f"argument {index + 1} of {call.name!r} must be an integer, not {arg!r}",
                    position, text,
                )  # fmt: skip
            number = int(arg)
            if minimum is not None and number < minimum:
                raise SelectorError(
                    f"argument {index + 1} of {call.name!r} must be at least {minimum}",
                    position, text,
                )  # fmt: skip
            parsed.append(number)
            continue
        if index < len(choices) and choices[index] and arg not in choices[index]:
            raise SelectorError(
                f"argument {index + 1} of {call.name!r} must be one of "
                f"{', '.join(choices[index])}; got {arg!r}",
                position, text,
            )  # fmt: skip
        parsed.append(arg)
    return tuple(parsed)


def _map_objects(fn: Callable[[_Obj], str | None]) -> Step:
    def step(value: Value) -> Value | None:
        assert isinstance(value, list)
        out = [fn(item) for item in value if isinstance(item, _Obj)]
        return [v for v in out if v is not None]

    return step


def _on_object(fn: Callable[[_Obj], str | None]) -> Step:
    def step(value: Value) -> Value | None:
        return fn(value) if isinstance(value, _Obj) else None

    return step


def _method_step(call: Call, kind: Kind, text: str) -> tuple[Step, Kind]:
    name = call.name
    if kind.name in ("object", "objects"):
        cls = kind.cls
        assert cls is not None
        if name not in cls.methods:
            raise SelectorError(
                f"{kind} has no method {name!r}; known: {', '.join(sorted(cls.methods))}",
                call.position, text,
            )  # fmt: skip
        _check_args(call, (0, 0), "method", text)
        apply: Callable[[_Obj], str | None] = lambda obj: obj.call(name)  # noqa: E731
        if kind.name == "object":
            return _on_object(apply), STRING
        return _map_objects(apply), LIST
    method = _STRING_METHODS.get(name)
    if method is None:
        raise SelectorError(
            f"{kind} has no method {name!r}; known: {', '.join(sorted(_STRING_METHODS))}",
            call.position, text,
        )  # fmt: skip
    _check_args(call, (0, 0), "method", text)
    if kind.name == "string":
        return (lambda v: method(v) if isinstance(v, str) else None), STRING
    return (lambda v: [method(s) for s in v if isinstance(s, str)]
            if isinstance(v, list) else None), LIST  # fmt: skip


def _implicit(kind: Kind) -> tuple[Step | None, Kind]:
    if kind.name == "object":
        return _on_object(lambda obj: obj.text()), STRING
    if kind.name == "objects":
        return _map_objects(lambda obj: obj.text()), LIST
    return None, kind


def _transform_step(call: Call, kind: Kind, text: str) -> tuple[Step, Kind]:
    spec = TRANSFORMS.get(call.name)
    if spec is None:
        if call.name in _UNSUPPORTED_TRANSFORMS:
            raise SelectorError(
                f"transform {call.name!r} is not supported here", call.position, text
            )
        if call.name in EXTRACTORS:
            raise SelectorError(
                f"{call.name!r} is an extractor, not a transform: start a new selector "
                "with ';'", call.position, text,
            )  # fmt: skip
        raise SelectorError(f"unknown transform {call.name!r}", call.position, text)
    args = _check_args(
        call, spec.arity, "transform", text, spec.numeric, spec.choices, spec.minimum
    )
    if kind.name == "string":
        on_string = spec.on_string
        if on_string is None:
            raise SelectorError(
                f"transform {call.name!r} takes a list, but gets a string", call.position, text
            )
        return (lambda v: on_string(v, args) if isinstance(v, str) else None), spec.string_kind(
            args
        )
    on_list = spec.on_list
    if on_list is not None:
        return (lambda v: on_list(v, args) if isinstance(v, list) else None), spec.list_kind(
            args
        )
    on_each = spec.on_string
    if on_each is None or not spec.maps:
        raise SelectorError(
            f"transform {call.name!r} cannot apply to a list", call.position, text
        )

    def mapped(value: Value) -> Value | None:
        if not isinstance(value, list):
            return None
        out: list[str] = []
        for item in value:
            if isinstance(item, str):
                result = on_each(item, args)
                if isinstance(result, str):
                    out.append(result)
        return out

    return mapped, LIST


@dataclass(frozen=True)
class _Compiled:
    ast: SelectorAst
    extractor: _Extractor
    args: tuple[str, ...]
    steps: tuple[Step, ...]
    kind: Kind

    def run(self, facts: Facts) -> str | list[str] | None:
        value = self.extractor.get(facts, self.args)
        for step in self.steps:
            if value is None:
                return None
            value = step(value)
        if value is None or isinstance(value, _Obj):
            return None
        if isinstance(value, list):
            return [v for v in value if isinstance(v, str)]
        return value


def _compile_one(ast: SelectorAst, text: str) -> _Compiled:
    call = ast.extractor
    extractor = EXTRACTORS.get(call.name)
    if extractor is None:
        if call.name in _UNSUPPORTED_EXTRACTORS:
            raise SelectorError(
                f"extractor {call.name!r} is not supported here", call.position, text
            )
        if call.name in TRANSFORMS:
            raise SelectorError(
                f"{call.name!r} is a transform: it needs an extractor before it "
                f"(e.g. from.{call.name})", call.position, text,
            )  # fmt: skip
        raise SelectorError(f"unknown extractor {call.name!r}", call.position, text)
    args = _check_args(call, extractor.arity, "extractor", text, choices=extractor.choices)
    if extractor.check is not None:
        problem = extractor.check(tuple(str(a) for a in args))
        if problem is not None:
            raise SelectorError(problem[1], call.arg_positions[problem[0]], text)
    str_args = tuple(str(a) for a in args)
    kind = extractor.kind(str_args)
    steps: list[Step] = []
    if ast.method is not None:
        step, kind = _method_step(ast.method, kind, text)
        steps.append(step)
    else:
        if kind.name == "objects" and kind.cls is _Received:
            raise SelectorError(
                "received needs a field: received('from_ip') or received:from_ip",
                call.position, text,
            )  # fmt: skip
        implicit, kind = _implicit(kind)
        if implicit is not None:
            steps.append(implicit)
    for transform in ast.transforms:
        step, kind = _transform_step(transform, kind, text)
        steps.append(step)
    return _Compiled(ast, extractor, str_args, tuple(steps), kind)


@dataclass(frozen=True)
class Expression:
    """A parsed, type-checked selector expression, ready to evaluate many times."""

    text: str
    selectors: tuple[_Compiled, ...]

    def values(self, facts: Facts) -> list[str | list[str]] | None:
        """Each selector's value, or None when any yields nothing (Rspamd's rule)."""
        out: list[str | list[str]] = []
        for selector in self.selectors:
            value = selector.run(facts)
            if value is None:
                return None
            out.append(value)
        return out

    def evaluate(self, facts: Facts, *, delimiter: str = ":") -> list[str]:
        """The strings Rspamd's ``create_selector_closure`` yields for these facts.

        One selector gives its string or its list; several are zipped element by element
        (a string repeats) and joined with ``delimiter``, stopping at the shortest list.
        """
        values = self.values(facts)
        if values is None:
            return []
        if all(isinstance(v, str) for v in values):
            return [delimiter.join(v for v in values if isinstance(v, str))]
        lists = [v for v in values if isinstance(v, list)]
        length = min(len(v) for v in lists)
        return [
            delimiter.join(v if isinstance(v, str) else v[i] for v in values)
            for i in range(length)
        ]

    def flatten(self, facts: Facts) -> list[str]:
        """Every string of every selector, in order (Rspamd's ``flatten_selectors``)."""
        values = self.values(facts)
        if values is None:
            return []
        out: list[str] = []
        for value in values:
            out.extend([value] if isinstance(value, str) else value)
        return out


def compile_expression(text: str) -> Expression:
    """Parse and type-check ``text``; :class:`SelectorError` names what is wrong, and where.

    Compiled expressions are immutable and cached, so evaluating a configured expression
    per message costs no parsing.
    """
    return _compile_cached(text)


@lru_cache(maxsize=256)
def _compile_cached(text: str) -> Expression:
    return Expression(text, tuple(_compile_one(ast, text) for ast in parse(text)))


def evaluate(text: str | Expression, facts: Facts, *, delimiter: str = ":") -> list[str]:
    """Shorthand: compile (unless given compiled) and evaluate over ``facts``."""
    expression = compile_expression(text) if isinstance(text, str) else text
    return expression.evaluate(facts, delimiter=delimiter)
