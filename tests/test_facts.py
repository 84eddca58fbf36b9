"""client.facts: facts of real-world shaped messages (tests/data/messages/*.eml)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from client.authresults import AuthResult, parse_authentication_results
from client.facts import DkimResult, Facts, MessageError, Url, facts_from_message
from client.received import Received, parse_received

MESSAGES = Path(__file__).resolve().parent / "data" / "messages"


def message(name: str) -> bytes:
    return (MESSAGES / name).read_bytes()


def facts(name: str, **kwargs: object) -> Facts:
    return facts_from_message(message(name), **kwargs)  # type: ignore[arg-type]


def urls_by_host(f: Facts) -> dict[str, Url]:
    return {u.host: u for u in f.urls}


# -- the contract ---------------------------------------------------------------------


def test_dataclass_fields_are_the_contract() -> None:
    """Facts, DkimResult and Url have the fields docs/client-design.md names, in order."""
    assert [f.name for f in dataclasses.fields(Facts)] == [
        "ip", "helo", "hostname", "from_smtp", "from_mime", "rcpts", "user", "subject",
        "asn", "country", "dkim", "spf_result", "spf_domain", "spf_record", "urls",
        "emails", "headers", "received",
    ]
    assert [f.name for f in dataclasses.fields(DkimResult)] == ["domain", "result"]
    assert [f.name for f in dataclasses.fields(Url)][:3] == ["host", "url", "flags"]
    assert Facts() == Facts(headers={})


def test_facts_are_immutable() -> None:
    """Facts and their header mapping cannot be changed after the fact."""
    f = facts("postfix_chain.eml")
    with pytest.raises(dataclasses.FrozenInstanceError):
        f.ip = "192.0.2.1"  # type: ignore[misc]
    with pytest.raises(TypeError):
        f.headers["x"] = ("y",)  # type: ignore[index]


# -- the sending IP -------------------------------------------------------------------


def test_first_untrusted_hop_is_the_sender() -> None:
    """A private relay hop is skipped; the next hop's client is the sender."""
    f = facts("postfix_chain.eml")
    assert (f.ip, f.helo, f.hostname) == (
        "198.51.100.23", "helo.sender.example.net", "out-23.sender.example.net"
    )


def test_trusted_relays_are_skipped() -> None:
    """Listing the sender's relay as trusted moves on; a private origin is no sender."""
    f = facts("postfix_chain.eml", trusted=["198.51.100.0/24"])
    assert (f.ip, f.helo, f.hostname) == (None, None, None)


def test_private_hops_can_be_distrusted() -> None:
    """trust_private=False makes private addresses candidates like any other."""
    f = facts("postfix_chain.eml", trust_private=False)
    assert f.ip == "10.0.0.12"
    f = facts("postfix_chain.eml", trust_private=False, trusted=["10.0.0.12", "198.51.100.23"])
    assert (f.ip, f.helo, f.hostname) == ("192.168.1.50", "laptop", None)


def test_ipv6_hops_and_trusted_ipv6_networks() -> None:
    """IPv6 hops ([IPv6:...] and Exim's [addr]:port) are read; CIDRs trust them."""
    f = facts("exim_ipv6.eml")
    assert (f.ip, f.helo, f.hostname) == ("2001:db8:1::25", "mail.example.org", None)
    f = facts("exim_ipv6.eml", trusted=["2001:db8:1::/48"])
    assert (f.ip, f.helo, f.hostname) == (
        "2001:db8:feed::25", "smtp.example.org", "smtp-out.example.org"
    )
    f = facts("exim_ipv6.eml", trusted=["2001:db8:1::/48", "2001:db8:feed::25"])
    assert (f.ip, f.helo) == ("2001:db8:cafe::7", "[IPv6:2001:db8:cafe::7]")


def test_microsoft_chain() -> None:
    """Exchange Online hops: the border hop gives HELO and rDNS, the internal ones IPs."""
    f = facts("microsoft.eml")
    assert (f.ip, f.helo, f.hostname) == (
        "40.107.100.101",
        "NAM04-BN8-obe.outbound.protection.outlook.com",
        "mail-bn8nam04on2101.outbound.protection.outlook.com",
    )
    assert f.received[1].real_ip == "2603:10b6:408:e4::13"
    assert f.received[2].real_ip == "fe80::1c2d:3e4f:5a6b:7c8d"
    f = facts("microsoft.eml", trusted=["40.107.0.0/16", "2603:10b6::/32"])
    assert f.ip is None  # only the link-local mapi hop is left, and it is private


def test_qmail_chain() -> None:
    """qmail's '(qmail N invoked ...)' has no address; 'from unknown (HELO x) (ip)' does."""
    f = facts("qmail.eml")
    assert (f.ip, f.helo, f.hostname) == ("203.0.113.7", "relay.example.net", None)
    f = facts("qmail.eml", trusted=["203.0.113.7"])
    assert (f.ip, f.helo, f.hostname) == ("198.51.100.9", "mta.example.org", "mail.example.org")


def test_given_ip_takes_helo_and_hostname_from_its_hop() -> None:
    """With the IP given by the MTA, HELO and rDNS come from the hop with that address."""
    f = facts("postfix_chain.eml", ip="10.0.0.12")
    assert (f.ip, f.helo, f.hostname) == (
        "10.0.0.12", "mx2.internal.example.com", "mx2.internal.example.com"
    )
    f = facts("postfix_chain.eml", ip="192.0.2.200")
    assert (f.ip, f.helo, f.hostname) == ("192.0.2.200", None, None)
    f = facts("postfix_chain.eml", ip="192.0.2.200", helo="given.example.com")
    assert f.helo == "given.example.com"


def test_bad_trusted_entry_is_a_caller_error() -> None:
    """A trusted entry that is no address or network raises ValueError naming it."""
    with pytest.raises(ValueError, match="'mx.example.com'"):
        facts("postfix_chain.eml", trusted=["mx.example.com"])


# -- Received forms -------------------------------------------------------------------

RECEIVED_FORMS = [
    # (header value, from_hostname (HELO), real_hostname (rDNS), real_ip)
    ("from helo.example.net (rdns.example.net [198.51.100.1]) by mx.example.com (Postfix)"
     " with ESMTPS id X; Tue, 14 May 2024 09:12:01 +0200",
     "helo.example.net", "rdns.example.net", "198.51.100.1"),
    ("from helo.example.net (unknown [198.51.100.2]) by mx.example.com (Postfix) id Y",
     "helo.example.net", None, "198.51.100.2"),
    ("from helo.example.net (rdns.example.net [IPv6:2001:db8::5]) by mx.example.com",
     "helo.example.net", "rdns.example.net", "2001:db8::5"),
    ("from helo.example.net (rdns.example.net [198.51.100.3] (may be forged))"
     " by mx.example.com (8.17.1/8.17.1) with ESMTP id 44E7C1aB012345",
     "helo.example.net", "rdns.example.net", "198.51.100.3"),
    ("from sendmail.example.net ([198.51.100.4]) by mx.example.com (8.17.1) with ESMTP",
     "sendmail.example.net", None, "198.51.100.4"),
    ("from rdns.example.org ([198.51.100.5]:50123 helo=helo.example.org) by mx.example.com"
     " with esmtps (TLS1.3) (Exim 4.96) id 1s6n8W-0004Zk-1x",
     "helo.example.org", "rdns.example.org", "198.51.100.5"),
    ("from rdns.example.org ([198.51.100.6]:50123) by mx.example.com with esmtp (Exim 4.96)",
     "rdns.example.org", "rdns.example.org", "198.51.100.6"),
    ("from [198.51.100.7] (port=50123 helo=laptop.example.org) by mx.example.com with esmtpsa",
     "laptop.example.org", None, "198.51.100.7"),
    ("from EXCH01.corp.example.com (10.1.2.3) by EXCH02.corp.example.com (10.1.2.4)"
     " with Microsoft SMTP Server id 15.1.2507.35",
     "EXCH01.corp.example.com", None, "10.1.2.3"),
    ("from unknown (HELO relay.example.net) (203.0.113.8) by mx.example.com with SMTP",
     "relay.example.net", None, "203.0.113.8"),
    ("from mail.example.org (HELO mta.example.org) (user@198.51.100.9) by relay.example.net",
     "mta.example.org", "mail.example.org", "198.51.100.9"),
    ("from courier.example.net (courier.example.net [::ffff:198.51.100.10])"
     " by mx.example.com with ESMTP; Tue, 14 May 2024 09:12:01 +0000",
     "courier.example.net", "courier.example.net", "198.51.100.10"),
    ("by mx.example.com (Postfix, from userid 1000) id 4XyZ; Tue, 14 May 2024 09:12:01 +0000",
     None, None, None),
    ("(qmail 12345 invoked from network); 17 May 2024 08:00:03 -0000", None, None, None),
    ("from [198.51.100.11] by mx.example.com", "[198.51.100.11]", None, "198.51.100.11"),
    ("garbage ((( unbalanced ) ) ) ;;; [", None, None, None),
    ("", None, None, None),
]


@pytest.mark.parametrize("value, helo, rdns, ip", RECEIVED_FORMS)
def test_received_forms(value: str, helo: str | None, rdns: str | None, ip: str | None) -> None:
    """The MTA forms of Received: HELO, rDNS and client address each where they belong."""
    received = parse_received(value)
    assert (received.from_hostname, received.real_hostname, received.real_ip) == (helo, rdns, ip)
    assert received.helo == received.from_hostname and received.from_ip == received.real_ip


def test_received_other_fields() -> None:
    """by, with (lowercased), for and the date are read too; the raw text is unfolded."""
    received = parse_received(
        "from a.example.net (a.example.net [198.51.100.1])\r\n\tby mx.example.com (Postfix)"
        " with ESMTPSA id 4X\r\n\tfor <Bob@Example.com>; Tue, 14 May 2024 09:12:01 +0200"
    )
    assert received == Received(
        raw="from a.example.net (a.example.net [198.51.100.1])\tby mx.example.com (Postfix)"
        " with ESMTPSA id 4X\tfor <Bob@Example.com>; Tue, 14 May 2024 09:12:01 +0200",
        from_hostname="a.example.net",
        real_hostname="a.example.net",
        real_ip="198.51.100.1",
        by_hostname="mx.example.com",
        proto="esmtpsa",
        for_addr="Bob@example.com",
        timestamp=1715670721.0,
    )


def test_received_date_without_zone_is_utc() -> None:
    """A '-0000' date (zone unknown) is read as UTC, whatever the local time zone."""
    received = parse_received("from a (b.example.net [192.0.2.1]) by c; 17 May 2024 08:00:03 -0000")
    assert received.timestamp == 1715932803.0


def test_all_received_headers_are_kept_top_first() -> None:
    """Facts.received lists every Received header, parsed, in message order."""
    f = facts("postfix_chain.eml")
    assert [r.real_ip for r in f.received] == ["10.0.0.12", "198.51.100.23", "192.168.1.50"]
    assert [r.by_hostname for r in f.received] == [
        "store.example.com", "mx2.internal.example.com", "helo.sender.example.net"
    ]


# -- Authentication-Results -----------------------------------------------------------


def test_authentication_results_parsing() -> None:
    """RFC 8601: authserv-id, results, comments holding ';', quoted values, versions."""
    authserv_id, results = parse_authentication_results(
        'mx.example.com; dkim=pass (2048-bit key; secure) header.d=example.com '
        'header.b="Xy+/z=9a"; dkim/1=temperror header.i=@Example.NET; '
        'spf=softfail (no; really) smtp.mailfrom="Bounce@Example.NET"'
    )
    assert authserv_id == "mx.example.com"
    assert results == [
        AuthResult("dkim", "pass", {"header.d": "example.com", "header.b": "Xy+/z=9a"}),
        AuthResult("dkim", "temperror", {"header.i": "@Example.NET"}),
        AuthResult("spf", "softfail", {"smtp.mailfrom": "Bounce@Example.NET"}),
    ]


@pytest.mark.parametrize(
    "value, expected",
    [
        ("mx.example.com 1; none", ("mx.example.com", [])),
        ('"Quoted.Example.COM"; spf=none', ("quoted.example.com", [AuthResult("spf", "none", {})])),
        ("dkim=pass header.d=example.com",
         (None, [AuthResult("dkim", "pass", {"header.d": "example.com"})])),
        ("", (None, [])),
        ("mx.example.com; dkim=", ("mx.example.com", [])),
    ],
)
def test_authentication_results_edge_forms(
    value: str, expected: tuple[str | None, list[AuthResult]]
) -> None:
    """'none', a quoted authserv-id, a missing one, and empty or cut-off headers."""
    assert parse_authentication_results(value) == expected


def test_dkim_results_from_every_header_without_authserv_id() -> None:
    """Without authserv_id every header counts, forged ones too; header.i gives a domain
    when header.d is missing, and a result with neither is skipped."""
    f = facts("auth_results.eml")
    assert f.dkim == (
        DkimResult("example.com", "pass"),
        DkimResult("marketing.example.net", "fail"),
        DkimResult("quoted.example.org", "neutral"),
        DkimResult("example.com", "temperror"),
        DkimResult("paypal.com", "pass"),
    )


def test_only_trusted_authserv_ids_are_read() -> None:
    """authserv_id drops the header a sender forged; ARC-Authentication-Results is ignored."""
    f = facts("auth_results.eml", authserv_id="MX.example.com")
    assert [d.domain for d in f.dkim] == [
        "example.com", "marketing.example.net", "quoted.example.org", "example.com"
    ]
    assert (f.spf_result, f.spf_domain, f.user) == ("softfail", "example.net", "alice@example.com")
    f = facts("auth_results.eml", authserv_id=["other.example.com", "evil.example.org"])
    assert f.dkim == (DkimResult("paypal.com", "pass"),)
    assert (f.spf_result, f.spf_domain) == ("pass", "paypal.com")
    f = facts("auth_results.eml", authserv_id=[])
    assert (f.dkim, f.spf_result, f.user) == ((), None, None)


def test_spf_result_and_domain() -> None:
    """spf= gives the result and the domain of smtp.mailfrom, lowercased."""
    f = facts("postfix_chain.eml", authserv_id="mx2.internal.example.com")
    assert f.dkim == (DkimResult("sender.example.net", "pass"),)
    assert (f.spf_result, f.spf_domain) == ("pass", "mail.sender.example.net")


def test_spf_domain_falls_back_to_helo() -> None:
    """Without smtp.mailfrom (a bounce), the domain of smtp.helo is the SPF domain."""
    data = (b"Authentication-Results: mx.example.com; spf=pass smtp.helo=Out.Example.NET\n"
            b"From: a@example.net\n\nbody\n")
    f = facts_from_message(data)
    assert (f.spf_result, f.spf_domain) == ("pass", "out.example.net")


# -- addresses and headers ------------------------------------------------------------


def test_addresses() -> None:
    """Return-Path, From, To and Cc: addresses only, domains lowercased, local parts kept."""
    f = facts("postfix_chain.eml")
    assert f.from_smtp == "Bounce+Tag@mail.sender.example.net"
    assert f.from_mime == "Alice@sender.example.net"
    assert f.rcpts == ("bob@example.com", "carol@example.com", "dave@example.org")


def test_null_sender_is_empty_string() -> None:
    """Return-Path: <> (a bounce) is the empty envelope sender, not an unknown one."""
    f = facts("attachment.eml")
    assert f.from_smtp == ""
    assert facts("microsoft.eml").from_smtp is None


def test_given_rcpts_override_header_recipients() -> None:
    """Envelope recipients passed by the caller replace To/Cc."""
    f = facts("postfix_chain.eml", rcpts=["x@example.net"])
    assert f.rcpts == ("x@example.net",)


def test_subject_is_decoded() -> None:
    """RFC 2047 encoded words in the Subject are decoded."""
    assert facts("postfix_chain.eml").subject == "Quarterly résumé and links"


def test_headers_mapping() -> None:
    """headers: lowercased names, raw unfolded values in message order."""
    f = facts("auth_results.eml")
    assert len(f.headers["authentication-results"]) == 3
    assert f.headers["authentication-results"][1] == "mx.example.com 1; none"
    assert f.headers["arc-authentication-results"][0].startswith("i=1; arc.example.net;")
    assert "\n" not in f.headers["authentication-results"][0]
    assert f.headers["subject"] == ("signed",)


# -- URLs and e-mail addresses of the body --------------------------------------------


def test_quoted_printable_text_urls() -> None:
    """A QP body is decoded (soft line breaks joined) before URLs are looked for."""
    f = facts("postfix_chain.eml")
    assert [(u.url, sorted(u.flags)) for u in f.urls] == [
        ("https://docs.sender.example.net/q2/report?id=42&lang=en", ["text"]),
        ("http://www.archive.example.org/2024.", ["schemaless", "text"]),
        ("mailto:support@sender.example.net", ["schemaless", "text"]),
        ("http://example.co.uk/faq.", ["schemaless", "text"]),
    ]
    assert f.emails == ("support@sender.example.net",)


def test_base64_html_part_and_query_urls() -> None:
    """A base64 HTML alternative is decoded; redirect targets in queries come out too."""
    urls = urls_by_host(facts("exim_ipv6.eml"))
    assert sorted(urls) == [
        "example.com", "lists.example.org", "news.example.org", "pixel.example.net",
        "shop.example.com", "track.example.net",
    ]
    assert urls["news.example.org"].flags == {"text"}  # in both parts: first seen wins
    assert urls["shop.example.com"].flags == {"query"}
    assert urls["pixel.example.net"].flags == {"html", "image"}
    assert urls["example.com"] == Url("example.com", "mailto:bob@example.com",
                                      frozenset({"query", "schemaless"}))


def test_html_phishing_message() -> None:
    """Displayed-URL phishing, a redirector, images, the Subject: each flagged as Rspamd."""
    f = facts("phishing_html.eml")
    got = [(u.url, sorted(u.flags)) for u in f.urls]
    assert got == [
        ("https://www.paypal.com/verify", ["html_displayed", "subject"]),
        ("https://www.paypal.com/signin", ["html_displayed"]),
        ("https://login.phish.example.net/paypal/", ["html", "phished", "url_displayed"]),
        ("https://redirector.example.com/r?u=https://drop.example.org/pay&t=1", ["html"]),
        ("https://drop.example.org/pay&t=1", ["query"]),
        ("http://www.example.com/help", ["html", "url_displayed"]),
        ("https://accounts.example.com/", ["html", "url_displayed"]),
        ("https://cdn.phish.example.net/logo.png", ["html", "image"]),
        ("http://www.example.com", ["html_displayed", "schemaless"]),
        ("http://example.com", ["html_displayed", "schemaless"]),
        ("https://offers.example.org/caf%C3%A9", ["text"]),
    ]
    # The address in the HTML text is not a URL: Rspamd scans HTML text strictly.
    assert f.emails == ()


def test_charset_decoding_and_attachments() -> None:
    """A windows-1251 base64 part is decoded; a text attachment is not body text."""
    f = facts("attachment.eml")
    assert [u.url for u in f.urls] == [
        "https://status.example.net/queue,", "mailto:postmaster@example.net"
    ]
    assert f.emails == ("postmaster@example.net",)


def test_rfc2231_charset_and_8bit_mime_headers_are_read() -> None:
    """Content-Type parameters in RFC 2231 form and 8-bit bytes in headers do not stop
    the parts from being read and decoded."""
    latin1 = facts_from_message(
        b"Content-Type: text/plain; charset*=iso-8859-1''iso-8859-1\r\n"
        b"Content-Transfer-Encoding: quoted-printable\r\n\r\n"
        b"visit http://caf=E9.example.org/ today\r\n"
    )
    assert [(u.host, u.url) for u in latin1.urls] == [
        ("caf\u00e9.example.org", "http://caf\u00e9.example.org/")]
    eight_bit = facts_from_message(
        b'Content-Type: multipart/mixed; boundary="==x"\r\n'
        b"From: \xc3\xa9 <a@b.example>\r\nX-Note: \xff\r\n\r\n--==x\r\n"
        b'Content-Type: text/html; charset="utf-8"\r\n'
        b"Content-Disposition: inline; filename*=utf-8''a%20b.html\r\n\r\n"
        b'<a href="http://example.com/">x</a>\r\n--==x--\r\n'
    )
    assert eight_bit.from_mime == "a@b.example"
    assert [u.url for u in eight_bit.urls] == ["http://example.com/"]


def test_given_urls_replace_the_message_urls() -> None:
    """URLs a caller resolved (e.g. a redirect) are passed as facts, tuple-ised."""
    resolved = [Url("t.example.org", "https://t.example.org/", frozenset({"redirected"}),
                    redirected_to="https://final.example.net/")]
    f = facts("phishing_html.eml", urls=resolved)
    assert f.urls == tuple(resolved)


# -- broken input ---------------------------------------------------------------------


def test_broken_headers_do_not_raise() -> None:
    """Bad encoded words, 8-bit bytes, unbalanced Received, bad AR and an unknown
    charset: the facts that can be read are, the rest is left out."""
    f = facts("broken_header.eml")
    assert (f.ip, f.from_mime, f.rcpts, f.dkim) == (None, None, (), ())
    assert f.subject is not None and "café" in f.subject
    assert [u.url for u in f.urls] == ["https://broken.example.com/link"]
    assert len(f.received) == 2
    assert f.headers["x-weird-header-without-value"] == ("",)


@pytest.mark.parametrize(
    "data, message_part",
    [
        ("From: a@example.com\n\nbody", "got str"),
        (None, "got NoneType"),
        (42, "got int"),
        (b"", "empty input"),
        (b"  \r\n\r\n", "empty input"),
        (b"just some words, no header\nand a second line\n", "no header section"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "no header section"),
    ],
)
def test_not_a_message(data: object, message_part: str) -> None:
    """Input that is not a message at all raises MessageError saying what is wrong."""
    with pytest.raises(MessageError, match=message_part):
        facts_from_message(data)  # type: ignore[arg-type]


def test_bytes_like_input_is_accepted() -> None:
    """bytearray and memoryview are messages as much as bytes are."""
    data = message("qmail.eml")
    assert facts_from_message(bytearray(data)) == facts_from_message(data)
    assert facts_from_message(memoryview(data)).ip == "203.0.113.7"


def test_unknown_fact_is_a_type_error() -> None:
    """A misspelt fact keyword fails loudly instead of being ignored."""
    with pytest.raises(TypeError, match="hleo"):
        facts("qmail.eml", hleo="x")


def test_given_facts_win() -> None:
    """Any fact passed overrides the message; sequences become tuples."""
    f = facts(
        "auth_results.eml",
        dkim=[DkimResult("given.example.com", "pass")],
        spf_result="fail",
        asn="64496",
        country="NL",
        spf_record="v=spf1 -all",
        user=None,
    )
    assert f.dkim == (DkimResult("given.example.com", "pass"),)
    assert (f.spf_result, f.spf_domain) == ("fail", "example.net")
    assert (f.asn, f.country, f.spf_record, f.user) == ("64496", "NL", "v=spf1 -all", None)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=400))
def test_arbitrary_bytes_give_facts_or_message_error(data: bytes) -> None:
    """Whatever the bytes, the result is Facts or MessageError, never another exception."""
    try:
        assert isinstance(facts_from_message(data), Facts)
    except MessageError:
        pass


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(sorted(p.name for p in MESSAGES.glob("*.eml"))),
       st.lists(st.tuples(st.integers(0, 4000), st.integers(0, 255)), max_size=20))
def test_mutated_messages_never_raise(name: str, flips: list[tuple[int, int]]) -> None:
    """Real messages with bytes overwritten still parse without an exception."""
    data = bytearray(message(name))
    for position, value in flips:
        data[position % len(data)] = value
    try:
        facts_from_message(bytes(data))
    except MessageError:
        pass
