"""client.selectorlang: Rspamd's selector language over Facts, and its errors."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from client.facts import Facts, Url
from client.received import Received
from client.selectorlang import (
    EXTRACTORS,
    TRANSFORMS,
    Expression,
    SelectorError,
    compile_expression,
    evaluate,
    parse,
)

FACTS = Facts(
    ip="192.0.2.10",
    helo="mail.example.net",
    hostname="mx.Example.NET",
    from_smtp="bounce+123@bounces.Example.com",
    from_mime="alice@example.com",
    rcpts=("bob@example.org", "carol@sub.example.co.uk"),
    subject="Hello World",
    asn="64496",
    country="NL",
    urls=(
        Url("www.example.com", "https://www.example.com/path?q=1#frag", frozenset({"html"})),
        Url("shop.example.net", "http://shop.example.net:8080/x", frozenset()),
        Url("img.example.org", "https://img.example.org/a.png", frozenset({"html", "image"})),
        Url("x.example", "mailto:a@x.example", frozenset()),
    ),
    emails=("info@example.com", "Sales@Other.example"),
    headers={
        "from": ("Alice <alice@example.com>",),
        "to": ("Bob <bob@example.org>, carol@sub.example.co.uk",),
        "cc": ("dave@example.net",),
        "subject": (" =?utf-8?q?Hello_W=C3=B6rld?=",),
        "x-mailer": (" Foo 1.0",),
        "x-folded": (" line one\r\n line two",),
        "x-multi": ("first", "second"),
    },
    received=(
        Received(
            "from mail.example.net (mail.example.net [192.0.2.10]) by mx.example.org "
            "with ESMTPS for <bob@example.org>; Tue, 14 Nov 2023 22:13:20 +0000",
            from_hostname="mail.example.net", real_hostname="mail.example.net",
            real_ip="192.0.2.10", by_hostname="mx.example.org", proto="esmtps",
            for_addr="bob@example.org", timestamp=1700000000.0,
        ),
        Received("from localhost by relay.example.org", from_hostname="localhost",
                 by_hostname="relay.example.org", timestamp=1700000000.5),
    ),
)


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        # extractors
        ("ip", ["192.0.2.10"]),
        ("ip:to_string", ["192.0.2.10"]),
        ("ip:get_version", ["4"]),
        ("ip.ipmask(24)", ["192.0.2.0"]),
        ("ip.ipmask(16, 48)", ["192.0.0.0"]),
        ("helo", ["mail.example.net"]),
        ("helo.get_tld", ["example.net"]),
        ("hostname", ["mx.Example.NET"]),
        ("hostname.lower.get_tld", ["example.net"]),
        ("user", []),
        ("asn", ["64496"]),
        ("country", ["NL"]),
        ("subject", ["Hello World"]),
        ("to", ["bob@example.org"]),
        ("id('x')", ["x"]),
        ("id", [""]),
        ("list('a', 'b')", ["a", "b"]),
        # addresses
        ("from", ["bounce+123@bounces.Example.com"]),
        ("from('smtp')", ["bounce+123@bounces.Example.com"]),
        ("from('smtp'):domain", ["bounces.Example.com"]),
        ("from('smtp'):domain.lower", ["bounces.example.com"]),
        ("from('smtp'):domain.get_tld", ["Example.com"]),
        ("from('smtp'):user", ["bounce+123"]),
        ("from('smtp', 'orig'):addr", ["bounce+123@bounces.Example.com"]),
        ("from('mime')", ["alice@example.com"]),
        ("from('mime'):name", ["Alice"]),
        ("from('mime'):user", ["alice"]),
        ("from('any'):domain", ["bounces.Example.com"]),
        ("from.domain", ["bounces.Example.com"]),
        ("from('mime').user", ["alice"]),
        ("rcpts", ["bob@example.org", "carol@sub.example.co.uk"]),
        ("rcpts:domain", ["example.org", "sub.example.co.uk"]),
        ("rcpts:domain.get_tld", ["example.org", "example.co.uk"]),
        ("rcpts.domain.get_tld", ["example.org", "example.co.uk"]),
        ("rcpts('mime')", ["bob@example.org", "carol@sub.example.co.uk", "dave@example.net"]),
        ("rcpts('mime'):name", ["Bob", "", ""]),
        ("rcpts('smtp'):user", ["bob", "carol"]),
        # list transforms
        ("rcpts.first", ["bob@example.org"]),
        ("rcpts.last", ["carol@sub.example.co.uk"]),
        ("rcpts.nth(2)", ["carol@sub.example.co.uk"]),
        ("rcpts.nth(3)", []),
        ("rcpts.take_n(1)", ["bob@example.org"]),
        ("rcpts.take_n", ["bob@example.org"]),
        ("rcpts.drop_n(1)", ["carol@sub.example.co.uk"]),
        ("rcpts.drop_n(5)", []),
        ("rcpts.join(',')", ["bob@example.org,carol@sub.example.co.uk"]),
        ("rcpts:domain.join", ["example.orgsub.example.co.uk"]),
        ("rcpts:user.join('|').upper", ["BOB|CAROL"]),
        ("list('b', 'a', 'b').sort", ["a", "b", "b"]),
        ("list('b', 'a', 'b').uniq", ["b", "a"]),
        ("list('a', 'nil', 'b').filter_string_nils", ["a", "b"]),
        ("rcpts('mime'):name.first", ["Bob"]),
        # string transforms, mapped over lists
        ("rcpts:domain.upper", ["EXAMPLE.ORG", "SUB.EXAMPLE.CO.UK"]),
        ("helo.substring(1, 4)", ["mail"]),
        ("helo.substring(-3)", ["net"]),
        ("helo.substring(6)", ["example.net"]),
        ("helo.substring(0, 100)", ["mail.example.net"]),
        ("helo.substring(5, 2)", [""]),
        ("helo.prepend('x-', 'y-')", ["x-y-mail.example.net"]),
        ("helo.append('.', 'rbl')", ["mail.example.net.rbl"]),
        ("country.equal('NL')", ["NL"]),
        ("country.equal('DE')", []),
        ("country.in('BE', 'NL')", ["NL"]),
        ("country.not_in('NL')", []),
        ("rcpts:domain.not_in('example.org')", ["sub.example.co.uk"]),
        ("rcpts:domain.in('nothing')", []),
        ("ip.id('a', 'b')", ["a", "b"]),
        ("ip.id('a')", ["a"]),
        ("rcpts.id('z')", ["z"]),
        ("helo.digest('hex', 'sha256')", [hashlib.sha256(b"mail.example.net").hexdigest()]),
        ("helo.digest('hex', 'md5')", [hashlib.md5(b"mail.example.net").hexdigest()]),
        ("helo:len", ["16"]),
        ("helo:upper", ["MAIL.EXAMPLE.NET"]),
        ("rcpts('smtp'):user:len", None),  # a second method: error, tested below
        # headers
        ("header('Subject')", ["Hello Wörld"]),
        ("header(\"subject\")", ["Hello Wörld"]),
        ("header('Subject').upper", ["HELLO WöRLD"]),
        ("header('Subject').lower_utf8", ["hello wörld"]),
        ("header('Subject').to_ascii", ["Hello W??rld"]),
        ("header('X-Mailer').lower", ["foo 1.0"]),
        ("header('X-Folded')", ["line one line two"]),
        ("header('X-Multi')", ["first"]),
        ("header('X-Multi', 'full')", ["first", "second"]),
        ("header('X-Multi', 'full'):name", ["X-Multi", "X-Multi"]),
        ("header('X-Multi', 'strong,full').last", ["second"]),
        ("header('X-Multi', 'full').to_ascii('_')", ["first", "second"]),
        ("header('Missing')", []),
        ("header('From').addr", ["alice@example.com"]),
        ("header('From').addr.domain", ["example.com"]),
        ("header('From').user", ["alice"]),
        ("helo.domain", []),
        # urls and e-mail addresses
        ("urls", ["https://www.example.com/path?q=1#frag", "http://shop.example.net:8080/x"]),
        ("urls:get_host", ["www.example.com", "shop.example.net"]),
        ("urls:get_tld", ["example.com", "example.net"]),
        ("urls('get_tld')", ["example.com", "example.net"]),
        ("urls:get_port", ["8080"]),
        ("urls:get_path", ["path", "x"]),
        ("urls:get_query", ["q=1"]),
        ("urls:get_fragment", ["frag"]),
        ("urls:get_protocol", ["https", "http"]),
        ("urls:is_html_displayed", ["false", "false"]),
        ("urls:get_tld.uniq.join(',')", ["example.com,example.net"]),
        ("emails", ["info@example.com", "Sales@Other.example"]),
        ("emails:get_host.lower", ["example.com", "other.example"]),
        ("emails:get_user", ["info", "Sales"]),
        ("emails('get_tld')", ["example.com", "Other.example"]),
        # received headers
        ("received('from_ip')", ["192.0.2.10"]),
        ("received('by_hostname')", ["mx.example.org", "relay.example.org"]),
        ("received:by_hostname.first", ["mx.example.org"]),
        ("received:real_ip", ["192.0.2.10"]),
        ("received:from_hostname.last", ["localhost"]),
        ("received:helo", ["mail.example.net", "localhost"]),
        ("received:proto", ["esmtps"]),
        ("received:for", ["bob@example.org"]),
        ("received:timestamp", ["1700000000", "1700000000.5"]),
        ("received('real_hostname').get_tld", ["example.net"]),
        # several selectors
        ("ip;helo", ["192.0.2.10:mail.example.net"]),
        ("ip ; helo", ["192.0.2.10:mail.example.net"]),
        ("ip*helo", ["192.0.2.10:mail.example.net"]),
        ("ip;rcpts:domain", ["192.0.2.10:example.org", "192.0.2.10:sub.example.co.uk"]),
        ("rcpts:user;rcpts:domain", ["bob:example.org", "carol:sub.example.co.uk"]),
        ("rcpts:user;list('x')", ["bob:x"]),
        ("ip;user", []),
        ("ip;list()", []),
        # whitespace the grammar allows
        ("header ( 'X-Mailer' ) .lower", None),
        ("ip .lower", ["192.0.2.10"]),
        ("header( 'X-Mailer' )", ["Foo 1.0"]),
        ("list('a',,'b')", ["a", "b"]),
        ("list('a' , 'b',)", ["a", "b"]),
        ("list(a, b-c, 42)", ["a", "b-c", "42"]),
        ("id('a\\'b')", ["a\\'b"]),
        ('id("it\'s")', ["it's"]),
    ],
)
def test_expression_values(expression: str, expected: list[str] | None) -> None:
    """Each expression evaluates over FACTS as Rspamd's selector would."""
    if expected is None:
        with pytest.raises(SelectorError):
            compile_expression(expression)
        return
    assert evaluate(expression, FACTS) == expected


def test_keyed_blake2_digest_as_rspamd_common_lua() -> None:
    """digest() with blake2 is keyed by blake2b('rspamd'), as lua_selectors/common.lua."""
    key = hashlib.blake2b(b"rspamd").digest()
    want = hashlib.blake2b(b"mail.example.net", key=key).hexdigest()
    assert evaluate("helo.digest", FACTS) == [want]
    assert evaluate("helo.digest('hex', 'blake2')", FACTS) == [want]
    (b32,) = evaluate("helo.digest('base32')", FACTS)
    assert len(b32) == 103 and set(b32) <= set("ybndrfg8ejkmcpqxot1uwisza345h769")
    (rfc,) = evaluate("helo.digest('rbase32', 'sha1')", FACTS)
    assert rfc == rfc.lower() and len(rfc) == 32


def test_from_falls_back_to_mime_and_rcpts_to_headers() -> None:
    """'any' is the envelope when there is one, else the headers."""
    facts = Facts(from_mime="a@example.com", headers={"to": ("x@example.org",)})
    assert evaluate("from", facts) == ["a@example.com"]
    assert evaluate("from('smtp')", facts) == []
    assert evaluate("rcpts", facts) == ["x@example.org"]
    assert evaluate("to", facts) == ["x@example.org"]
    assert evaluate("rcpts('smtp')", facts) == []
    only_rcpts = Facts(rcpts=("r@example.net",))
    assert evaluate("rcpts('mime')", only_rcpts) == ["r@example.net"]


def test_empty_envelope_sender_is_an_empty_address() -> None:
    """The null sender <> is an address with an empty addr, as in Rspamd."""
    facts = Facts(from_smtp="<>")
    assert evaluate("from('smtp')", facts) == [""]
    assert evaluate("from('smtp'):domain", facts) == [""]


def test_ipv6_and_invalid_ip() -> None:
    """The ip extractor gives nothing for an address that is not one."""
    assert evaluate("ip:get_version", Facts(ip="2001:db8::1")) == ["6"]
    assert evaluate("ip.ipmask(24, 64)", Facts(ip="2001:db8:1:2::1")) == ["2001:db8:1:2::"]
    assert evaluate("ip", Facts(ip="bogus")) == []
    assert evaluate("list('x', 'bogus').ipmask(8)", FACTS) == []


def test_subject_falls_back_to_the_header() -> None:
    """Without a subject fact, the decoded Subject header."""
    facts = Facts(headers={"Subject": ("=?utf-8?b?SMOpbGxv?=",)})
    assert evaluate("subject", facts) == ["Héllo"]
    assert evaluate("header('SUBJECT')", facts) == ["Héllo"]


def test_delimiter_and_flatten() -> None:
    """The delimiter joins zipped selectors; flatten lists every value instead."""
    expression = compile_expression("ip;rcpts:user")
    assert expression.evaluate(FACTS, delimiter="/") == ["192.0.2.10/bob", "192.0.2.10/carol"]
    assert expression.flatten(FACTS) == ["192.0.2.10", "bob", "carol"]
    assert compile_expression("ip;user").flatten(FACTS) == []


def test_compiled_expression_is_reusable() -> None:
    """Compile once at configuration time, evaluate per message."""
    expression = compile_expression("from:domain.get_tld")
    assert isinstance(expression, Expression)
    assert evaluate(expression, FACTS) == ["Example.com"]
    assert expression.evaluate(Facts(from_smtp="x@mail.example.org")) == ["example.org"]
    assert expression.evaluate(Facts()) == []


@pytest.mark.parametrize(
    ("expression", "position", "fragment"),
    [
        ("", 0, "empty"),
        ("   ", 0, "empty"),
        (" ip", 0, "expected an extractor name"),
        ("bogus", 0, "unknown extractor 'bogus'"),
        ("ip.bogus", 3, "unknown transform 'bogus'"),
        ("ip:bogus", 3, "has no method 'bogus'"),
        ("helo:bogus", 5, "has no method 'bogus'"),
        ("from:domain.bogus(1)", 12, "unknown transform"),
        ("header('X", 7, "unterminated '-quoted string"),
        ('header("X', 7, 'unterminated "-quoted string'),
        ("header('X\nY')", 7, "unterminated"),
        ("header('X'", 10, "unbalanced '('"),
        ("header(", 7, "unbalanced '('"),
        ("ip.lower)", 8, "unbalanced ')'"),
        ("ip)", 2, "unbalanced ')'"),
        ("ip.lower junk", 9, "unexpected 'j'"),
        ("header('X') .lower", 12, "unexpected '.'"),
        ("from.lower:domain", 10, "must follow the extractor"),
        ("from:domain:user", 11, "must follow the extractor"),
        ("ip.first", 3, "takes a list"),
        ("helo.join", 5, "takes a list"),
        ("rcpts.join.lower.first", 17, "takes a list"),
        ("rcpts.nth(x)", 10, "must be an integer"),
        ("rcpts.nth(0)", 10, "at least 1"),
        ("rcpts.nth", 6, "takes 1 argument, got 0"),
        ("rcpts.take_n('1.5')", 13, "must be an integer"),
        ("header", 0, "takes 1 to 2 arguments, got 0"),
        ("header('a', 'full', 'x')", 20, "takes 1 to 2 arguments, got 3"),
        ("header('X', 'weird')", 12, "'strong' and/or 'full'"),
        ("ip('x')", 3, "takes no arguments"),
        ("ip.lower('x')", 9, "takes no arguments"),
        ("from:domain('x')", 12, "takes no arguments"),
        ("from('bogus')", 5, "must be one of"),
        ("helo.digest('hex', 'sha3')", 19, "must be one of"),
        ("helo.digest('zz')", 12, "must be one of"),
        ("words", 0, "not supported"),
        ("ip.regexp('x')", 3, "not supported"),
        ("helo.apply_map('m')", 5, "not supported"),
        ("lower", 0, "is a transform"),
        ("ip.helo", 3, "is an extractor"),
        ("received", 0, "received needs a field"),
        ("received('bogus')", 9, "must be one of"),
        ("urls('bogus')", 5, "must be one of"),
        ("urls:bogus", 5, "has no method"),
        ("id({a})", 3, "table arguments"),
        (".ip", 0, "expected an extractor name"),
        ("ip.", 3, "expected a transform name"),
        ("ip;", 3, "expected an extractor name"),
        ("ip:", 3, "expected a method name"),
        ("ip()()", 4, "second argument list"),
        ("header('X' 'Y')", 11, "expected ',' or ')'"),
        ("list(,'a')", 5, "expected ')'"),
        ("ip;;helo", 3, "expected an extractor name"),
        ("ip.lower..upper", 9, "expected a transform name"),
    ],
)
def test_errors_name_their_position(expression: str, position: int, fragment: str) -> None:
    """Every unusable expression is a SelectorError pointing at the culprit."""
    with pytest.raises(SelectorError) as info:
        compile_expression(expression)
    error = info.value
    assert error.position == position, str(error)
    assert fragment in error.message
    assert error.expression == expression
    assert isinstance(error, ValueError)


def test_error_text_shows_a_caret_under_the_position() -> None:
    """str() of the error quotes the expression and marks the position."""
    with pytest.raises(SelectorError) as info:
        compile_expression("from:domain.bogus")
    assert str(info.value) == (
        "unknown transform 'bogus' (at position 12)\n"
        "  from:domain.bogus\n"
        "              ^"
    )
    multiline = SelectorError("bad", 3, "ip;\nhelo.x")
    assert str(multiline).splitlines()[1:] == ["  ip; helo.x", "     ^"]
    assert str(SelectorError("bad", 2)) == "bad (at position 2)"


def test_parse_keeps_names_arguments_and_positions() -> None:
    """The syntax tree records where each name and argument stands."""
    (first, second) = parse("header('X', full):name.lower;ip")
    assert first.extractor.name == "header"
    assert first.extractor.args == ("X", "full")
    assert first.extractor.arg_positions == (7, 12)
    assert first.method is not None and first.method.name == "name"
    assert [t.name for t in first.transforms] == ["lower"]
    assert second.extractor.position == 29


def test_non_ascii_atoms_are_names() -> None:
    """Rspamd's atoms take UTF-8 characters; they are unknown names here, not garbage."""
    with pytest.raises(SelectorError) as info:
        compile_expression("ip.läuft")
    assert info.value.position == 3
    assert evaluate("list(bücher)", FACTS) == ["bücher"]


def test_every_listed_name_compiles() -> None:
    """Each extractor and transform in the tables is usable in some expression."""
    arguments = {"header": "('Subject')", "received": "('from_ip')"}
    for name in EXTRACTORS:
        compile_expression(name + arguments.get(name, ""))
    transform_arguments = {"nth": "(1)", "equal": "('x')", "ipmask": "(24)"}
    for name, spec in TRANSFORMS.items():
        base = "list('a', 'b')" if spec.on_string is None else "helo"
        compile_expression(f"{base}.{name}{transform_arguments.get(name, '')}")


# ---------------------------------------------------------------------- fuzzing

_GRAMMAR = st.sampled_from(
    ["ip", "from", "rcpts", "header", "helo", "urls", "received", "lower", "first", "join",
     "nth", "digest", "domain", "get_tld", "id", "list", "'", '"', "(", ")", ",", ".", ":",
     ";", "*", " ", "\n", "\\", "{", "}", "=", "x", "1", "-1", "é", "smtp", "'full'"]
)  # fmt: skip


@settings(max_examples=600, deadline=None)
@given(st.lists(_GRAMMAR, max_size=14).map("".join))
def test_grammar_fuzz_raises_only_selector_errors(text: str) -> None:
    """Arbitrary token soup either compiles and evaluates, or is a SelectorError."""
    try:
        expression = compile_expression(text)
    except SelectorError as error:
        assert 0 <= error.position <= len(text)
        str(error)
        return
    for value in expression.evaluate(FACTS):
        assert isinstance(value, str)
    expression.flatten(Facts())


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=40))
def test_text_fuzz_raises_only_selector_errors(text: str) -> None:
    """Any text at all: a compiled expression or a SelectorError, nothing else."""
    try:
        expression = compile_expression(text)
    except SelectorError as error:
        assert 0 <= error.position <= len(text)
        return
    expression.evaluate(FACTS)
