"""Mutated example zone files through ``zoned -t``: an error list with positions, never a crash.

Hypothesis damages the shipped zones/ files the ways hands and tools do (keys dropped or
repeated, values of the wrong type, huge, NaN or non-ASCII, broken indentation, tabs,
bytes that are not UTF-8, alias bombs) and runs the ``zoned -t`` code path on the
directory.  It must exit 0 or 1, print no traceback, and on 1 every line of its report
must start with ``file:line:column:`` of a zone file.  Bounded: a few hundred examples.
"""

from __future__ import annotations

import contextlib
import copy
import io
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from zoned.cli import main as zoned

pytestmark = pytest.mark.adversarial

ZONES = Path(__file__).resolve().parent.parent / "zones"
EXAMPLES = {p.name: p.read_bytes() for p in sorted(ZONES.glob("*.yaml"))}
NAMES = sorted(EXAMPLES)
# Values a field may be given by mistake: other types, limits, non-ASCII, YAML oddities.
VALUES = [
    "", "~", "[]", "{}", "[[[]]]", "{a: {b: [c]}}", "-1", "0", "2147483648",
    "99999999999999999999999999999", "1e999", "1.0e+999", "-.inf", ".nan", "0x1F", "0o17",
    "yes", "no", "2001-01-01", "'\\0'", '"\\x00"', '"\\ud800"', "ü", "'bücher.'", "☃☃☃",
    "'a;b'", "!!int abc", '!!int ""', "!!float ''", "!!float x", "!!bool maybe",
    "!!binary '@@'", "!!timestamp x",
    "!!python/object/apply:os.system [true]", "!custom x", "*nowhere", "&self [*self]",
    "x" * 300, "0.0.0.0/0", "'::/0'", "1.2.3.4/33", "127.0.0.1", "@", ".", "..", "-",
    "~nobody/x", "/dev/zero", "'a\\0b'", "redis://", "unix://", "hmac-sha1", "'%s %d'",
    "*b8", "[*b8, *b8]", "<<: *b8", "|\n  text", ">-\n  folded",
]
BOMB = "".join(
    f"bomb{i}: &b{i} [{', '.join(['x'] if i == 0 else [f'*b{i - 1}'] * 10)}]\n"
    for i in range(9)
).encode()  # 10**8 leaves if expanded: readers must never expand aliases
RAW = [b"\xff", b"\xc3", b"\x00", b"\xe9t\xe9", b"\xed\xa0\x80", b"\xef\xbb\xbf", b"\r", b"\t"]

Mutation = tuple[str, int, int]  # (kind, line, choice)
mutation = st.tuples(
    st.sampled_from(["drop", "value", "dup", "indent", "dedent", "tab", "raw", "bomb",
                     "join", "key"]),
    st.integers(0, 10_000),
    st.integers(0, 10_000),
)


def mutate(data: bytes, mutations: list[Mutation]) -> bytes:
    lines = data.split(b"\n")
    for kind, at, choice in mutations:
        # Mostly lines that say something: comments and blank lines rarely matter.
        meant = [n for n, text in enumerate(lines) if text.strip() and not text.lstrip(
            ).startswith(b"#")] or [0]
        i = meant[at % len(meant)] if choice % 4 else at % len(lines)
        line = lines[i]
        if kind == "drop":
            del lines[i]
        elif kind == "value":
            value = VALUES[choice % len(VALUES)].encode()
            key, colon, _ = line.partition(b": ")
            lines[i] = key + b": " + value if colon else line[: len(line) // 2] + value
        elif kind == "dup":
            lines.insert(i, line)
        elif kind == "indent":
            lines[i] = b" " * (1 + choice % 4) + line
        elif kind == "dedent":
            lines[i] = line[1 + choice % 4:] if line.startswith(b" ") else line
        elif kind == "tab":
            lines[i] = b"\t" + line.lstrip(b" ")
        elif kind == "raw":
            cut = choice % (len(line) + 1)
            lines[i] = line[:cut] + RAW[choice % len(RAW)] + line[cut:]
        elif kind == "bomb":
            lines.insert(0, BOMB.rstrip(b"\n"))
        elif kind == "join" and i + 1 < len(lines):
            lines[i : i + 2] = [line + b" " + lines[i + 1]]
        elif kind == "key":
            lines[i] = b"x" + line.lstrip()  # a misspelt key, or text where a key was
        if not lines:
            lines = [b""]
    return b"\n".join(lines)


# Values for the tree mutations, as YAML will write them: every type, limits, non-ASCII.
OBJECTS: list[object] = [
    None, True, False, "", "ü", "☃" * 70, "x" * 300, "a;b", "\x00", "\ud7ff", -1, 0, 1,
    2**31, 2**64, 10**400, 0.5, -0.0, 1e308, float("inf"), float("nan"), [], {}, [[1, [2]]],
    {"a": {"b": [None]}}, [None], ["x", "x"], "0.0.0.0/0", "::/0", "10.0.0.0/7", "127.0.0.2",
    "127.0.0.1", "2001:db8::1", "redis://h:99999/0", "unix://", "hmac-md5", "~nobody/x",
    "/dev/zero", "../..", "@", "xn--", "-a.example", "a" * 64 + ".example", "1h", "RR:",
]


def tree_mutate(data: bytes, mutations: list[Mutation]) -> bytes:
    """Change the parsed document (drop, replace, rename a key) and write it out again."""
    tree = yaml.safe_load(data)
    for kind, at, choice in mutations:
        spots: list[tuple[dict[object, object] | list[object], object]] = []
        stack: list[object] = [tree]
        seen: set[int] = set()  # an earlier alias bomb shares its lists a billion times
        while stack:
            node = stack.pop()
            if id(node) in seen:
                continue
            seen.add(id(node))
            if isinstance(node, dict):
                spots += [(node, key) for key in node]
                stack += node.values()
            elif isinstance(node, list):
                spots += [(node, i) for i in range(len(node))]
                stack += node
        if not spots:
            break
        parent, key = spots[at % len(spots)]
        if isinstance(parent, dict):
            if kind == "drop":
                del parent[key]
            elif kind == "key":
                parent[f"x{key}"] = parent.pop(key)
            else:
                parent[key] = copy.deepcopy(OBJECTS[choice % len(OBJECTS)])
        else:
            assert isinstance(key, int)
            if kind == "drop":
                del parent[key]
            else:
                parent[key] = copy.deepcopy(OBJECTS[choice % len(OBJECTS)])
    return yaml.safe_dump(tree, allow_unicode=True, sort_keys=False).encode()


WHERE = re.compile(r"(?P<file>/[^:\n]+\.ya?ml):(?P<line>[1-9][0-9]*):(?P<column>[1-9][0-9]*): ")


def check_report(directory: Path, status: int, out: str, err: str) -> None:
    assert status in (0, 1), (status, err)
    assert "Traceback" not in out + err, err
    if status == 0:
        assert not err.strip(), err
        assert out.count(" OK\n") == len(EXAMPLES), out
        return
    assert err.strip(), "exit status 1 with nothing said"
    for line in err.rstrip("\n").split("\n"):
        match = WHERE.match(line)
        assert match is not None, f"no file:line:column in {line!r}"
        assert Path(match["file"]).parent == directory, line


def run_check(directory: Path) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = zoned(["-t", "-c", str(directory)])
    return status, out.getvalue(), err.getvalue()


def write_zones(root: Path, changed: dict[str, bytes]) -> Path:
    directory = root / "zones"
    directory.mkdir()
    for name, data in EXAMPLES.items():
        (directory / name).write_bytes(changed.get(name, data))
    return directory


@settings(max_examples=300, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.tuples(
            st.sampled_from(NAMES),
            st.lists(mutation, max_size=4),  # of the document tree (if it still parses)
            st.lists(mutation, max_size=3),  # of the text
        ),
        min_size=1, max_size=2,
    )
)
def test_mutated_zone_files_never_crash_zoned_t(
    edits: list[tuple[str, list[Mutation], list[Mutation]]],
) -> None:
    changed: dict[str, bytes] = {}
    for name, in_tree, in_text in edits:
        data = changed.get(name, EXAMPLES[name])
        if in_tree:
            # Damaged by an earlier edit; PyYAML's own loader raises IndexError on `!!int ""`
            # (zoned's loader refuses it at its line, which run_check below proves).
            with contextlib.suppress(yaml.YAMLError, ValueError, IndexError):
                data = tree_mutate(data, in_tree)
        changed[name] = mutate(data, in_text)
    with tempfile.TemporaryDirectory() as tmp:
        directory = write_zones(Path(tmp), changed)
        check_report(directory, *run_check(directory))


def test_the_examples_pass_and_a_known_mutation_fails() -> None:
    """The harness itself: unmutated files pass; one wrong value fails at its line."""
    with tempfile.TemporaryDirectory() as tmp:
        directory = write_zones(Path(tmp), {})
        status, out, err = run_check(directory)
        check_report(directory, status, out, err)
        assert status == 0
    with tempfile.TemporaryDirectory() as tmp:
        bad = EXAMPLES["bl.example.net.yaml"].replace(b"ttl: 300", b"ttl: .nan")
        directory = write_zones(Path(tmp), {"bl.example.net.yaml": bad})
        status, out, err = run_check(directory)
        check_report(directory, status, out, err)
        assert status == 1 and f"{directory}/bl.example.net.yaml:15:6: ttl: " in err, err


def test_zoned_t_as_a_process(tmp_path: Path) -> None:
    """The real command: exit 0 on the examples; 1 with positions on a few damaged files."""
    (tmp_path / "good").mkdir()
    good = write_zones(tmp_path / "good", {})
    process = subprocess.run([sys.executable, "-m", "zoned.cli", "-t", "-c", str(good)],
                             capture_output=True, text=True, timeout=60, check=False)
    check_report(good, process.returncode, process.stdout, process.stderr)
    assert process.returncode == 0
    (tmp_path / "bad").mkdir()
    damaged = {
        "bl.example.net.yaml": mutate(EXAMPLES["bl.example.net.yaml"],
                                      [("bomb", 0, 0), ("value", 14, 57), ("raw", 30, 0)]),
        "dom.example.net.yaml": EXAMPLES["dom.example.net.yaml"] + b"source: {layout: x}\n",
        "hash.example.net.yaml": b"\t" + EXAMPLES["hash.example.net.yaml"],
    }
    bad = write_zones(tmp_path / "bad", damaged)
    process = subprocess.run([sys.executable, "-m", "zoned.cli", "-t", "-c", str(bad)],
                             capture_output=True, text=True, timeout=60, check=False)
    check_report(bad, process.returncode, process.stdout, process.stderr)
    assert process.returncode == 1
    assert {Path(m["file"]).name for m in WHERE.finditer(process.stderr)} == set(EXAMPLES)
