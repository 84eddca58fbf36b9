"""The full pass's fast path: Rspamd-layout hashes to store entries without intermediate objects.

A full sync judges every key of the source, a million or more, so the general path's
dataclasses, field dicts and trial TXT encodings dominate its cost.  This module does
the same for the common case -- the ``rspamd`` layout read from one server, a hash of
``n``, ``l`` and ``v<bucket>`` fields -- on plain values: the TXT text formatted once,
the A RRset looked up by score, the packed answer joined from precomputed RRset
headers, and an IPv4 ``ip`` token turned into its store key directly.

Anything else (a key of another type, an absent or malformed field, an IPv6 or masked
token, a TXT record over 255 bytes) goes to :meth:`publisher.sync.ZoneSync.evaluate`
key by key, which also logs and counts it.  Both paths must give byte-identical store
entries and the same counts: tests/test_sync_fastpath.py compares them.
"""

from __future__ import annotations

import math
import re
import socket
from collections.abc import Sequence
from typing import TYPE_CHECKING

from client import names, txt
from client.scoring import TANH_SCALE, TANH_SHIFT
from publisher import tokens
from publisher.records import owner_keys
from publisher.source import RawReply
from zoned.answers import token_answer
from zoned.keys import V4
from zoned.packed import single, txt_rdata
from zoned.wire import T_TXT

if TYPE_CHECKING:
    from publisher.sync import Stats, ZoneSync

# What publisher.layouts accepts as a number: plain decimal notation only.
_NUMBER = re.compile(rb"-?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?")
_TXT_KEY = re.compile(r"[a-z][a-z0-9_.-]*")
_MAX_TXT = txt.MAX_LENGTH
# Digit strings shorter than this are exact as floats (below 2**53).
_SHORT = 16
_INF = math.inf

Slow = list[tuple[bytes, RawReply]]  # RESP2 lists already made dicts


def _number_text(value: float) -> str:
    """A finite float as layouts._tidy then client.txt.encode print it."""
    if value.is_integer() and abs(value) < 1e16:
        return str(int(value))
    return repr(value)


class RspamdFastPath:
    """Judges batches of one zone's ``rspamd``-layout replies as ZoneSync.evaluate would."""

    def __init__(self, sync: ZoneSync) -> None:
        config = sync.config
        self.config = config
        self.prefix_length = len(sync.prefix)
        self.selector = sync.settings.selector
        self.ip_v4 = self.selector == "ip" and config.scheme.kind == "ip"
        self.exclusions = sync.exclusions
        self.never = sync.never
        self.screen = bool(sync.exclusions) or bool(sync.never)
        self.min_count = sync.settings.min_count
        self.lower_bound = sync.params.lower_bound
        self.reject_score = sync.params.reject_score
        self.mults = sync.params.rspamd_buckets
        # The field of the first configured bucket (Rspamd's default: v1m), its weight,
        # and its TXT key ("" when TXT cannot carry that name).
        first = next(iter(self.mults), "1m")
        self._v_name = b"v" + first.encode()
        self._v_mult = self.mults.get(first, 1.0)
        self._v_group = f";v{first}=" if _TXT_KEY.fullmatch("v" + first) else None
        # By rounded score (at most 20,001 values): the A RRset (or b"") and ";sc=...".
        self._by_score: dict[float, tuple[bytes, str]] = {}
        self._a_by_code: dict[object, bytes] = {}
        # The packed TXT RRset up to its text, by text length (0 unused: never empty).
        self._txt_head = [b""] + [
            single(T_TXT, config.ttl, txt_rdata(b"x" * length))[:-length]
            for length in range(1, _MAX_TXT + 1)
        ]

    @staticmethod
    def applies(sync: ZoneSync) -> bool:
        """Whether this fast path can stand in for the general one in ``sync``'s zone."""
        return (sync.settings.layout == "rspamd" and sync.config.publish_txt
                and sync.source.raw_capable())

    def _score_entry(self, score: float) -> tuple[bytes, str]:
        """(A RRset, ";sc=<score>") of a rounded score, remembered."""
        code = self.config.codes.code_for(score)
        a = self._a_by_code.get(code)
        if a is None:
            # token_answer's answer less its TXT RRset: the A RRset exactly as it builds it.
            fields = {"sc": score}
            answer = token_answer(self.config, fields) or b""
            txt_part = single(T_TXT, self.config.ttl, txt_rdata(txt.encode(fields)))
            if not answer.endswith(txt_part):
                raise AssertionError("token_answer no longer ends with the TXT RRset")
            a = self._a_by_code[code] = answer[: len(answer) - len(txt_part)]
        entry = self._by_score[score] = (a, f";sc={_number_text(score)}")
        return entry

    def judge(self, keys: Sequence[bytes], replies: Sequence[RawReply], stats: Stats,
              desired: dict[bytes, bytes]) -> Slow:
        """Add the batch's entries to ``desired``; return the keys left to the general path.

        For the keys it handles, the same entries and counts as ZoneSync.evaluate.
        """
        plen = self.prefix_length
        ip_v4 = self.ip_v4
        screen = self.screen
        min_count = self.min_count
        lower_bound = self.lower_bound
        reject_score = self.reject_score
        by_score = self._by_score
        txt_head = self._txt_head
        number = _NUMBER.fullmatch
        v_name, v_mult, v_group = self._v_name, self._v_mult, self._v_group
        inet_pton = socket.inet_pton
        inet_ntop = socket.inet_ntop
        af_inet = socket.AF_INET
        tanh = math.tanh
        v4 = V4
        suffix32 = b"\x20"  # zoned.keys.net_key_from(packed, 32)
        inf = _INF
        published = below_min = excluded = 0
        slow: Slow = []
        for key, reply in zip(keys, replies, strict=True):
            # -- the token, and for a plain IPv4 address its store key
            store_key = None
            if ip_v4:
                if key[plen:plen + 2] != b"i:":
                    slow.append((key, reply))
                    continue
                try:
                    token = key[plen + 2:].decode("ascii")
                    packed = inet_pton(af_inet, token)
                    if inet_ntop(af_inet, packed) != token:
                        raise OSError  # leading zeros and the like: not canonical
                except (UnicodeDecodeError, OSError):
                    slow.append((key, reply))
                    continue
                store_key = v4 + packed + suffix32
            else:
                maybe = tokens.token_of(self.selector, key[plen:].decode("utf-8", "replace"))
                if maybe is None:
                    slow.append((key, reply))
                    continue
                token = maybe
            # -- the fields: n and l as digits, v<bucket> plain numbers
            if type(reply) is not dict:
                if type(reply) is not list:
                    slow.append((key, reply))
                    continue
                reply = dict(zip(reply[::2], reply[1::2], strict=True))  # RESP2
            get = reply.get
            n_raw = get(b"n")
            l_raw = get(b"l")
            if (n_raw is None or not n_raw.isdigit() or len(n_raw) >= _SHORT
                    or (l_raw is not None and (not l_raw.isdigit() or len(l_raw) >= _SHORT))):
                slow.append((key, reply))
                continue
            n = int(n_raw)
            raw = get(v_name) if len(reply) == (2 if l_raw is None else 3) else None
            if raw is not None:  # n, l and the one configured bucket: the common hash
                if not number(raw):
                    slow.append((key, reply))
                    continue
                value = float(raw)
                mean = value * v_mult
                if not (-inf < value < inf and -inf < mean < inf):
                    slow.append((key, reply))
                    continue
                groups = f"{v_group}{_number_text(mean)}" if v_group is not None else ""
                count = 1
            else:
                parsed = self._values(reply)
                if parsed is None:
                    slow.append((key, reply))
                    continue
                groups, mean, count = parsed
            # -- screens, in ZoneSync.evaluate's order
            if screen and (self.exclusions.excludes(token) or self.never.excludes(token)):
                excluded += 1
                continue
            if n < min_count:
                below_min += 1
                continue
            # -- client.scoring.rspamd_score, clamped
            if n < lower_bound or not count:
                score = 0.0
            else:
                score = tanh(mean / reject_score * TANH_SCALE - TANH_SHIFT)
                if score != score:
                    score = 0.0
                elif score > 1.0:
                    score = 1.0
                elif score < -1.0:
                    score = -1.0
            sc = round(score, 4)
            entry = by_score.get(sc)
            if entry is None:
                entry = self._score_entry(sc)
            a, sc_text = entry
            if l_raw is None:
                text = f"v=1;n={n}{sc_text}{groups}".encode()
            else:
                text = f"v=1;n={n}{sc_text};l={int(float(l_raw) / 1000)}{groups}".encode()
            if len(text) > _MAX_TXT:
                slow.append((key, reply))  # the general path drops buckets until it fits
                continue
            answer = a + txt_head[len(text)] + text
            if store_key is not None:
                desired[store_key] = answer
            else:
                try:
                    owners = owner_keys(self.config, token)
                except names.OwnerNameError:
                    slow.append((key, reply))
                    continue
                for owner in owners:
                    desired[owner] = answer
            published += 1
        stats.keys += published + excluded + below_min
        stats.published += published
        stats.excluded += excluded
        stats.below_min += below_min
        return slow

    def _values(self, fields: dict[bytes, bytes]) -> tuple[str, float, int] | None:
        """(TXT groups, mean weighted value, how many) of the hash's ``v`` fields."""
        mults = self.mults
        by_name: list[tuple[str, float]] = []
        for name, raw in fields.items():
            if name[:1] != b"v" or len(name) < 2:
                continue
            if not _NUMBER.fullmatch(raw) or not name.isascii():
                return None
            by_name.append((name[1:].decode(), float(raw)))
        by_name.sort()
        weighted = [value * mults.get(bucket, 1.0) for bucket, value in by_name]
        if not all(math.isfinite(w) for w in weighted) or not all(
                math.isfinite(v) for _, v in by_name):
            return None
        groups = "".join(
            f";v{bucket}={_number_text(w)}"
            for (bucket, _), w in zip(by_name, weighted, strict=True)
            if _TXT_KEY.fullmatch("v" + bucket)
        )
        if not weighted:
            return groups, 0.0, 0
        return groups, math.fsum(weighted) / len(weighted), len(weighted)
