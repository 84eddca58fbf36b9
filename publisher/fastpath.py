"""The full pass's fast path: Rspamd-layout hashes to store entries without intermediate objects.

A full sync judges every key of the source, a million or more, so the general path's
dataclasses, field dicts and trial TXT encodings dominate its cost.  This module does
the same for the common case -- the ``rspamd`` layout read from one server, a hash of
exactly ``n``, ``l`` and the bucket's ``v`` field (HMGET of those three, and HLEN to
know there is nothing else) -- on plain values: the TXT text written once from a
:func:`listformat.txt.template`, the A RRset and the ``sc`` text taken from a table of
the 20,001 rounded scores, the packed
answer joined from precomputed RRset headers, and an IPv4 ``ip`` token turned into its
store key directly.

Anything else (a key of another type or gone, other fields, an absent or malformed
field, an IPv6 or masked token, a TXT record over 255 bytes) is handed back: the pass
reads it whole and judges it with :meth:`publisher.judge.Judge.evaluate`, which also
logs and counts it.  What to judge by (the selector, the processor chain, the scoring
parameters) the fast path takes from the same :class:`~publisher.judge.Judge`.  Both
paths must give byte-identical store entries and the same counts:
tests/test_sync_fastpath.py compares them.
"""

from __future__ import annotations

import math
import socket
from collections.abc import Sequence
from typing import Any

from listformat import names, tokens, txt
from listformat.scoring import TANH_SCALE, TANH_SHIFT
from listformat.wire import T_TXT
from publisher.entries import owner_keys
from publisher.judge import Judge, Stats
from publisher.source import RedisSource
from zoned.answers import token_answer
from zoned.keys import V4
from zoned.packed import single, txt_rdata

_MAX_TXT = txt.MAX_LENGTH
# Digit strings shorter than this are exact as floats (below 2**53).
_SHORT = 16
_INF = math.inf

_ZERO = 10_000  # index of score 0 in the table of rounded scores
_OFFSET = _ZERO + 0.5  # score * 10000 + this: int() rounds to the nearest index
_TIE = 1e-6  # closer than this to a tie, the float error of score * 10000 might matter


class RspamdFastPath:
    """Judges batches of one zone's ``rspamd``-layout replies as Judge.evaluate would."""

    def __init__(self, judge: Judge) -> None:
        config = judge.config
        self.config = config
        self.prefix_length = len(judge.prefix)
        self.selector = judge.settings.selector
        self.ip_v4 = self.selector == "ip" and config.scheme.kind == "ip"
        self.chain = judge.chain
        self.lower_bound = judge.params.lower_bound
        self.reject_score = judge.params.reject_score
        self.mults = judge.params.rspamd_buckets
        # The field of the first configured bucket (Rspamd's default: v1m) and its weight.
        first = next(iter(self.mults), "1m")
        v_key = "v" + first
        # What scan_fetch reads of each key (HMGET): a hash of other fields is read
        # whole and left to the general path.
        self.fields = (b"n", b"l", v_key.encode())
        self._v_mult = self.mults.get(first, 1.0)
        # The TXT text's str.format, by [l absent][v absent]: n, sc, l, v at places 0-3.
        # A bucket whose name TXT cannot carry is left out, as layouts.txt_fields does.
        self._v_kept = txt.is_key(v_key)
        with_v = {v_key: 3} if self._v_kept else {}
        self._formats = tuple(
            (txt.template({**places, **with_v}).format, txt.template(places).format)
            for places in ({"n": 0, "sc": 1, "l": 2}, {"n": 0, "sc": 1})
        )
        # By rounded score i / 10000 at index i + 10000: the A RRset (or b"") and the
        # score's text; made by the first judge() (round(x, 4) is the float nearest
        # i / 10000, which is i / 10000).
        self._by_index: list[tuple[bytes, str]] = []
        # The packed TXT RRset up to its text, by text length (0 unused: never empty).
        self._txt_head = [b""] + [
            single(T_TXT, config.ttl, txt_rdata(b"x" * length))[:-length]
            for length in range(1, _MAX_TXT + 1)
        ]

    @staticmethod
    def applies(judge: Judge, source: RedisSource) -> bool:
        """Whether this fast path can stand in for the general one, judging ``source``."""
        return (judge.settings.layout == "rspamd" and judge.config.publish_txt
                and source.raw_capable())

    def _score_entry(self, score: float, a_by_code: dict[object, bytes]
                     ) -> tuple[bytes, str]:
        """(A RRset, its TXT text) of a rounded score."""
        code = self.config.codes.code_for(score)
        a = a_by_code.get(code)
        if a is None:
            # token_answer's answer less its TXT RRset: the A RRset exactly as it builds it.
            fields = {"sc": score}
            answer = token_answer(self.config, fields) or b""
            txt_part = single(T_TXT, self.config.ttl, txt_rdata(txt.encode(fields)))
            if not answer.endswith(txt_part):
                raise AssertionError("token_answer no longer ends with the TXT RRset")
            a = a_by_code[code] = answer[: len(answer) - len(txt_part)]
        return a, txt.format_number(score)

    def judge(self, keys: Sequence[bytes], values: Sequence[Any], lengths: Sequence[Any],
              stats: Stats, desired: dict[bytes, bytes]) -> list[bytes]:
        """Add the batch's entries to ``desired``; return the keys left to the general path.

        ``values`` are each key's HMGET of :attr:`fields`, ``lengths`` its HLEN (as
        RedisSource.scan_fetch reads them).  For the keys it handles, the same entries
        and counts as Judge.evaluate.
        """
        plen = self.prefix_length
        ip_v4 = self.ip_v4
        drops = self.chain.drops
        drops_nothing = self.chain.drops_nothing
        lower_bound = self.lower_bound
        reject_score = self.reject_score
        if not self._by_index:
            a_by_code: dict[object, bytes] = {}
            self._by_index = [self._score_entry(i / 10000, a_by_code)
                              for i in range(-_ZERO, _ZERO + 1)]
        by_index = self._by_index
        txt_head = self._txt_head
        v_mult, v_kept = self._v_mult, self._v_kept
        formats = self._formats
        format_number = txt.format_number
        inet_pton = socket.inet_pton
        inet_ntop = socket.inet_ntop
        af_inet = socket.AF_INET
        tanh = math.tanh
        scale, shift = TANH_SCALE, TANH_SHIFT
        v4 = V4
        suffix32 = b"\x20"  # zoned.keys.net_key_from(packed, 32)
        inf = _INF
        published = below_min = excluded = 0
        slow: list[bytes] = []
        for key, value, length in zip(keys, values, lengths, strict=True):
            # -- the token, and for a plain IPv4 address its store key
            store_key = None
            if ip_v4:
                if key[plen:plen + 2] != b"i:":
                    slow.append(key)
                    continue
                try:
                    token = key[plen + 2:].decode("ascii")
                    packed = inet_pton(af_inet, token)
                    if inet_ntop(af_inet, packed) != token:
                        raise OSError  # leading zeros and the like: not canonical
                except (UnicodeDecodeError, OSError, ValueError):  # ValueError: a NUL
                    slow.append(key)  # judged, logged and counted there
                    continue
                store_key = v4 + packed + suffix32
            else:
                try:
                    maybe = tokens.token_of(self.selector,
                                            key[plen:].decode("utf-8", "surrogateescape"))
                except tokens.TokenError:
                    maybe = None
                if maybe is None:
                    slow.append(key)
                    continue
                token = maybe
            # -- the hash: exactly n, l (optional) and the bucket's v (optional), so
            # HLEN counts only fields we have; n and l digits, v a plain number
            if type(value) is not list:
                slow.append(key)  # WRONGTYPE
                continue
            n_raw, l_raw, raw = value
            if (length != 3 - (l_raw is None) - (raw is None) or n_raw is None
                    or not n_raw.isdigit() or len(n_raw) >= _SHORT
                    or (l_raw is not None and (not l_raw.isdigit() or len(l_raw) >= _SHORT))):
                slow.append(key)
                continue
            n = int(n_raw)
            if raw is None:
                mean = 0.0
            else:
                # layouts' plain-number test, cheaper: of these characters float() takes
                # exactly what that pattern does, but for a leading "+"
                if raw.strip(b"0123456789.eE+-") or raw[:1] == b"+":
                    slow.append(key)
                    continue
                try:
                    mean = float(raw) * v_mult
                except ValueError:
                    slow.append(key)
                    continue
                if not -inf < mean < inf:  # also false for inf * 0 (NaN)
                    slow.append(key)
                    continue
            # -- the processor chain
            dropped = None if drops_nothing else drops(token, n)
            if dropped is not None:
                if dropped == "excluded":
                    excluded += 1
                else:
                    below_min += 1
                continue
            # -- listformat.scoring.rspamd_score, then round(score, 4) as a table index.  Its
            # clamp changes nothing: the mean is finite, so tanh gives [-1, 1], not NaN.
            if n < lower_bound or raw is None:
                entry = by_index[_ZERO]
            else:
                score = tanh(mean / reject_score * scale - shift)
                z = score * 10000.0 + _OFFSET
                index = int(z)
                if _TIE < z - index < 1.0 - _TIE:
                    entry = by_index[index]
                else:  # within a hair of a tie: let round() decide exactly
                    entry = by_index[round(round(score, 4) * 10000.0) + _ZERO]
            a, sc_text = entry
            v_text = format_number(mean) if v_kept and raw is not None else None
            if l_raw is None:
                text = formats[1][v_text is None](n, sc_text, "", v_text).encode()
            else:
                text = formats[0][v_text is None](n, sc_text, int(float(l_raw) / 1000),
                                                  v_text).encode()
            if len(text) > _MAX_TXT:
                slow.append(key)  # the general path drops buckets until it fits
                continue
            answer = a + txt_head[len(text)] + text
            if store_key is not None:
                desired[store_key] = answer
            else:
                try:
                    owners = owner_keys(self.config, token)
                except names.OwnerNameError:
                    slow.append(key)
                    continue
                for owner in owners:
                    desired[owner] = answer
            published += 1
        stats.keys += published + excluded + below_min
        stats.published += published
        stats.excluded += excluded
        stats.below_min += below_min
        return slow
