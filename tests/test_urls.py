"""client.urls: URLs of text, HTML and Subject, found and flagged as Rspamd does."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from client.tld import has_known_suffix
from client.urls import (
    Url,
    UrlSet,
    extract_html_urls,
    extract_subject_urls,
    extract_text_urls,
    parse_url,
)


def by_host(urls: list[Url]) -> dict[str, Url]:
    return {u.host: u for u in urls}


def hosts(urls: list[Url]) -> list[str]:
    return [u.host for u in urls]


# -- text: what counts as a URL ------------------------------------------------------


def test_scheme_url_host_is_lowercased_and_path_kept() -> None:
    """An http URL in text keeps its path and query; only the host is normalised."""
    [url] = extract_text_urls("Visit http://WWW.Example.COM/Path?Q=1 now")
    assert url == Url("www.example.com", "http://www.example.com/Path?Q=1", frozenset({"text"}))


@pytest.mark.parametrize(
    "text, expected",
    [
        ("see www.example.org/a today", "http://www.example.org/a"),
        ("(www.example.org)", "http://www.example.org"),
        ("get ftp.example.org/pub", "ftp://ftp.example.org/pub"),
        ("docs at example.co.uk/faq", "http://example.co.uk/faq"),
        ("end of line example.net", "http://example.net"),
        ("a sentence ends at example.net. Next", "http://example.net"),
    ],
)
def test_schemaless_urls(text: str, expected: str) -> None:
    """www./ftp. hosts and bare names with a listed suffix are URLs, flagged schemaless."""
    [url] = extract_text_urls(text)
    assert url.url == expected
    assert url.flags == {"text", "schemaless"}


@pytest.mark.parametrize(
    "text",
    [
        "a comma after example.com, is not a URL end for Rspamd",
        'quoted "example.com" neither',
        "an unknown suffix: foo.unknowntld/path",
        "http://localhost/ has no listed suffix",
        "http://com/ is only a suffix",
        "a bare address 192.0.2.1 is not a URL",
        "mailto: nobody",
        "xhttp://example.com/ glued to a word",
        "http://example.com:99999/ bad port",
    ],
)
def test_not_urls(text: str) -> None:
    """What Rspamd's text scanner would not take as a URL gives nothing."""
    assert extract_text_urls(text) == []


def test_space_in_host_splits_it() -> None:
    """A space ends a URL: 'http://exa mple.com/' yields only the second word's host."""
    assert hosts(extract_text_urls("http://exa mple.com/")) == ["mple.com"]


def test_http_without_slashes() -> None:
    """'http:example.net' is a URL to Rspamd (missing slashes)."""
    assert hosts(extract_text_urls("go http:example.net")) == ["example.net"]


def test_emails_in_text_are_mailto_urls() -> None:
    """user@domain in text is a mailto URL: domain lowercased, local part kept."""
    [url] = extract_text_urls("write to Bob.Smith@Example.COM, thanks")
    assert url == Url("example.com", "mailto:Bob.Smith@example.com",
                      frozenset({"text", "schemaless"}))


def test_email_local_part_stops_at_characters_rspamd_does_not_allow() -> None:
    """'=' is not in Rspamd's local-part set: 'u=bob@example.com' is bob's address."""
    assert [u.url for u in extract_text_urls("?u=bob@example.com")] == [
        "mailto:bob@example.com"
    ]


def test_mailto_scheme() -> None:
    """mailto: URLs keep the first address; the query is not part of the URL."""
    [url] = extract_text_urls("mailto:Alice@Example.ORG?subject=hi")
    assert url.url == "mailto:Alice@example.org"
    assert url.host == "example.org"


# -- text: hosts -----------------------------------------------------------------------


def test_userinfo_is_dropped() -> None:
    """user:password@ goes; the host is what follows the last '@', as a browser reads it."""
    [url] = extract_text_urls("http://user:pw@paypal.com@evil.example.org/login")
    assert url.host == "evil.example.org"
    assert url.url == "http://evil.example.org/login"
    assert "has_user" in url.flags


def test_port_is_kept() -> None:
    """A port stays in the URL and is flagged."""
    [url] = extract_text_urls("http://example.com:8080/x")
    assert url.url == "http://example.com:8080/x"
    assert "has_port" in url.flags


@pytest.mark.parametrize(
    "text, host, flags",
    [
        ("http://192.0.2.1/x", "192.0.2.1", {"numeric"}),
        ("http://0x7f.1/", "127.0.0.1", {"numeric", "obscured"}),
        ("http://3221225985/", "192.0.2.1", {"numeric", "obscured"}),
        ("http://0300.0250.0.1/", "192.168.0.1", {"numeric", "obscured"}),
        ("http://[2001:DB8::1]:8080/x", "2001:db8::1", {"numeric", "has_port"}),
        ("http://[::ffff:192.0.2.9]/", "192.0.2.9", {"numeric"}),
    ],
)
def test_numeric_hosts_become_addresses(text: str, host: str, flags: set[str]) -> None:
    """Numeric hosts, in inet_aton forms too, are kept as the address they mean."""
    [url] = extract_text_urls(text)
    assert url.host == host
    assert flags <= url.flags


def test_ipv6_url_keeps_brackets() -> None:
    """The URL text of an IPv6 host has brackets; the host has none."""
    [url] = extract_text_urls("http://[2001:db8::1]/a")
    assert url.url == "http://[2001:db8::1]/a"


@pytest.mark.parametrize(
    "text, host, flag",
    [
        ("http://bücher.de/", "bücher.de", "idn"),
        ("http://BÜCHER.DE/", "bücher.de", "idn"),
        ("http://xn--bcher-kva.de/", "xn--bcher-kva.de", None),
        ("http://example\u3002com/", "example.com", "obscured"),
        ("http://exa%6Dple.com/", "example.com", "host_encoded"),
        ("http://example.com./", "example.com", None),
        ("http://ｅｘａｍｐｌｅ.com/", "example.com", "idn"),
    ],
)
def test_host_normalisation(text: str, host: str, flag: str | None) -> None:
    """Hosts: nameprep, lowercase, IDNA dots, percent-decoding, no trailing dot; U-labels
    and A-labels are not converted into each other."""
    [url] = extract_text_urls(text)
    assert url.host == host
    if flag is not None:
        assert flag in url.flags


# -- text: query strings and redirects ---------------------------------------------------


def test_url_in_query_string_is_extracted() -> None:
    """A URL inside another's (percent-encoded) query is a URL of its own, flagged query."""
    urls = by_host(extract_text_urls(
        "https://redirector.example.net/?u=https%3A%2F%2Fevil.example.org%2F"
    ))
    assert set(urls) == {"redirector.example.net", "evil.example.org"}
    assert urls["redirector.example.net"].flags == {"text"}
    assert urls["evil.example.org"] == Url(
        "evil.example.org", "https://evil.example.org/", frozenset({"query"})
    )


def test_parsing_never_claims_a_redirect() -> None:
    """Only an HTTP resolver knows a redirect: no parsed URL is flagged redirected."""
    urls = extract_text_urls("https://r.example.net/?u=https://t.example.org/ www.x.example.com")
    assert all("redirected" not in u.flags and u.redirected_to is None for u in urls)


def test_query_search_does_not_recurse() -> None:
    """A URL in the query of a query URL is not searched, as in Rspamd."""
    text = ("https://a.example.com/?u=https%3A%2F%2Fb.example.net%2F%3Fv%3D"
            "https%253A%252F%252Fc.example.org%252F")
    assert hosts(extract_text_urls(text)) == ["a.example.com", "b.example.net"]


def test_email_in_query_is_a_query_url() -> None:
    """An address in a query string is a mailto URL flagged query."""
    urls = by_host(extract_text_urls("https://lists.example.org/unsub?u=bob%40example.com"))
    assert urls["example.com"].url == "mailto:bob@example.com"
    assert urls["example.com"].flags == {"query", "schemaless"}


def test_each_url_appears_once() -> None:
    """The same URL twice is one entry, as in Rspamd's URL set."""
    assert len(extract_text_urls("http://example.com/a http://example.com/a")) == 1
    assert len(extract_text_urls("http://example.com/a http://example.com/b")) == 2


def test_mailto_addresses_compare_case_insensitively() -> None:
    """Two spellings of one address are one mailto URL, the first spelling kept."""
    urls = extract_text_urls("Bob@example.com and bob@EXAMPLE.com")
    assert [u.url for u in urls] == ["mailto:Bob@example.com"]


# -- HTML ----------------------------------------------------------------------------------


def test_html_tag_attributes() -> None:
    """href/src/action of a, area, form, iframe, frame count; link in <head> does not."""
    html = """<html><head><link rel="stylesheet" href="https://css.example.com/s.css">
    <title>https://title.example.com/</title></head><body>
    <a href="https://a.example.com/">x</a><area href="https://area.example.com/">
    <form action="https://form.example.net/post"></form>
    <iframe src="https://frame.example.org/"></iframe>
    <script>var u = "https://script.example.com/";</script></body></html>"""
    urls = by_host(extract_html_urls(html))
    assert set(urls) == {"a.example.com", "area.example.com", "form.example.net",
                         "frame.example.org"}
    assert all(u.flags == {"html"} for u in urls.values())


@pytest.mark.parametrize(
    "href",
    ["javascript:void(0)", "#top", "/relative/path", "?q=1", "page.html", "data:text/html,hi",
     "cid:part1@x", "tel:+123456", "file:///etc/passwd", "", "   "],
)
def test_hrefs_that_are_not_urls(href: str) -> None:
    """Fragments, relative paths without <base>, and other schemes are not URLs."""
    assert extract_html_urls(f'<a href="{href}">link</a>') == []


def test_schemaless_hrefs() -> None:
    """'//host/...' and 'host.tld/...' are taken as http URLs, flagged schemaless."""
    urls = by_host(extract_html_urls(
        '<a href="//cdn.example.net/f">a</a><a href="example.org/p">b</a>'
    ))
    assert urls["cdn.example.net"].url == "http://cdn.example.net/f"
    assert urls["example.org"].url == "http://example.org/p"
    assert all(u.flags == {"html", "schemaless"} for u in urls.values())


def test_href_without_listed_suffix_is_kept_with_no_tld() -> None:
    """In an attribute with a scheme, a host without a listed suffix stays (flag no_tld)."""
    [url] = extract_html_urls('<a href="http://intranet/wiki">wiki</a>')
    assert url.host == "intranet"
    assert url.flags == {"html", "no_tld"}


def test_base_href_resolves_relative_links() -> None:
    """Relative references resolve against the first <base href>."""
    html = ('<html><head><base href="https://base.example.com/dir/"></head>'
            '<body><a href="page.html">p</a><a href="/root">r</a></body></html>')
    assert [u.url for u in extract_html_urls(html)] == [
        "https://base.example.com/dir/page.html", "https://base.example.com/root"
    ]


def test_entities_in_attributes_are_decoded() -> None:
    """&amp; in an href is '&' in the URL."""
    [url] = extract_html_urls('<a href="https://example.com/?a=1&amp;b=2">x</a>')
    assert url.url == "https://example.com/?a=1&b=2"


def test_images_are_flagged_image() -> None:
    """img src and link rel=icon are image URLs; cid: and data: images are not URLs."""
    html = """<head><link rel="icon" href="https://icon.example.com/favicon.ico"></head>
    <img src="https://img.example.net/a.png"><img src="cid:logo@x">
    <img src="data:image/png;base64,iVBORw0KGgo=">"""
    urls = by_host(extract_html_urls(html))
    assert set(urls) == {"icon.example.com", "img.example.net"}
    assert all(u.flags == {"html", "image"} for u in urls.values())


def test_link_and_image_to_the_same_url_merge_flags() -> None:
    """A URL used as href and as img src is one URL flagged image (get_urls skips it)."""
    html = '<a href="https://x.example.com/i.png">a</a><img src="https://x.example.com/i.png">'
    [url] = extract_html_urls(html)
    assert url.flags == {"html", "image"}


def test_displayed_url_phishing() -> None:
    """<a> text that is a URL on another site: href phished, displayed URL flagged."""
    html = '<a href="https://login.phish.example.net/">https://www.paypal.com/signin</a>'
    urls = by_host(extract_html_urls(html))
    assert urls["login.phish.example.net"].flags == {"html", "url_displayed", "phished"}
    assert urls["www.paypal.com"] == Url(
        "www.paypal.com", "https://www.paypal.com/signin", frozenset({"html_displayed"})
    )


@pytest.mark.parametrize(
    "href, text",
    [
        ("http://www.example.com/help", "www.example.com"),
        ("https://accounts.example.com/", "example.com"),
        ("https://example.com/", "https://shop.example.com/"),
        ("https://xn--bcher-kva.de/", "https://bücher.de/"),
    ],
)
def test_displayed_url_on_the_same_site_is_not_phishing(href: str, text: str) -> None:
    """Same host, same eTLD+1 or IDN spelling of the same name: not phished."""
    urls = extract_html_urls(f'<a href="{href}">{text}</a>')
    [link] = [u for u in urls if "html" in u.flags]
    assert link.flags == {"html", "url_displayed"}
    assert any("html_displayed" in u.flags for u in urls)


def test_anchor_text_must_start_with_the_url() -> None:
    """'Click www.x.com' is not a displayed URL: the text does not start with it."""
    html = '<a href="https://a.example.com/">Click www.paypal.com now</a>'
    [url] = extract_html_urls(html)
    assert url.flags == {"html"}


def test_short_anchor_text_is_not_checked() -> None:
    """Anchor text of four characters or fewer is never taken as a URL."""
    [url] = extract_html_urls('<a href="https://a.example.com/">a.io</a>')
    assert url.flags == {"html"}


def test_visible_text_counts_only_urls_with_a_scheme() -> None:
    """HTML text is scanned strictly: schemes yes; www., bare names, addresses no."""
    html = ("<p>see https://vis.example.com/page or www.hidden.example.com, "
            "example.org/x and mail@example.net</p>")
    [url] = extract_html_urls(html)
    assert url.host == "vis.example.com"
    assert url.flags == {"text"}


def test_href_query_urls() -> None:
    """A URL in an href's query string is found and flagged query."""
    html = ('<a href="https://track.example.net/c?url=https%3A%2F%2Fshop.example.com%2Fsale">'
            "Sale</a>")
    urls = by_host(extract_html_urls(html))
    assert urls["shop.example.com"].flags == {"query"}
    assert urls["track.example.net"].url == "https://track.example.net/c?url=https://shop.example.com/sale"


def test_displayed_url_seen_first_in_text_becomes_displayed() -> None:
    """A URL of the text part that an HTML part displays loses 'text' (Rspamd's rule)."""
    urls = UrlSet()
    urls.add_text("Verify: https://www.paypal.com/signin")
    urls.add_html('<a href="https://evil.example.org/">https://www.paypal.com/signin</a>')
    shown = by_host(urls.urls())["www.paypal.com"]
    assert shown.flags == {"html_displayed"}


def test_href_seen_again_as_displayed_keeps_its_flags() -> None:
    """Hrefs are collected before displayed URLs, so an href keeps counting."""
    html = ('<p><a href="https://a.example.com/">https://b.example.org/</a></p>'
            '<p><a href="https://b.example.org/">b</a></p>')
    urls = by_host(extract_html_urls(html))
    assert urls["b.example.org"].flags == {"html"}
    assert urls["a.example.com"].flags == {"html", "url_displayed", "phished"}


def test_broken_html_does_not_raise() -> None:
    """Unclosed tags, stray brackets and bad entities still give the URLs there are."""
    html = '<a href="https://ok.example.com/"><<b>&bogus; <a href=https://two.example.net/x>y'
    assert hosts(extract_html_urls(html)) == ["ok.example.com", "two.example.net"]


# -- Subject ---------------------------------------------------------------------------


def test_subject_urls_are_displayed_only() -> None:
    """Subject URLs are flagged subject and html_displayed; the first query URL is kept."""
    urls = extract_subject_urls("Re: http://subj.example.com/?u=http://inner.example.net/ now")
    assert urls == [
        Url("subj.example.com", "http://subj.example.com/?u=http://inner.example.net/",
            frozenset({"subject", "html_displayed"})),
        Url("inner.example.net", "http://inner.example.net/", frozenset({"query"})),
    ]


def test_subject_addresses_are_not_body_emails() -> None:
    """An address in the Subject is a URL but not one of the body's e-mail addresses."""
    urls = UrlSet()
    urls.add_subject("contact sales@example.com")
    urls.add_text("or support@example.com")
    assert urls.emails() == ["support@example.com"]
    assert len(urls.urls()) == 2


# -- API -------------------------------------------------------------------------------


def test_parse_url() -> None:
    """parse_url takes one absolute URL; href=True keeps hosts without a listed suffix."""
    assert parse_url("HTTPS://Example.com/x") == Url("example.com", "https://example.com/x")
    assert parse_url("http://intranet/") is None
    assert parse_url("http://intranet/", href=True) == Url(
        "intranet", "http://intranet/", frozenset({"no_tld"})
    )
    assert parse_url("gopher://example.com/") is None
    assert parse_url("example.com") is None


def test_url_is_frozen_and_hashable() -> None:
    """Url is an immutable value: usable in sets and as a dict key."""
    url = Url("example.com", "http://example.com/")
    with pytest.raises(dataclasses.FrozenInstanceError):
        url.host = "x"  # type: ignore[misc]
    assert len({url, Url("example.com", "http://example.com/")}) == 1
    assert url.flags == frozenset() and url.redirected_to is None


@pytest.mark.parametrize(
    "text",
    ["a@" * 50_000, "http://" * 30_000, "a." * 100_000, "x" * 200_000 + ".com",
     "ab@" * 30_000 + "example.com", "mailto:" * 30_000, "www." * 50_000],
    ids=["ats", "schemes", "dots", "longword", "at-run", "mailtos", "wwws"],
)
def test_hostile_text_is_scanned_without_error(text: str) -> None:
    """Long runs of near-URLs are scanned to the end (their cost: bench/urls.py)."""
    urls = extract_text_urls(text)
    assert all(url.host for url in urls)


_URLISH = list("abcw.:/@?=%&-_ exampl.comorgnet[]()<>\"'#0123456789xyzé。")


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from(_URLISH), max_size=120))
def test_text_extraction_never_raises_and_hosts_are_normal(text: str) -> None:
    """Any text gives normalised hosts: lowercase, with a listed suffix or an address."""
    for url in extract_text_urls(text):
        assert url.host == url.host.lower()
        assert has_known_suffix(url.host) or "numeric" in url.flags
        assert url.host in url.url


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200))
def test_html_extraction_never_raises(html: str) -> None:
    """Any string fed as HTML gives a list of Urls, never an exception."""
    assert all(isinstance(u, Url) for u in extract_html_urls(html))
