"""client.selectors: the tokens Rspamd's reputation selectors derive, as zones publish them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from client.facts import DkimResult, Facts, Url
from client.selectors import (
    SelectorError,
    Token,
    dkim_label,
    dkim_tokens,
    generic_tokens,
    ip_tokens,
    is_local_ip,
    rule_applies,
    spf_record_text,
    spf_token,
    spf_tokens,
    url_tokens,
)
from listformat.hashing import HashScheme, hash_token
from listformat.tokens import redis_key, token_of

VECTORS = Path(__file__).resolve().parents[2] / "shared" / "vectors" / "rspamd-hash-vectors.json"
SPF_RECORD = "v=spf1 include:_spf.google.com ~all"


def _round_trip(token: Token, **masks: int) -> None:
    """The token is what listformat.tokens publishes for the key Rspamd writes for it."""
    selector = token.component if token.component in ("asn", "country") else token.selector
    if token.component == "ipnet":
        selector = "ip"
    key = redis_key(selector, token.value, **masks)
    assert token_of(selector, key, **masks) == token.value


def _url(url: str, *flags: str) -> Url:
    from urllib.parse import urlsplit

    host = urlsplit(url).hostname or url.partition(":")[2].rpartition("@")[2]
    return Url(host, url, frozenset(flags))


# ------------------------------------------------------------------------------ ip


def test_ipv4_sender_gives_address_asn_and_country_with_rspamd_weights() -> None:
    """An IPv4 sender is its own address (mask 32), asn 0.4 and country 0.01 follow."""
    tokens = ip_tokens(Facts(ip="192.0.2.1", asn="15169", country="US"))
    assert tokens == [
        Token("ip", "ip", "192.0.2.1", 1.0),
        Token("ip", "asn", "15169", 0.4),
        Token("ip", "country", "US", 0.01),
    ]
    assert redis_key("ip", "192.0.2.1") == "i:192.0.2.1"
    assert redis_key("asn", "15169") == "a:15169"
    assert redis_key("country", "US") == "c:US"
    for token in tokens:
        _round_trip(token)


@pytest.mark.parametrize(
    ("ip", "token", "key"),
    [
        ("2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64", "i:2001:db8:1:2::"),
        ("2001:DB8:0:0::1", "2001:db8::/64", "i:2001:db8::"),
        ("2001:db8::", "2001:db8::/64", "i:2001:db8::"),
        ("::ffff:192.0.2.7", "192.0.2.7", "i:192.0.2.7"),
        ("[192.0.2.9]", "192.0.2.9", "i:192.0.2.9"),
    ],
)
def test_ipv6_sender_is_its_64_network(ip: str, token: str, key: str) -> None:
    """Rspamd counts an IPv6 sender under its /64 network address; mapped IPv4 is IPv4."""
    (ip_token,) = ip_tokens(Facts(ip=ip))
    assert ip_token.value == token
    assert redis_key("ip", ip_token.value) == key
    assert token_of("ip", key) == token


@pytest.mark.parametrize(
    ("ip", "v4", "v6", "token"),
    [
        ("192.0.2.77", 24, 64, "192.0.2.0/24"),
        ("192.0.2.77", 16, 64, "192.0.0.0/16"),
        ("2001:db8:1:2::5", 32, 48, "2001:db8:1::/48"),
        ("2001:db8:1:2::5", 32, 128, "2001:db8:1:2::5"),
    ],
)
def test_masks_make_networks_that_round_trip(ip: str, v4: int, v6: int, token: str) -> None:
    """Shorter masks give network tokens, the ones token_of gives for the masked keys."""
    (ip_token,) = ip_tokens(Facts(ip=ip), ipv4_mask=v4, ipv6_mask=v6)
    assert ip_token.value == token
    _round_trip(ip_token, ipv4_mask=v4, ipv6_mask=v6)


def test_ipnet_adds_a_network_token_when_asked() -> None:
    """ipnet=True adds the /24 (or /48) around the sender, as a mask-24 rule counts it."""
    tokens = ip_tokens(Facts(ip="192.0.2.77"), ipnet=True)
    assert [t.component for t in tokens] == ["ip", "ipnet"]
    assert tokens[1].value == "192.0.2.0/24"
    _round_trip(tokens[1], ipv4_mask=24)
    v6 = ip_tokens(Facts(ip="2001:db8:1:2::5"), ipnet=(24, 40))
    assert v6[1] == Token("ip", "ipnet", "2001:db8::/40", 1.0)
    _round_trip(v6[1], ipv6_mask=40)


def test_ipnet_no_broader_than_the_ip_mask_is_dropped() -> None:
    """A network token equal to the ip token would only be asked twice."""
    tokens = ip_tokens(Facts(ip="192.0.2.77"), ipv4_mask=24, ipnet=(24, 48))
    assert [t.component for t in tokens] == ["ip"]
    with pytest.raises(ValueError):
        ip_tokens(Facts(ip="192.0.2.77"), ipnet=(33, 48))


@pytest.mark.parametrize("ip", [None, "", "not-an-ip", "300.1.2.3", "fe80::1%eth0"])
def test_no_valid_sender_no_tokens_at_all(ip: str | None) -> None:
    """Rspamd returns before asn and country when the sender IP is missing or invalid."""
    assert ip_tokens(Facts(ip=ip, asn="15169", country="US")) == []


@pytest.mark.parametrize(
    ("asn", "expected"), [("AS15169", "15169"), (" as64496 ", "64496"), ("x1", None), ("", None)]
)
def test_asn_is_the_bare_number(asn: str, expected: str | None) -> None:
    """The asn module stores the decimal number; other forms are normalised or dropped."""
    tokens = ip_tokens(Facts(ip="192.0.2.1", asn=asn))
    found = [t.value for t in tokens if t.component == "asn"]
    assert found == ([expected] if expected else [])


def test_asn_and_country_can_be_left_out() -> None:
    """Callers may query the ip component alone."""
    tokens = ip_tokens(Facts(ip="192.0.2.1", asn="1", country="US"), asn=False, country=False)
    assert [t.component for t in tokens] == ["ip"]


def test_bad_masks_raise() -> None:
    """A mask outside the address length is a configuration error."""
    with pytest.raises(ValueError):
        ip_tokens(Facts(ip="192.0.2.1"), ipv4_mask=0)
    with pytest.raises(ValueError):
        ip_tokens(Facts(ip="192.0.2.1"), ipv6_mask=129)


@pytest.mark.parametrize(
    ("ip", "local"),
    [
        ("127.0.0.1", True), ("10.1.2.3", True), ("172.16.0.1", True), ("172.32.0.1", False),
        ("192.168.1.1", True), ("169.254.1.1", True), ("::1", True), ("fe80::1", True),
        ("fec0::1", True), ("fd12::1", True), ("192.0.2.1", False), ("2001:db8::1", False),
        ("::ffff:10.0.0.1", True), (None, False), ("junk", False),
    ],
)  # fmt: skip
def test_is_local_follows_rspamd_local_addrs(ip: str | None, local: bool) -> None:
    """Loopback, IPv6 link/site-local and Rspamd's default local_addrs are local."""
    assert is_local_ip(ip) is local


@pytest.mark.parametrize(
    ("inbound", "outbound", "facts", "applies"),
    [
        (True, False, Facts(ip="192.0.2.1"), True),
        (True, False, Facts(ip="10.0.0.1"), False),
        (True, False, Facts(ip="192.0.2.1", user="alice"), False),
        (False, True, Facts(ip="192.0.2.1"), False),
        (False, True, Facts(ip="10.0.0.1"), True),
        (False, True, Facts(ip="192.0.2.1", user="alice"), True),
        (True, True, Facts(ip="10.0.0.1", user="alice"), True),
        (False, False, Facts(ip="10.0.0.1"), True),
        (True, False, Facts(), True),
    ],
)
def test_rule_applies_like_is_rule_applicable(
    inbound: bool, outbound: bool, facts: Facts, applies: bool
) -> None:
    """Outbound means authenticated or local; neither setting, like both, means all."""
    assert rule_applies(facts, inbound=inbound, outbound=outbound) is applies


def test_ip_selector_skips_outbound_mail_by_default() -> None:
    """Rspamd's ip rule is inbound-only: local and authenticated senders give no tokens."""
    assert ip_tokens(Facts(ip="10.0.0.1")) == []
    assert ip_tokens(Facts(ip="192.0.2.1", user="alice")) == []
    assert ip_tokens(Facts(ip="127.0.0.2"), outbound=True)[0].value == "127.0.0.2"
    assert ip_tokens(Facts(ip="10.0.0.1"), local_networks=())[0].value == "10.0.0.1"


# ---------------------------------------------------------------------------- dkim


@pytest.mark.parametrize(
    ("result", "label"),
    [
        ("pass", "a"), ("PASS", "a"), ("fail", "r"), ("reject", "r"), ("temperror", "u"),
        ("permerror", "u"), ("neutral", "u"), ("policy", "u"), ("softfail", "u"),
        ("+", "a"), ("-", "r"), ("?", "u"), ("~", "u"), ("none", None), ("", None),
    ],
)  # fmt: skip
def test_dkim_label_maps_results_to_rspamd_trace_marks(result: str, label: str | None) -> None:
    """pass is a (DKIM_TRACE '+'), fail r ('-'), anything else u; none has no signature."""
    assert dkim_label(result) == label


def test_dkim_tokens_per_etld1_with_only_accepted_weighing() -> None:
    """One token per signing eTLD+1; a valid signature weighs 1, others 0."""
    facts = Facts(
        dkim=(
            DkimResult("mail.example.co.uk", "pass"),
            DkimResult("bounce.example.net", "fail"),
            DkimResult("example.org", "temperror"),
            DkimResult("unsigned.example", "none"),
        )
    )
    tokens = dkim_tokens(facts)
    assert tokens == [
        Token("dkim", "dkim", "example.co.uk.a", 1.0),
        Token("dkim", "dkim", "example.net.r", 0.0),
        Token("dkim", "dkim", "example.org.u", 0.0),
    ]
    for token in tokens:
        assert redis_key("dkim", token.value) == token.value
        _round_trip(token)


def test_dkim_last_signature_of_a_domain_wins() -> None:
    """Rspamd's table keyed by eTLD+1 keeps the last result seen for it."""
    facts = Facts(dkim=(DkimResult("a.example.com", "pass"), DkimResult("example.com", "fail")))
    assert [t.value for t in dkim_tokens(facts)] == ["example.com.r"]
    facts = Facts(dkim=(DkimResult("example.com", "fail"), DkimResult("b.example.com", "pass")))
    assert [t.value for t in dkim_tokens(facts)] == ["example.com.a"]


def test_dkim_without_results_has_no_tokens() -> None:
    """No DKIM_TRACE, no token."""
    assert dkim_tokens(Facts()) == []
    assert dkim_tokens(Facts(dkim=(DkimResult("", "pass"),))) == []


# ----------------------------------------------------------------------------- spf


def _rspamd_base32_blake2(data: str) -> str:
    vectors: list[dict[str, Any]] = json.loads(VECTORS.read_text(encoding="utf-8"))
    for vector in vectors:
        if vector["alg"] == "blake2" and vector["encoding"] == "base32" and vector["input"] == data:
            output: str = vector["output"]
            return output
    raise LookupError(data)


def test_spf_token_is_32_chars_of_rspamd_base32_blake2_of_the_record() -> None:
    """The spf token equals Rspamd's own blake2/base32 output for the record, cut to 32."""
    full = _rspamd_base32_blake2(SPF_RECORD)
    assert hash_token(SPF_RECORD, HashScheme("blake2", "base32", None)) == full
    assert spf_token(SPF_RECORD) == full[:32]
    tokens = spf_tokens(Facts(spf_result="pass", spf_record=SPF_RECORD, spf_domain="example.com"))
    assert tokens == [Token("spf", "spf", full[:32], 1.0)]
    assert redis_key("spf", tokens[0].value) == tokens[0].value
    _round_trip(tokens[0])


def test_spf_token_regression_value() -> None:
    """A fixed record keeps its token (a change here breaks every published spf zone)."""
    assert spf_token("v=spf1 -all") == hash_token("v=spf1 -all", HashScheme("blake2", "base32", 32))
    assert len(spf_token("v=spf1 -all")) == 32


@pytest.mark.parametrize(
    ("given", "text"),
    [
        (SPF_RECORD, SPF_RECORD),
        ('"v=spf1 include:_spf.google.com ~all"', SPF_RECORD),
        ('"v=spf1 include:_spf.google.com" " ~all"', SPF_RECORD),
        ('"v=spf1 " "include:_spf.google.com ~all"', SPF_RECORD),
        ('"v=spf1 a\\"b \\092 \\065"', 'v=spf1 a"b \\ A'),
        ("v=spf1 -all ", "v=spf1 -all "),
        ('"unterminated', '"unterminated'),
    ],
)
def test_spf_record_text_is_the_dns_text(given: str, text: str) -> None:
    """Zone-file quoting is undone (strings joined with nothing); other text is kept."""
    assert spf_record_text(given) == text


def test_spf_quoted_and_plain_records_give_one_token() -> None:
    """dig output and the record text hash alike."""
    assert spf_token('"v=spf1 include:_spf.google.com" " ~all"') == spf_token(SPF_RECORD)


@pytest.mark.parametrize(
    "facts",
    [
        Facts(spf_result="fail", spf_record=SPF_RECORD),
        Facts(spf_result="softfail", spf_record=SPF_RECORD),
        Facts(spf_result="neutral", spf_record=SPF_RECORD),
        Facts(spf_result="pass"),
        Facts(spf_result="pass", spf_record=""),
        Facts(spf_record=SPF_RECORD),
    ],
)
def test_spf_needs_a_pass_and_a_record(facts: Facts) -> None:
    """Rspamd skips the spf rule without R_SPF_ALLOW or without the record."""
    assert spf_tokens(facts) == []


def test_spf_pass_is_caseless() -> None:
    """Authentication-Results words are caseless."""
    assert spf_tokens(Facts(spf_result=" Pass", spf_record=SPF_RECORD))


# ----------------------------------------------------------------------------- url


def test_url_tokens_count_distinct_urls_per_etld1() -> None:
    """Each distinct URL counts once for its eTLD+1; weight is relative to the top one."""
    facts = Facts(
        urls=(
            _url("https://www.example.com/a"),
            _url("https://shop.example.com/b"),
            _url("https://www.example.com/a"),  # the same URL again: counted once
            _url("HTTPS://WWW.EXAMPLE.COM/a"),  # scheme and host are caseless
            _url("http://news.example.co.uk/"),
        )
    )
    tokens = url_tokens(facts)
    assert tokens == [
        Token("url", "url", "example.com", 1.0, 2),
        Token("url", "url", "example.co.uk", 0.5, 1),
    ]
    for token in tokens:
        assert redis_key("url", token.value) == token.value
        _round_trip(token)


def test_url_tokens_skip_displayed_images_and_other_protocols() -> None:
    """Link text URLs, images, inline content and tel: are not in get_urls(true)."""
    facts = Facts(
        urls=(
            _url("https://shown.example.net/", "html_displayed", "html"),
            _url("https://img.example.org/x.png", "image"),
            _url("cid:part1@example.info", "content"),
            _url("tel:+123456"),
            _url("https://real.example.com/", "html"),
            _url("ftp://files.example.edu/x"),
        )
    )
    assert [t.value for t in url_tokens(facts)] == ["example.com", "example.edu"]


def test_first_occurrence_flags_stand() -> None:
    """A URL first seen as link text is not counted even when it is also a link."""
    facts = Facts(
        urls=(
            _url("https://a.example.com/", "html_displayed"),
            _url("https://a.example.com/", "html"),
            _url("https://b.example.org/", "html"),
            _url("https://b.example.org/", "html_displayed"),
        )
    )
    assert [t.value for t in url_tokens(facts)] == ["example.org"]


def test_mailto_and_body_addresses_count_once() -> None:
    """get_urls(true) includes e-mail addresses; a mailto link and the text are one."""
    facts = Facts(
        urls=(_url("mailto:Sales@Example.com"),),
        emails=("sales@example.com", "info@other.example.org"),
    )
    tokens = url_tokens(facts)
    assert [(t.value, t.hits) for t in tokens] == [("example.com", 1), ("example.org", 1)]


def test_url_tokens_keep_the_most_frequent_max_urls() -> None:
    """The max_urls most frequent domains, ties in order of first appearance."""
    urls = [_url(f"https://h{i}.d{n}.com/") for n in range(5) for i in range(n + 1)]
    tokens = url_tokens(Facts(urls=tuple(urls)), max_urls=3)
    assert [(t.value, t.hits) for t in tokens] == [
        ("d4.com", 5), ("d3.com", 4), ("d2.com", 3)
    ]  # fmt: skip
    assert [t.weight for t in tokens] == [1.0, 0.8, 0.6]
    ties = url_tokens(Facts(urls=(_url("http://b.example/"), _url("http://a.example/"))),
                      max_urls=1)  # fmt: skip
    assert [t.value for t in ties] == ["b.example"]
    with pytest.raises(ValueError):
        url_tokens(Facts(), max_urls=0)


def test_url_without_host_or_urls_gives_nothing() -> None:
    """file:/// URLs have no host; a message without URLs has no url tokens."""
    assert url_tokens(Facts(urls=(Url("", "file:///etc/passwd", frozenset()),))) == []
    assert url_tokens(Facts()) == []


def test_redirected_urls_count_for_their_own_domain() -> None:
    """A redirector counts for its own domain; an unknown target changes nothing."""
    facts = Facts(urls=(_url("https://bit.ly/x", "redirected"), _url("https://t.example/")))
    assert [t.value for t in url_tokens(facts)] == ["bit.ly", "t.example"]


def test_a_redirect_target_counts_once_less() -> None:
    """Rspamd takes one from the count of a redirector's target domain."""
    redirector = Url("bit.ly", "https://bit.ly/x", frozenset({"redirected"}),
                     redirected_to="https://www.target.com/landing")  # fmt: skip
    facts = Facts(
        urls=(
            redirector,
            _url("https://www.target.com/landing", "redirect_target"),
            _url("https://cdn.target.com/a.css"),
            _url("https://other.example/"),
        )
    )
    assert [(t.value, t.hits) for t in url_tokens(facts)] == [
        ("bit.ly", 1), ("target.com", 1), ("other.example", 1)
    ]  # fmt: skip
    alone = Facts(urls=(redirector, _url("https://www.target.com/landing")))
    assert [t.value for t in url_tokens(alone)] == ["bit.ly"]
    unseen = Facts(urls=(redirector,))
    assert [t.value for t in url_tokens(unseen)] == ["bit.ly"]


# ------------------------------------------------------------------------- generic


def test_generic_tokens_are_the_expression_values() -> None:
    """Each value is a token of weight 1 named as the zone publishes it."""
    facts = Facts(from_smtp="Bob@Example.COM", rcpts=("a@x.example", "b@y.example"))
    assert generic_tokens("from('smtp'):domain.lower", facts) == [
        Token("generic", "generic", "example.com", 1.0)
    ]
    tokens = generic_tokens("rcpts:domain", facts)
    assert [t.value for t in tokens] == ["x.example", "y.example"]
    for token in tokens:
        _round_trip(token)


def test_generic_tokens_join_selectors_with_the_delimiter() -> None:
    """Rspamd's generic rule combines selectors with ':' unless told otherwise."""
    facts = Facts(ip="192.0.2.1", from_smtp="bob@example.com")
    assert [t.value for t in generic_tokens("ip;from:domain", facts)] == ["192.0.2.1:example.com"]
    assert [t.value for t in generic_tokens("ip;from:domain", facts, delimiter="|")] == [
        "192.0.2.1|example.com"
    ]


def test_generic_tokens_drop_empty_and_repeated_values() -> None:
    """Empty strings cannot be names, and one value is looked up once."""
    facts = Facts(rcpts=("a@x.example", "b@x.example"))
    assert [t.value for t in generic_tokens("rcpts:domain", facts)] == ["x.example"]
    assert generic_tokens("id", facts) == []
    assert generic_tokens("helo", facts) == []


def test_generic_tokens_reject_bad_expressions() -> None:
    """A bad expression is a SelectorError naming its position."""
    with pytest.raises(SelectorError) as info:
        generic_tokens("from.bogus", Facts())
    assert info.value.position == 5
