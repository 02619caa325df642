"""Safety review of the User Interaction Layer (MACDF 3.1): screen inputs and outputs.

Input screening refuses, with a user-facing message, (1) empty, overlong or binary-garbage
queries, (2) prompt injection (instruction override, system-prompt extraction, role hijack,
tool abuse) and (3) unsafe requests in configurable categories (weapons, drugs, self-harm,
illegal goods). Output screening blocks text that leaks system-prompt markers and removes
recommended products that violate the intent's hard constraints.

Why deterministic regular expressions: the review must run before any model sees the text, be
fast, and be auditable; the patterns and the benign look-alike phrases that neutralize them
("glue gun", "bath bomb", "knife block") live in ``configs/agents/safety.yaml``.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import BaseModel, Field

from rl_shop.agents.config import AgentConfigError, defaults_from, load_agent_config, validate_config
from rl_shop.agents.decider import hard_constraint_violation
from rl_shop.agents.decider_config import HardConstraintConfig
from rl_shop.agents.types import Candidate, Decision, IntentLike, IntentSpec, SafetyVerdict


@defaults_from("safety", "limits")
class LimitsConfig(BaseModel):
    max_chars: int = Field(ge=1)
    min_alnum_chars: int = Field(ge=0)
    max_control_ratio: float = Field(ge=0.0, le=1.0)
    min_wordlike_ratio: float = Field(ge=0.0, le=1.0)
    max_repeat_run: int = Field(ge=2)


class CategoryConfig(BaseModel):
    message: str
    patterns: list[str]


@defaults_from("safety", "unsafe")
class UnsafeConfig(BaseModel):
    benign_phrases: list[str]
    categories: dict[str, CategoryConfig]


@defaults_from("safety", "output")
class OutputConfig(BaseModel):
    leak_markers: list[str]


@defaults_from("safety")
class SafetyConfig(BaseModel):
    """``configs/agents/safety.yaml``."""

    limits: LimitsConfig
    injection: dict[str, list[str]]
    unsafe: UnsafeConfig
    messages: dict[str, str]
    output: OutputConfig


_DEFAULT_MESSAGES = {
    "injection": "I can only help with shopping requests. What product are you looking for?",
    "empty": "Your message looks empty. What product are you looking for?",
    "overlong": "Your message is too long ({n} characters, limit {limit}). Please shorten it.",
    "garbage": "I couldn't read that message. Please type what you are looking for.",
    "output_leak": "Sorry, I can't share that.",
    "output_constraint": "Some results did not meet your requirements and were removed.",
}


def _compile(patterns: Iterable[str], where: str) -> list[re.Pattern[str]]:
    out = []
    for p in patterns:
        try:
            out.append(re.compile(p, re.IGNORECASE | re.MULTILINE))
        except re.error as exc:
            raise AgentConfigError(
                f"bad regular expression in configs/agents/safety.yaml {where}: {p!r}: {exc}"
            ) from None
    return out


def normalize(text: str) -> str:
    """NFKC-fold, lower-case, strip zero-width characters and collapse whitespace (defeats
    full-width or zero-width-space obfuscation of trigger words)."""
    text = unicodedata.normalize("NFKC", text)
    text = "".join(ch for ch in text if unicodedata.category(ch) != "Cf")
    return re.sub(r"\s+", " ", text).strip().lower()


class SafetyReview:
    """Deterministic input / output screening configured by ``configs/agents/safety.yaml``."""

    def __init__(self, config: SafetyConfig | dict[str, Any] | None = None) -> None:
        if config is None:
            config = load_agent_config("safety")
        self.config: SafetyConfig = (
            config if isinstance(config, SafetyConfig) else validate_config(SafetyConfig, config, "agents/safety")
        )
        self.messages = {**_DEFAULT_MESSAGES, **self.config.messages}
        self._injection = {kind: _compile(pats, f"injection.{kind}") for kind, pats in self.config.injection.items()}
        self._unsafe = {
            name: _compile(cat.patterns, f"unsafe.categories.{name}")
            for name, cat in self.config.unsafe.categories.items()
        }
        phrases = sorted((normalize(p) for p in self.config.unsafe.benign_phrases), key=len, reverse=True)
        self._benign = (
            re.compile(r"\b(" + "|".join(re.escape(p) + r"s?" for p in phrases) + r")\b") if phrases else None
        )

    # ------------------------------------------------------------------ input
    def screen_input(self, text: object) -> SafetyVerdict:
        """Allow or refuse a user message; the verdict's ``message`` is what to show on refusal."""
        if isinstance(text, bytes):
            try:
                text = text.decode("utf-8")
            except UnicodeDecodeError:
                return self._refuse("garbage", "bytes that are not UTF-8 text")
        if not isinstance(text, str):
            return self._refuse("empty", f"expected text, got {type(text).__name__}")
        lim = self.config.limits
        if len(text) > lim.max_chars:
            return self._refuse(
                "overlong",
                f"{len(text)} characters > {lim.max_chars}",
                message=self.messages["overlong"].format(n=len(text), limit=lim.max_chars),
            )
        stripped = text.strip()
        if sum(ch.isalnum() for ch in stripped) < lim.min_alnum_chars:
            if stripped and (self._is_garbage(stripped) or not any(ch.isalnum() for ch in stripped)):
                return self._refuse("garbage", "no readable characters")
            return self._refuse("empty", "no letters or digits")
        if self._is_garbage(stripped):
            return self._refuse("garbage", "mostly control, replacement or symbol characters")
        norm = normalize(stripped)
        for kind, patterns in self._injection.items():
            for pat in patterns:
                m = pat.search(norm)
                if m:
                    return self._refuse(
                        "injection", f"prompt injection ({kind})", matched=m.group(0), details={"kind": kind}
                    )
        unsafe_text = self._benign.sub(" ", norm) if self._benign else norm
        for name, patterns in self._unsafe.items():
            for pat in patterns:
                m = pat.search(unsafe_text)
                if m:
                    return SafetyVerdict(
                        allowed=False,
                        category=name,
                        reason=f"unsafe request ({name})",
                        message=self.config.unsafe.categories[name].message,
                        matched=m.group(0),
                    )
        return SafetyVerdict(allowed=True, reason="ok")

    def _is_garbage(self, text: str) -> bool:
        lim = self.config.limits
        n = len(text)
        control = sum(
            1
            for ch in text
            if (unicodedata.category(ch) in ("Cc", "Co", "Cs", "Cn") and ch not in "\t\n\r") or ch == "\ufffd"
        )
        if control / n > lim.max_control_ratio:
            return True
        wordlike = sum(1 for ch in text if ch.isalnum() or ch.isspace() or ch in "-'$%.,?!&/+\"():;#@")
        if wordlike / n < lim.min_wordlike_ratio:
            return True
        return re.search(rf"(.)\1{{{lim.max_repeat_run - 1},}}", text) is not None

    def _refuse(
        self,
        kind: str,
        reason: str,
        matched: str | None = None,
        message: str | None = None,
        details: dict[str, Any] | None = None,
    ) -> SafetyVerdict:
        return SafetyVerdict(
            allowed=False,
            category=kind,
            reason=reason,
            message=message or self.messages[kind],
            matched=matched,
            details=details or {},
        )

    # ------------------------------------------------------------------ output
    def screen_output(
        self,
        text: str,
        intent: IntentLike | None = None,
        products: Iterable[Candidate | Mapping[str, Any]] = (),
        hard_constraints: HardConstraintConfig | None = None,
    ) -> SafetyVerdict:
        """Block leaked system-prompt markers; flag recommended products violating hard constraints.

        ``details['violations']`` maps product id -> violated constraint; the caller removes them
        (see :meth:`filter_decision`). A leak makes the verdict not allowed.
        """
        lowered = text.lower()
        for marker in self.config.output.leak_markers:
            if marker.lower() in lowered:
                return SafetyVerdict(
                    allowed=False,
                    category="output_leak",
                    reason="system prompt marker in output",
                    message=self.messages["output_leak"],
                    matched=marker,
                )
        violations: dict[str, str] = {}
        if intent is not None:
            spec = IntentSpec.from_intent(intent)
            cfg = hard_constraints or HardConstraintConfig.model_validate({})  # decider.yaml's defaults
            for p in products:
                cand = p if isinstance(p, Candidate) else Candidate.from_row(dict(p))
                why = hard_constraint_violation(cand, spec, cfg)
                if why:
                    violations[cand.product_id] = why
        if violations:
            return SafetyVerdict(
                allowed=True,
                category="output_constraint",
                reason="hard-constraint violations removed",
                message=self.messages["output_constraint"],
                details={"violations": violations},
            )
        return SafetyVerdict(allowed=True, reason="ok")

    def filter_decision(
        self,
        decision: Decision,
        intent: IntentLike,
        products: Iterable[Candidate | Mapping[str, Any]],
        hard_constraints: HardConstraintConfig | None = None,
    ) -> tuple[Decision, SafetyVerdict]:
        """Screen a Decision's advice and recommendations; return a cleaned copy and the verdict.

        ``products`` are the full candidate records (the Decision only carries ids and titles).
        """
        by_id = {}
        for p in products:
            cand = p if isinstance(p, Candidate) else Candidate.from_row(dict(p))
            by_id[cand.product_id] = cand
        recommended = [by_id[r.product_id] for r in decision.recommendations if r.product_id in by_id]
        if decision.relaxed and intent is not None:
            # the Decider said which stated attributes none of these meet (its advice says so first);
            # budget, excluded brands and excluded attributes are still checked here
            intent = IntentSpec.from_intent(intent).model_copy(update={"required_attributes": {}})
        verdict = self.screen_output(
            decision.advice + "\n" + decision.follow_up_question, intent, recommended, hard_constraints
        )
        cleaned = decision.model_copy(deep=True)
        if not verdict.allowed:
            cleaned.advice = verdict.message
            return cleaned, verdict
        bad = verdict.details.get("violations", {})
        if bad:
            cleaned.recommendations = [r for r in cleaned.recommendations if r.product_id not in bad]
            cleaned.excluded.update(bad)
            # The advice text was written about the removed products too: replace it by a plain list.
            remaining = "; ".join(
                f"{r.title}" + (f" (${r.price:.2f})" if r.price is not None else "") for r in cleaned.recommendations
            )
            cleaned.advice = verdict.message + (f" Remaining options: {remaining}." if remaining else "")
        return cleaned, verdict
