"""One exception root per package (client, zoned, publisher), and the commands catch it."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

import client.repq
import publisher.cli
import zoned.cli
import zoned.logs
import zoned.service
from client.asn import AsnZoneError
from client.dnswire import ReplyError
from client.errors import ClientError
from client.facts import MessageError
from client.repq import UsageError
from client.selectorconfig import PlanError
from client.selectorlang import SelectorError
from publisher.entries import RecordError
from publisher.errors import PublisherError
from publisher.layouts import LayoutError
from publisher.learn import LearnError
from publisher.plan import PlanRefused
from publisher.processors import MapError
from publisher.rbldnsd import DatasetError
from publisher.source import SourceError
from zoned.config import ConfigError
from zoned.connections import LimitsError
from zoned.errors import ZonedError
from zoned.framing import FramingError
from zoned.journal import JournalError
from zoned.packed import PackedError
from zoned.prefixes import NetworkTooWide
from zoned.store import StoreDamaged, StoreError, StoreOutdated
from zoned.tsig import TsigRejected

VALUE_ERRORS: dict[type[Exception], list[type[Exception]]] = {
    ClientError: [PlanError, SelectorError, AsnZoneError, MessageError, ReplyError],
    ZonedError: [LimitsError, PackedError, JournalError, NetworkTooWide],
    PublisherError: [RecordError, DatasetError, MapError, LayoutError, LearnError],
}
OTHERS: dict[type[Exception], list[type[Exception]]] = {
    ClientError: [UsageError],
    ZonedError: [ConfigError, StoreError, StoreDamaged, StoreOutdated, FramingError,
                 TsigRejected],
    PublisherError: [SourceError, PlanRefused],
}


@pytest.mark.parametrize("root", [ClientError, ZonedError, PublisherError])
def test_every_error_of_a_package_derives_from_its_root(root: type[Exception]) -> None:
    """The root catches them all; those that rejected a value are still ValueErrors."""
    for error in VALUE_ERRORS[root]:
        assert issubclass(error, root) and issubclass(error, ValueError), error
    for error in OTHERS[root]:
        assert issubclass(error, root), error
    others = {ClientError, ZonedError, PublisherError} - {root}
    assert not any(issubclass(root, other) for other in others)


def test_repq_reports_a_client_error_with_the_usage_status(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def fail(_: object) -> int:
        raise ReplyError("no such reply")

    monkeypatch.setattr(client.repq, "run_lookup", fail)
    assert client.repq.main(["bl.example.net", "ip", "192.0.2.1"]) == client.repq.EXIT_USAGE
    assert capsys.readouterr().err == "repq: no such reply\n"


def test_zonepub_reports_a_publisher_error_with_status_1(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def fail(_: object) -> int:
        raise PlanRefused("would delete 90% of the zone")

    monkeypatch.setattr(publisher.cli, "cmd_names", fail)
    assert publisher.cli.main(["names", "--zone", "bl.example.net", "192.0.2.1"]) == 1
    assert capsys.readouterr().err == "zonepub: would delete 90% of the zone\n"


def test_zoned_reports_a_zoned_error_at_start_with_status_1(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    def fail(*args: object, **kwargs: object) -> None:
        raise StoreError("cannot open the store")

    monkeypatch.setattr(zoned.service, "ZonedService", fail)
    # zoned's own logging setup takes over the root logger: leave pytest's in place.
    monkeypatch.setattr(zoned.logs, "setup", lambda *args: logging.NullHandler())
    with caplog.at_level(logging.ERROR):
        assert zoned.cli.main(["-c", str(tmp_path)]) == 1
    assert "cannot start:\ncannot open the store" in caplog.text
