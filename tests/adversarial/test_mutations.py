"""Each mutation class produces the damage it is named for (checked on the wire)."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator

import dns.exception
import dns.message
import dns.name
import dns.rdatatype
import dns.tsig
import pytest

from tests.adversarial import mutations as m
from tests.adversarial import target
from tests.adversarial.wirewalk import Record, Walk, edns_options, walk

pytestmark = pytest.mark.adversarial

KEY = target.KEY
STRANGER = target.STRANGER
NAMES = ("1.2.0.192.bl.example.net", "huge.bl.example.net", "bl.example.net",
         "example.com.dom.example.net", "www.example.org")
CORPUS = m.real_queries(NAMES, [KEY, STRANGER], random.Random(1))
DRAWS = 300


def draws(name: str) -> Iterator[tuple[m.Seed, bytes]]:
    """DRAWS messages of one class, each with the real query it was made from."""
    rng = random.Random(f"mutations-{name}")
    mutate = m.CLASSES[name]
    for _ in range(DRAWS):
        seed = rng.choice(CORPUS)
        if name == "tsig_junk":
            yield seed, m.tsig_junk(rng, seed, key_names=[m.name_wire([b"fuzz-key"])])
        else:
            yield seed, mutate(rng, seed)


def check_all(name: str, claim: Callable[[m.Seed, bytes], object]) -> None:
    for seed, wire in draws(name):
        assert claim(seed, wire), f"{name} from {seed.label}: {wire.hex()}"


def only_difference(a: bytes, b: bytes) -> list[int]:
    assert len(a) == len(b)
    return [i for i in range(len(a)) if a[i] != b[i]]


def test_the_corpus_is_real_queries_of_every_type_and_variant() -> None:
    """Every seed parses as the query it says it is; signed ones verify with their key."""
    kinds = set()
    for seed in CORPUS:
        ring = {KEY.name: KEY} if f"tsig {KEY.name}" in seed.label else False
        message = dns.message.from_wire(seed.wire, keyring=ring)
        assert message.question[0].name.to_wire() == seed.qname
        qtype = dns.rdatatype.to_text(dns.rdatatype.RdataType.make(seed.qtype))
        kinds.add((qtype, message.edns >= 0, message.had_tsig))
    assert kinds == {(t, edns, tsig) for t in m.QTYPES for edns in (False, True)
                     for tsig in (False, True)}


def test_random_bytes_cover_short_medium_and_long_sizes() -> None:
    sizes = [len(wire) for _, wire in draws("random")]
    assert min(sizes) < 12 and any(12 <= s < 64 for s in sizes) and max(sizes) > 1000


def test_random_after_header_has_a_query_header_with_one_question() -> None:
    real = {seed.wire[12:] for seed in CORPUS}
    check_all("random_after_header",
              lambda _, w: walk(w).counts[:3] == (1, 0, 0) and len(w) > 12 and w[12:] not in real)


def test_bit_flips_change_between_one_and_nine_bits_and_keep_the_length() -> None:
    def claim(seed: m.Seed, wire: bytes) -> bool:
        flipped = sum(bin(a ^ b).count("1") for a, b in zip(seed.wire, wire, strict=True))
        return 1 <= flipped <= 9
    check_all("bit_flips", claim)


def test_truncation_is_a_strict_prefix() -> None:
    check_all("truncation", lambda s, w: len(w) < len(s.wire) and s.wire.startswith(w))


def test_label_length_lie_changes_one_length_byte_of_the_question_name() -> None:
    def claim(seed: m.Seed, wire: bytes) -> bool:
        changed = only_difference(seed.wire, wire)
        return len(changed) == 1 and changed[0] in m.label_positions(seed.wire, 12)
    check_all("label_length_lie", claim)


def test_pointer_loop_messages_hold_a_name_whose_pointers_come_back() -> None:
    def claim(_: m.Seed, wire: bytes) -> bool:
        result = walk(wire)
        return result.fault is not None and any(name.loops for name in result.names)
    check_all("pointer_loop", claim)
    # The simplest form is there: a question name that is a pointer to itself.
    assert any(wire[12:14] == b"\xc0\x0c" for _, wire in draws("pointer_loop"))


def test_forward_pointer_points_at_or_after_itself() -> None:
    check_all("forward_pointer", lambda _, w: walk(w).records[0].owner.forward)


def test_count_lie_changes_exactly_one_count() -> None:
    def claim(seed: m.Seed, wire: bytes) -> bool:
        changed = only_difference(seed.wire, wire)
        counts = walk(wire).counts
        lies = [i for i in range(4) if counts[i] != seed.counts[i]]
        return len(lies) == 1 and all(4 + 2 * lies[0] <= i < 6 + 2 * lies[0] for i in changed)
    check_all("count_lie", claim)


def test_several_questions_are_all_well_formed() -> None:
    def claim(_: m.Seed, wire: bytes) -> bool:
        result = walk(wire)
        questions = result.section("question")
        return result.fault is None and len(questions) == result.counts[0] >= 2
    check_all("several_questions", claim)


def _opts(result: Walk) -> dict[str, list[Record]]:
    return {section: [r for r in result.section(section) if r.rtype == m.T_OPT]
            for section in ("answer", "authority", "additional")}


def test_opt_misplaced_puts_opt_where_rfc_6891_forbids() -> None:
    def claim(_: m.Seed, wire: bytes) -> bool:
        result = walk(wire)
        opts = _opts(result)
        return result.fault is None and bool(
            opts["answer"] or opts["authority"] or len(opts["additional"]) >= 2
            or any(r.owner.labels for r in opts["additional"]))
    check_all("opt_misplaced", claim)


def opt_is_clean(result: Walk) -> bool:
    """One OPT at the end, version 0, its RDATA a list of valid known options."""
    opts = _opts(result)["additional"]
    if result.fault is not None or result.trailing or len(opts) != 1:
        return False
    opt = opts[0]
    if opt.ttl is None or opt.ttl >> 16 & 0xFF or opt.rdata is None:
        return False
    options, fault = edns_options(opt.rdata)
    if fault is not None:
        return False
    for option in options:
        if option.code not in m.KNOWN_OPTIONS:
            return False
        if option.code == m.OPT_COOKIE and not (option.length == 8 or 16 <= option.length <= 40):
            return False
        if option.code == m.OPT_ECS:
            if option.length < 4:
                return False
            family, source = int.from_bytes(option.data[:2], "big"), option.data[2]
            bits = {1: 32, 2: 128}.get(family)
            if bits is None or source > bits or option.length - 4 != (source + 7) // 8:
                return False
    return True


def test_junk_edns_options_are_never_a_clean_opt_record() -> None:
    check_all("junk_edns_options", lambda _, w: not opt_is_clean(walk(w)))
    # ...while the corpus's EDNS queries with known options only are clean, so the check
    # can tell them apart (one variant carries an unassigned option on purpose).
    edns = [s for s in CORPUS if s.label.endswith(("edns", "edns-do-512", "edns-cookie"))
            and "tsig" not in s.label]
    assert edns and all(opt_is_clean(walk(s.wire)) for s in edns)


def test_tsig_junk_carries_a_tsig_record_that_never_verifies() -> None:
    def claim(_: m.Seed, wire: bytes) -> bool:
        if not any(r.rtype == m.T_TSIG for r in walk(wire).records):
            return False
        try:
            dns.message.from_wire(wire, keyring={KEY.name: KEY})
        except dns.exception.DNSException:
            return True
        return False
    check_all("tsig_junk", claim)


def test_long_names_are_255_octets_or_more_with_legal_labels() -> None:
    lengths = set()

    def claim(_: m.Seed, wire: bytes) -> bool:
        name = walk(wire).records[0].owner
        lengths.add(name.length == m.MAX_NAME)
        if name.length == m.MAX_NAME:  # the limit itself is a legal name
            dns.message.from_wire(wire)
        else:
            with pytest.raises(dns.name.NameTooLong):
                dns.message.from_wire(wire)
        return name.length >= m.MAX_NAME and all(len(label) <= 63 for label in name.labels)
    check_all("long_name", claim)
    assert lengths == {True, False}


def test_odd_label_bytes_put_zero_or_ff_bytes_in_a_label() -> None:
    def claim(_: m.Seed, wire: bytes) -> bool:
        first = walk(wire).records[0].owner.labels[0]
        return b"\x00" in first or b"\xff" in first
    check_all("odd_label_bytes", claim)


def test_header_flags_change_only_the_flags_word() -> None:
    def claim(seed: m.Seed, wire: bytes) -> bool:
        changed = only_difference(seed.wire, wire)
        return bool(changed) and all(i in (2, 3) for i in changed)
    check_all("header_flags", claim)
    assert any(wire[2] & 0x80 for _, wire in draws("header_flags"))  # QR: a "response"


def test_a_generator_replays_from_its_seed_and_uses_every_class() -> None:
    first = m.Generator(42, CORPUS)
    second = m.Generator(42, CORPUS)
    a = [first.next() for _ in range(2000)]
    assert a == [second.next() for _ in range(2000)]
    assert {name for name, _ in a} == set(m.CLASSES)
    assert a != [m.Generator(43, CORPUS).next() for _ in range(2000)]
