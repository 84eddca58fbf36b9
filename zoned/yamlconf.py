"""Positioned YAML reading: nodes into values, every mistake as ``file:line:column``.

A configuration mistake must stop a program before it acts wrongly, and the operator
fixing it wants every mistake at once, each as ``file:line:column: field: message``.
So a file is *composed* into YAML nodes (which carry their positions) rather than
loaded into plain dicts, walked field by field through :class:`Section` and the
``read_*`` functions, and every problem is collected in a :class:`Report` before one
:class:`ConfigError` is raised.  Unknown and duplicate keys are errors: a misspelt
``refersh`` silently falling back to a default is the bug this module exists to
prevent.

The readers know YAML and a few value formats (integers, numbers, booleans, domain
names, IPv4 addresses), never a schema: zoned reads its zone files with them
(:mod:`zoned.config`) and the publisher its ``source`` section.
"""

from __future__ import annotations

import difflib
import ipaddress
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import yaml

from zoned.errors import ZonedError

MAX_DEPTH = 64  # nesting no configuration needs; deeper input is refused before composing
MAX_INTEGER = 2**31 - 1  # Section.integer's bound unless told: the TTL limit (RFC 2181 8)
_LABEL = re.compile(r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?\Z")
_PLAIN_KEY = re.compile(r"[A-Za-z0-9_@-]+\Z")


# --------------------------------------------------------------------------- problems


@dataclass(frozen=True, slots=True)
class Problem:
    """One mistake in a configuration file; line and column are 1-based, 0 if unknown."""

    file: Path
    line: int
    column: int
    field: str  # path such as ``soa.refresh`` or ``ns[1]``; '' for the file as a whole
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}:{self.column}" if self.line else str(self.file)
        return (
            f"{where}: {self.field}: {self.message}" if self.field else f"{where}: {self.message}"
        )


class ConfigError(ZonedError):
    """A configuration is invalid; ``problems`` lists every mistake found."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = sorted(problems, key=lambda p: (str(p.file), p.line, p.column))
        super().__init__("\n".join(str(p) for p in self.problems))


class Report:
    """Collects the problems of one file, so reading goes on after the first one."""

    def __init__(self, file: Path) -> None:
        self.file = file
        self.problems: list[Problem] = []
        self._seen: set[Problem] = set()  # a list of 100,000 bad items is no O(n**2)

    def add(self, node: yaml.Node | None, path: str, message: str) -> None:
        """Record a problem at ``node``'s position (the file as a whole when None)."""
        mark = node.start_mark if node is not None else None
        self.at(mark.line + 1 if mark else 0, mark.column + 1 if mark else 0, path, message)

    def at(self, line: int, column: int, path: str, message: str) -> None:
        problem = Problem(self.file, line, column, path, message)
        if problem not in self._seen:  # a node read twice through an alias
            self._seen.add(problem)
            self.problems.append(problem)

    def where(self, node: yaml.Node) -> str:
        """``file:line:column`` of ``node``, to point from one problem at another place."""
        return f"{self.file}:{node.start_mark.line + 1}:{node.start_mark.column + 1}"

    def raise_if_any(self) -> None:
        if self.problems:
            raise ConfigError(self.problems)


def _join(path: str, key: str) -> str:
    step = key if _PLAIN_KEY.match(key) else repr(key)
    return f"{path}.{step}" if path else step


def describe(node: yaml.Node) -> str:
    """How ``node`` reads in a message: its kind, or a scalar's text."""
    if isinstance(node, yaml.MappingNode):
        return "a mapping"
    if isinstance(node, yaml.SequenceNode):
        return "a list"
    if node.tag == "tag:yaml.org,2002:null":
        return "nothing"
    return repr(node.value)


class Section:
    """A YAML mapping being read key by key; keys never taken are reported by :meth:`done`.

    ``at`` is where problems about the section as a whole (a missing key) point: the
    key that introduced it, which is where the reader will look.
    """

    def __init__(
        self, report: Report, node: yaml.MappingNode, path: str, at: yaml.Node | None = None
    ) -> None:
        self.report = report
        self.node = node
        self.path = path
        self.anchor = at if at is not None else node
        self.entries: dict[str, tuple[yaml.Node, yaml.Node]] = {}
        self._taken: set[str] = set()
        for key, value in node.value:
            if not isinstance(key, yaml.ScalarNode):
                report.add(key, path, f"keys must be scalars, got {describe(key)}")
                continue
            name = str(key.value)
            if name not in self.entries:  # a repeat is reported once by compose()
                self.entries[name] = (key, value)

    def __contains__(self, key: str) -> bool:
        return key in self.entries

    def keys(self) -> list[str]:
        return list(self.entries)

    def field(self, key: str) -> str:
        return _join(self.path, key)

    def key_node(self, key: str) -> yaml.Node | None:
        entry = self.entries.get(key)
        return entry[0] if entry else None

    def take(self, key: str) -> yaml.Node | None:
        """The value node of ``key`` (None when absent), marking the key as known."""
        self._taken.add(key)
        entry = self.entries.get(key)
        return entry[1] if entry else None

    def require(self, key: str) -> yaml.Node | None:
        node = self.take(key)
        if node is None:
            self.report.add(self.anchor, self.field(key), "required field is missing")
        return node

    def done(self, allowed: Sequence[str] | None = None) -> None:
        """Report every key not taken, suggesting the closest known one (typos!)."""
        known = list(allowed) if allowed is not None else sorted(self._taken)
        for name, (key, _) in self.entries.items():
            if name in self._taken or name in known:
                continue  # known but unread: another problem stopped the reading
            same_case = [k for k in known if k.lower() == name.lower()]  # txt vs TXT
            close = same_case or difflib.get_close_matches(name, known, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else f"; expected {', '.join(known)}"
            self.report.add(key, self.field(name), f"unknown field{hint}")

    # Typed readers: report and return ``default`` when the value is absent or wrong.

    def text(self, key: str, default: str) -> str:
        node = self.take(key)
        value = None if node is None else read_text(self.report, node, self.field(key))
        return default if value is None else value

    def integer(self, key: str, default: int, minimum: int = 0, maximum: int = MAX_INTEGER) -> int:
        node = self.take(key)
        if node is None:
            return default
        value = read_int(self.report, node, self.field(key), minimum, maximum)
        return default if value is None else value

    def boolean(self, key: str, default: bool) -> bool:
        node = self.take(key)
        if node is None:
            return default
        value = read_bool(self.report, node, self.field(key))
        return default if value is None else value

    def section(self, key: str, required: bool = False) -> Section | None:
        node = self.require(key) if required else self.take(key)
        if node is None:
            return None
        return read_section(self.report, node, self.field(key), self.key_node(key))


# ------------------------------------------------------------------ value readers


def read_section(
    report: Report, node: yaml.Node, path: str, at: yaml.Node | None = None
) -> Section | None:
    if not isinstance(node, yaml.MappingNode):
        report.add(node, path, f"expected a mapping, got {describe(node)}")
        return None
    return Section(report, node, path, at)


def read_items(
    report: Report, node: yaml.Node, path: str, single: bool = False
) -> list[tuple[yaml.Node, str]]:
    """The items of a list with their paths; ``single`` also accepts one bare scalar."""
    if isinstance(node, yaml.SequenceNode):
        return [(item, f"{path}[{i}]") for i, item in enumerate(node.value)]
    if single and isinstance(node, yaml.ScalarNode) and node.tag != "tag:yaml.org,2002:null":
        return [(node, path)]
    report.add(node, path, f"expected a list, got {describe(node)}")
    return []


def read_text(report: Report, node: yaml.Node, path: str, what: str = "a string") -> str | None:
    """A scalar's source text: names and addresses mean what was written (``no``, ``1.5``)."""
    if isinstance(node, yaml.ScalarNode) and node.tag != "tag:yaml.org,2002:null":
        return str(node.value)
    report.add(node, path, f"expected {what}, got {describe(node)}")
    return None


def construct(node: yaml.ScalarNode) -> object:
    """A scalar's value by the safe loader's rules (the tag says int, bool, ...).

    A value its tag cannot hold (``!!int abc``) is its text as written, which no reader
    of a number or a boolean accepts, so it is reported like any other wrong value.
    """
    try:
        return yaml.constructor.SafeConstructor().construct_object(node)
    except Exception:  # noqa: BLE001 - PyYAML's constructors raise what they hit (!!int "")
        return str(node.value)


def read_int(report: Report, node: yaml.Node, path: str, minimum: int, maximum: int) -> int | None:
    if minimum == 0:
        what = "a non-negative integer"
    elif minimum == 1:
        what = "a positive integer"
    else:
        what = f"an integer of at least {minimum}"
    if isinstance(node, yaml.ScalarNode) and node.tag == "tag:yaml.org,2002:int":
        value = construct(node)
        if isinstance(value, int) and minimum <= value <= maximum:
            return value
        if isinstance(value, int) and value > maximum:
            what = f"{what} no larger than {maximum}"
    report.add(node, path, f"expected {what}, got {describe(node)}")
    return None


def read_float(report: Report, node: yaml.Node, path: str, low: float, high: float) -> float | None:
    if isinstance(node, yaml.ScalarNode) and node.tag in (
        "tag:yaml.org,2002:int",
        "tag:yaml.org,2002:float",
    ):
        value = construct(node)
        if isinstance(value, int | float) and low <= value <= high:
            return float(value)
    report.add(node, path, f"expected a number from {low:g} to {high:g}, got {describe(node)}")
    return None


def read_bool(report: Report, node: yaml.Node, path: str) -> bool | None:
    if isinstance(node, yaml.ScalarNode) and node.tag == "tag:yaml.org,2002:bool":
        value = construct(node)
        if isinstance(value, bool):
            return value
    report.add(node, path, f"expected true or false, got {describe(node)}")
    return None


def domain_text(text: str) -> str:
    """Lowercase ``text`` without its trailing dot, or raise ValueError saying why not."""
    if not text.isascii():
        raise ValueError("non-ASCII name; write its A-label (xn--...) form")
    name = text.lower()
    name = name[:-1] if name.endswith(".") else name
    if not name:
        raise ValueError("the root is not allowed here")
    if len(name) > 253:
        raise ValueError("name longer than 253 characters")
    for label in name.split("."):
        if not label:
            raise ValueError("empty label")
        if not _LABEL.match(label):
            raise ValueError(
                f"bad label {label!r}: 1 to 63 of a-z, 0-9, '_', '-' (not at either end)"
            )
    return name


def read_domain(report: Report, node: yaml.Node, path: str) -> str | None:
    """An absolute domain name (the trailing dot is optional and dropped)."""
    text = read_text(report, node, path, "a domain name")
    if text is None:
        return None
    try:
        return domain_text(text)
    except ValueError as exc:
        report.add(node, path, f"{exc}, got {text!r}")
        return None


def read_ipv4(report: Report, node: yaml.Node, path: str) -> ipaddress.IPv4Address | None:
    text = read_text(report, node, path, "an IPv4 address")
    if text is None:
        return None
    try:
        return ipaddress.IPv4Address(text)
    except ValueError:
        report.add(node, path, f"expected an IPv4 address, got {text!r}")
        return None


# ------------------------------------------------------------------ files


def compose(report: Report, path: Path, empty: str) -> yaml.Node | None:
    """The root node of the YAML file at ``path``; None, reported, if there is none.

    ``empty`` is the message for a file without a document: it says what belongs there.
    """
    try:
        data = path.read_bytes()
    except OSError as exc:
        report.at(0, 0, "", f"cannot read: {exc.strerror or exc}")
        return None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        report.at(line, column, "", "not valid UTF-8")
        return None
    try:
        if _too_deep(report, text):
            return None
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        message = exc.problem or exc.context or "YAML error"
        if exc.problem and exc.context:
            cmark = exc.context_mark
            where = f" at {cmark.line + 1}:{cmark.column + 1}" if cmark else ""
            message = f"{exc.problem} ({exc.context}{where})"
        report.at(mark.line + 1 if mark else 0, mark.column + 1 if mark else 0, "", message)
        return None
    except yaml.reader.ReaderError as exc:
        line = text.count("\n", 0, exc.position) + 1
        column = exc.position - (text.rfind("\n", 0, exc.position) + 1) + 1
        report.at(line, column, "", f"{exc.reason}: character {exc.character!r}")
        return None
    except RecursionError:
        report.at(0, 0, "", "nested too deeply")
        return None
    except yaml.YAMLError as exc:  # nothing else is expected; still no traceback
        report.at(0, 0, "", str(exc))
        return None
    if node is None:
        report.at(1, 1, "", empty)  # where the mapping should start
        return None
    return node if _check_structure(report, node) else None


def _too_deep(report: Report, text: str) -> bool:
    """Report (at its line) a collection nested deeper than :data:`MAX_DEPTH`.

    The parser's events come from a loop, so this costs no recursion; composing a deeper
    document would recurse once per level in PyYAML.
    """
    depth = 0
    for event in yaml.parse(text, Loader=yaml.SafeLoader):
        if isinstance(event, yaml.CollectionStartEvent):
            depth += 1
            if depth > MAX_DEPTH:
                mark = event.start_mark
                line, column = (mark.line + 1, mark.column + 1) if mark else (0, 0)
                report.at(line, column, "", f"nested more than {MAX_DEPTH} levels deep")
                return True
        elif isinstance(event, yaml.CollectionEndEvent):
            depth -= 1
    return False


def _check_structure(report: Report, root: yaml.Node) -> bool:
    """Report every repeated key; False if an alias contains itself (nothing to read).

    Each node is visited once however many aliases point at it, so a "billion laughs"
    document costs no more than its text; the walk keeps its own stack, so a document
    as deep as the parser allows cannot exhaust Python's.
    """
    active: set[int] = set()
    visited: set[int] = set()
    stack: list[tuple[yaml.Node, str, bool]] = [(root, "", False)]
    sound = True
    while stack:
        node, path, leaving = stack.pop()
        if leaving:
            active.discard(id(node))
            continue
        if id(node) in active:
            report.add(node, path, "recursive alias")
            sound = False
            continue
        if id(node) in visited:
            continue
        visited.add(id(node))
        active.add(id(node))
        stack.append((node, path, True))
        children: list[tuple[yaml.Node, str]] = []
        if isinstance(node, yaml.MappingNode):
            first: dict[str, yaml.Node] = {}
            for key, value in node.value:
                if not isinstance(key, yaml.ScalarNode):
                    children += [(key, path), (value, path)]
                    continue
                name = str(key.value)
                if name in first:
                    where = report.where(first[name])
                    report.add(key, _join(path, name), f"duplicate key (first at {where})")
                    continue
                first[name] = key
                children.append((value, _join(path, name)))
        elif isinstance(node, yaml.SequenceNode):
            children = [(item, f"{path}[{i}]") for i, item in enumerate(node.value)]
        stack.extend((child, where, False) for child, where in reversed(children))
    return sound
