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

This module parses and compiles; what the names do (extractors, object methods,
transforms) is :mod:`client.selectorfuncs`.

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

import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

from client.errors import ClientError
from client.facts import Facts
from client.selectorfuncs import (
    EXTRACTORS,
    LIST,
    STRING,
    STRING_METHODS,
    TRANSFORMS,
    UNSUPPORTED_EXTRACTORS,
    UNSUPPORTED_TRANSFORMS,
    Args,
    Extractor,
    Kind,
    Obj,
    ReceivedObj,
    Value,
    is_listed_url,
    sender_address,
    url_protocol,
)

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


class SelectorError(ClientError, ValueError):
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


def _map_objects(fn: Callable[[Obj], str | None]) -> Step:
    def step(value: Value) -> Value | None:
        assert isinstance(value, list)
        out = [fn(item) for item in value if isinstance(item, Obj)]
        return [v for v in out if v is not None]

    return step


def _on_object(fn: Callable[[Obj], str | None]) -> Step:
    def step(value: Value) -> Value | None:
        return fn(value) if isinstance(value, Obj) else None

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
        apply: Callable[[Obj], str | None] = lambda obj: obj.call(name)  # noqa: E731
        if kind.name == "object":
            return _on_object(apply), STRING
        return _map_objects(apply), LIST
    method = STRING_METHODS.get(name)
    if method is None:
        raise SelectorError(
            f"{kind} has no method {name!r}; known: {', '.join(sorted(STRING_METHODS))}",
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
        if call.name in UNSUPPORTED_TRANSFORMS:
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
    extractor: Extractor
    args: tuple[str, ...]
    steps: tuple[Step, ...]
    kind: Kind

    def run(self, facts: Facts) -> str | list[str] | None:
        value = self.extractor.get(facts, self.args)
        for step in self.steps:
            if value is None:
                return None
            value = step(value)
        if value is None or isinstance(value, Obj):
            return None
        if isinstance(value, list):
            return [v for v in value if isinstance(v, str)]
        return value


def _compile_one(ast: SelectorAst, text: str) -> _Compiled:
    call = ast.extractor
    extractor = EXTRACTORS.get(call.name)
    if extractor is None:
        if call.name in UNSUPPORTED_EXTRACTORS:
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
        if kind.name == "objects" and kind.cls is ReceivedObj:
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
