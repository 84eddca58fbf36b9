"""Knot DNS and NSD started as secondaries of a primary on loopback, for interop tests.

Each secondary runs from the configuration the operator docs show (docs/peers/knot.md,
docs/peers/nsd.md, read with :func:`tests.docsnippets.snippet`), with the docs' example
addresses, ports, paths and secret swapped for the test's own; only what a test needs
and an operator would not write (a temporary run directory, a log file, a free port) is
added around it.  The secondary runs in the foreground in its own directory and is
stopped by :meth:`Secondary.stop`.

Which kind of transfer a secondary used is read from its own log, so a test can tell
an incremental transfer (IXFR) from a full one (AXFR, or an IXFR answered with the whole
zone) the way an operator would.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import dns.exception
import dns.flags
import dns.message
import dns.query
import dns.rcode
import dns.rdatatype
import pytest

from tests.docsnippets import snippet
from tests.support.polling import until
from tests.support.ports import free_port
from tests.support.processes import stop, tool

Kind = Literal["knot", "nsd"]
KINDS: tuple[Kind, ...] = ("knot", "nsd")
Transfer = Literal["AXFR", "IXFR"]

# The example values of the docs pages, which the tests swap for their own.
DOC_PRIMARY = "192.0.2.53"
DOC_SECRET = "OrvfanDUJyy8HOVoJnBqvcQ9Rp5DjbE4RH8HufPiNOY="
DOC_ADDRESS: dict[Kind, str] = {"knot": "198.51.100.10", "nsd": "198.51.100.11"}
PAGE: dict[Kind, str] = {"knot": "peers/knot.md", "nsd": "peers/nsd.md"}
KEY_NAME = "xfr-key"


@dataclass(frozen=True)
class Key:
    """A TSIG key as both ends spell it: ``xfr-key``, hmac-sha256, a base64 secret."""

    secret: str
    name: str = KEY_NAME


def zone_transfer_section(kind: Kind, *, allow: Iterable[str], notify: Iterable[str],
                          key: Key | None) -> str:
    """The docs' ``transfer``/``keys`` YAML for a zone file, with the test's values.

    Without a key, the ``key:`` line and the ``keys`` section are left out, as the docs
    tell an operator who does not use TSIG.
    """
    address = DOC_ADDRESS[kind]
    text = snippet(PAGE[kind], "zone.yaml", replace={
        f'"{address}:53"': ", ".join(f'"{target}"' for target in notify),
        f"[{address}]": "[" + ", ".join(f'"{network}"' for network in allow) + "]",
    })
    if key is None:
        return _without_key(text, ["  key: xfr-key"], "keys:\n")
    return text.replace(DOC_SECRET, key.secret)


def _without_key(text: str, lines: list[str], section: str) -> str:
    """``text`` without the lines starting with ``lines`` and without the ``section``
    (from its line to the next blank line)."""
    kept = text.splitlines(keepends=True)
    for prefix in lines:
        if not any(line.startswith(prefix) for line in kept):
            raise AssertionError(f"the docs' snippet no longer holds {prefix!r}")
        kept = [line for line in kept if not line.startswith(prefix)]
    if section not in kept:
        raise AssertionError(f"the docs' snippet no longer holds {section!r}")
    at = kept.index(section)
    end = next((i for i in range(at, len(kept)) if not kept[i].strip()), len(kept))
    return "".join(kept[:at] + kept[end + 1 :])


def add_transfer_section(zone_file: Path, section: str) -> None:
    """Append the transfer section to a (copied) zone file."""
    with zone_file.open("a") as out:
        out.write("\n" + section)


# --------------------------------------------------------------------------- a running secondary


@dataclass
class Secondary:
    """A running Knot or NSD secondary on 127.0.0.1:``port``."""

    kind: Kind
    process: subprocess.Popen[bytes]
    port: int
    directory: Path
    log: Path
    config: Path

    def ask(self, qname: str, rdtype: str = "A", *, tcp: bool = False,
            timeout: float = 2) -> dns.message.Message:
        """One query without recursion, as a resolver asks an authoritative server."""
        query = dns.message.make_query(qname, rdtype, use_edns=0)
        query.flags &= ~dns.flags.RD
        if tcp:
            return dns.query.tcp(query, "127.0.0.1", port=self.port, timeout=timeout)
        return dns.query.udp(query, "127.0.0.1", port=self.port, timeout=timeout)

    def serial(self, origin: str) -> int | None:
        """The SOA serial the secondary serves for ``origin``, or None if it serves none."""
        try:
            reply = self.ask(origin, "SOA", timeout=1)
        except (dns.exception.Timeout, OSError):
            return None
        if reply.rcode() != dns.rcode.NOERROR or not reply.flags & dns.flags.AA:
            return None
        for rrset in reply.answer:
            if rrset.rdtype == dns.rdatatype.SOA:
                return int(rrset[0].serial)
        return None

    def log_mark(self) -> int:
        """The length of the log now, for :meth:`wait_for_serial`'s ``since``."""
        return len(self.log_text())

    def wait_for_serial(self, origin: str, serial: int, timeout: float = 15,
                        since: int | None = None) -> None:
        """Poll until the secondary serves ``serial`` for ``origin``.

        A failed transfer of ``origin`` logged after the ``since`` mark (or after the call)
        ends the wait at once: the secondary retries only minutes later.
        """
        start = self.log_mark() if since is None else since

        def served() -> bool:
            if self.serial(origin) == serial:
                return True
            if self.failed(origin, self.log_text()[start:]):
                pytest.fail(f"{self.kind} failed to transfer {origin} serial {serial}; "
                            f"its log:\n{self.log_text()}")
            return False

        wait_for(served, timeout,
                 lambda: f"{self.kind} does not serve {origin} serial {serial} "
                         f"(serves {self.serial(origin)}); its log:\n{self.log_text()}",
                 self)

    def failed(self, origin: str, log: str | None = None) -> bool:
        """Whether the secondary logged a failed transfer (or refresh) of ``origin``.

        Knot 3.2: "[bl.example.net.] refresh, remote repzone, address ..., failed (...)";
        NSD 4.6: "xfrd: zone bl.example.net received error code REFUSED from ..." and,
        for a bad signature, "xfrd: zone bl.example.net, from ...: bad tsig signature".
        """
        zone = re.escape(origin.rstrip(".").lower())
        pattern = (rf"\[{zone}\.\] refresh, [^\n]*failed" if self.kind == "knot"
                   else rf"xfrd: zone {zone}(?: received error code|,[^\n]*bad)")
        return re.search(pattern, self.log_text() if log is None else log) is not None

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def transfers(self, origin: str) -> list[Transfer] | None:
        """The kind of each incoming transfer of ``origin`` completed, in order.

        An IXFR request answered with the whole zone (RFC 1995 4) counts as an AXFR.
        None for NSD: at any verbosity, NSD 4.6 logs a received transfer ("received update
        to serial N ... of B bytes") without saying whether it was incremental, so the
        tests read that from the primary's log instead.
        """
        return _knot_transfers(self.log_text(), origin) if self.kind == "knot" else None

    def status(self, origin: str) -> str:
        """The zone's status as the operator docs show it: ``knotc zone-status``,
        ``nsd-control zonestatus`` (both talk to the daemon over its control socket)."""
        argv = ([tool("knotc"), "-c", str(self.config), "zone-status", origin]
                if self.kind == "knot" else
                [tool("nsd-control"), "-c", str(self.config), "zonestatus", origin])
        done = subprocess.run(argv, capture_output=True, text=True, timeout=30)
        return done.stdout + done.stderr

    def stop(self) -> None:
        stop(self.process, 15)


def wait_for(condition: Callable[[], bool], timeout: float, explain: Callable[[], str],
             secondary: Secondary | None = None) -> None:
    """Poll ``condition`` until it holds; fail with ``explain()`` after ``timeout`` seconds.

    A ``secondary`` that exits meanwhile fails the wait at once, with its log.
    """
    def holds() -> bool:
        if secondary is not None and secondary.process.poll() is not None:
            pytest.fail(f"{secondary.kind} exited with {secondary.process.returncode}:\n"
                        f"{secondary.log_text()}")
        return condition()

    until(holds, explain, timeout, interval=0.1)


# Knot 3.2: "[bl.example.net.] AXFR, incoming, remote 127.0.0.1@5300, finished, ..."
# and for an incremental transfer "[...] IXFR, incoming, remote ..., finished, ...";
# an IXFR answered with the whole zone logs "receiving AXFR-style IXFR" first.
_KNOT_LINE = re.compile(
    r"\[(?P<zone>[^\]]+)\] (?P<kind>AXFR|IXFR), incoming, remote [^\n]*?"
    r"(?P<what>finished|receiving AXFR-style IXFR)"
)


def _knot_transfers(log: str, origin: str) -> list[Transfer]:
    out: list[Transfer] = []
    axfr_style = False
    for match in _KNOT_LINE.finditer(log):
        if match["zone"].rstrip(".").lower() != origin.lower():
            continue
        if match["what"] != "finished":
            axfr_style = True
            continue
        out.append("AXFR" if match["kind"] == "AXFR" or axfr_style else "IXFR")
        axfr_style = False
    return out


# --------------------------------------------------------------------------- starting one


def start_secondary(kind: Kind, directory: Path, primary_port: int, *, key: Key | None,
                    port: int | None = None) -> Secondary:
    """Start ``kind`` in ``directory`` as a secondary of the primary on 127.0.0.1.

    ``port`` is the secondary's own port (free_port() when None); pass it when the
    primary must be configured with it first (its NOTIFY targets).
    """
    directory.mkdir(parents=True, exist_ok=True)
    port = free_port() if port is None else port
    start = _start_knot if kind == "knot" else _start_nsd
    secondary = start(directory, port, primary_port, key)
    wait_for(lambda: _answers(secondary), 20,
             lambda: f"{kind} did not answer in 20 s:\n{secondary.log_text()}", secondary)
    return secondary


def _answers(secondary: Secondary) -> bool:
    try:
        secondary.ask("example.invalid", "SOA", timeout=0.5)
    except (dns.exception.Timeout, OSError):
        return False
    return True


def knot_config(directory: Path, port: int, primary_port: int, key: Key | None) -> str:
    """The docs' knot.conf with the test's addresses, paths and key."""
    text = snippet(PAGE["knot"], "knot.conf", replace={
        f"{DOC_ADDRESS['knot']}@53": f"127.0.0.1@{port}",
        f"{DOC_PRIMARY}@53": f"127.0.0.1@{primary_port}",
        DOC_PRIMARY: "127.0.0.1",
        '"/run/knot"': f'"{directory}"',
        '"/var/lib/knot"': f'"{directory}"',
        "target: syslog": f"target: {directory / 'knot.log'}",
    })
    if key is None:
        return _without_key(text, ["    key: xfr-key"], "key:\n")
    return text.replace(DOC_SECRET, key.secret)


def _start_knot(directory: Path, port: int, primary_port: int, key: Key | None) -> Secondary:
    config = directory / "knot.conf"
    config.write_text(knot_config(directory, port, primary_port, key))
    log = directory / "knot.log"
    output = (directory / "knotd.out").open("wb")
    process = subprocess.Popen([tool("knotd"), "-c", str(config)], stdout=output,
                               stderr=subprocess.STDOUT)
    output.close()
    return Secondary("knot", process, port, directory, log, config)


def nsd_config(directory: Path, port: int, primary_port: int, key: Key | None) -> str:
    """A server clause of the test's own (port, paths, no privilege drop), then the docs'
    repzone.conf with the test's addresses and key."""
    text = snippet(PAGE["nsd"], "repzone.conf", replace={
        f"ip-address: {DOC_ADDRESS['nsd']}": "ip-address: 127.0.0.1",
        f"{DOC_PRIMARY}@53": f"127.0.0.1@{primary_port}",
        DOC_PRIMARY: "127.0.0.1",
    })
    if key is None:
        if text.count(" xfr-key\n") != 2:
            raise AssertionError("the docs' repzone.conf no longer names xfr-key twice")
        text = _without_key(text.replace(" xfr-key\n", " NOKEY\n"), [], "key:\n")
    else:
        text = text.replace(DOC_SECRET, key.secret)
    server = (
        "server:\n"
        f"    port: {port}\n"
        '    username: ""\n'
        '    chroot: ""\n'
        f'    zonesdir: "{directory}"\n'
        f'    xfrdir: "{directory}"\n'
        f'    xfrdfile: "{directory}/xfrd.state"\n'
        f'    pidfile: "{directory}/nsd.pid"\n'
        f'    logfile: "{directory}/nsd.log"\n'
        '    database: ""\n'
        "    server-count: 1\n"
        "    do-ip6: no\n"
        "remote-control:\n"
        "    control-enable: yes\n"
        f'    control-interface: "{directory}/nsd.ctl"\n\n'
    )
    return server + text


def _start_nsd(directory: Path, port: int, primary_port: int, key: Key | None) -> Secondary:
    config = directory / "nsd.conf"
    config.write_text(nsd_config(directory, port, primary_port, key))
    log = directory / "nsd.log"
    output = (directory / "nsd.out").open("wb")
    process = subprocess.Popen([tool("nsd"), "-d", "-c", str(config)], stdout=output,
                               stderr=subprocess.STDOUT)
    output.close()
    return Secondary("nsd", process, port, directory, log, config)
