"""The outcome of a check: per-token component scores, per-selector results, and
their presentation (:meth:`SelectorResult.explain`, :meth:`Result.to_json`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from client.answers import FAILURES, Answer, Query
from client.selectorconfig import SelectorConfig
from client.selectors import Token


@dataclass(frozen=True)
class ComponentScore:
    """One token of a selector: where it was looked up, what came back, what it counts.

    ``status`` is the answer's status, or ``unconfigured`` (no zone for the component)
    or ``invalid`` (the token cannot be an owner name).  ``counted`` is False for tokens
    that are shown but do not enter the total (dkim's rejected and unknown signatures).
    """

    token: Token
    query: Query | None
    answer: Answer | None
    status: str
    method: str
    score: float
    weight: float
    counted: bool
    detail: str = ""

    @property
    def contribution(self) -> float:
        """What this token adds to the selector's total."""
        return self.score * self.weight if self.counted else 0.0


@dataclass
class SelectorResult:
    """A selector's outcome: its tokens, names, raw answers, component scores and total."""

    name: str
    kind: str
    zone: str
    tokens: list[Token]
    queries: list[Query]
    answers: list[Answer]
    components: list[ComponentScore]
    score: float
    symbol: str | None
    errors: list[str]
    config: SelectorConfig | None = field(default=None, repr=False, compare=False)

    def explain(self) -> str:
        """Why the selector scored what it did, one line per fact."""
        lines: list[str] = []
        head = f"{self.name} ({self.kind}, zone {self.zone})"
        if self.config is not None:
            head += (
                f": reject score {self.config.reject_score:g}, "
                f"lower_bound {self.config.lower_bound:g}"
            )
        lines.append(head)
        if not self.components:
            lines.append("  no tokens (nothing in the message for this selector)")
        for comp in self.components:
            token = comp.token
            lines.append(f"  {token.component} {token.value}  (weight {comp.weight:g})")
            if comp.query is None:
                lines.append(f"    not queried: {comp.detail}")
                continue
            lines.append(f"    query   {comp.query.qname}. {comp.query.rdtype}")
            answer = comp.answer
            if answer is not None:
                shown = answer.status
                if answer.text is not None:
                    shown += f' "{answer.text}"'
                if answer.detail:
                    shown += f" ({answer.detail})"
                if answer.ttl is not None:
                    shown += f", ttl {answer.ttl}"
                if answer.cached:
                    shown += ", from cache"
                lines.append(f"    answer  {shown}")
            if comp.status == "hit":
                lines.append(f"    score   {comp.score:+.4f} ({comp.detail})")
            elif comp.status in FAILURES:
                lines.append("    score   +0.0000 (the lookup failed: scored 0)")
            else:
                lines.append("    score   +0.0000 (not listed)")
            if not comp.counted:
                lines.append("    not counted (only accepted DKIM signatures, .a, score)")
            else:
                lines.append(
                    f"    adds    {comp.score:+.4f} x {comp.weight:g} = {comp.contribution:+.4f}"
                )
        verdict = f" -> {self.symbol}" if self.symbol else " (no symbol)"
        lines.append(f"  total {self.score:+.4f}{verdict}")
        for error in self.errors:
            lines.append(f"  error: {error}")
        return "\n".join(lines)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict of everything explain() shows."""
        return {
            "name": self.name,
            "kind": self.kind,
            "zone": self.zone,
            "score": self.score,
            "symbol": self.symbol,
            "errors": list(self.errors),
            "components": [_component_json(comp) for comp in self.components],
        }


def _component_json(comp: ComponentScore) -> dict[str, Any]:
    answer = comp.answer
    return {
        "component": comp.token.component,
        "token": comp.token.value,
        "weight": comp.weight,
        "qname": comp.query.qname if comp.query else None,
        "status": comp.status,
        "answer": answer.text if answer else None,
        "fields": dict(answer.record.fields) if answer and answer.record else None,
        "ttl": answer.ttl if answer else None,
        "cached": answer.cached if answer else False,
        "detail": comp.detail,
        "method": comp.method,
        "score": comp.score,
        "counted": comp.counted,
        "contribution": comp.contribution,
    }


@dataclass
class Result:
    """The outcome of one check: one :class:`SelectorResult` per configured selector."""

    selectors: list[SelectorResult]

    def __getitem__(self, name: str) -> SelectorResult:
        for selector in self.selectors:
            if selector.name == name:
                return selector
        raise KeyError(name)

    @property
    def symbols(self) -> dict[str, float]:
        """The symbols Rspamd would insert, with their multipliers."""
        return {s.symbol: s.score for s in self.selectors if s.symbol is not None}

    @property
    def errors(self) -> list[str]:
        """Every selector's errors, prefixed with its name."""
        return [f"{s.name}: {error}" for s in self.selectors for error in s.errors]

    def explain(self) -> str:
        """Every selector's explanation, one block each."""
        return "\n".join(s.explain() for s in self.selectors)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict: the selectors, the symbols and the errors."""
        return {
            "selectors": [s.to_json() for s in self.selectors],
            "symbols": self.symbols,
            "errors": self.errors,
        }
