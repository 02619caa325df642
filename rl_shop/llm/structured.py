"""Schemas, validation and the deterministic fallback parser for structured LLM output.

Backend-independent: constrained decoding (see :mod:`rl_shop.llm.constrained`) makes the model
emit JSON of the right *shape*; this module checks the *content* (pydantic / JSON-schema plus a
caller's domain check such as "the brand exists in the catalog") and, when the model still fails,
rescues what it can with a documented parser instead of crashing:

``default_fallback``: take the first JSON value found in the text (code fences stripped, a
truncated object closed), keep each top-level field that validates, and replace every missing or
invalid field by its schema default, else the first ``enum`` / ``const`` value, else an "empty"
value of its type (``""``, ``minimum`` or 0, ``False``, ``[]``, ``{}`` filled likewise, ``null``
when allowed). If even that does not validate, the result has no value and says why.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, cast

from pydantic import BaseModel, ValidationError

from rl_shop.llm.types import Message

Validator = Callable[[Any], "None | bool | str | Iterable[str]"]

# The separators of the JSON the grammar-constrained decoders write (``any_whitespace=False``):
# ``{"a": 1, "b": [2, 3]}``. Fine-tuning targets are rendered with them (:func:`grammar_json`):
# a model trained on compact ``{"a":1}`` meets, under the grammar, token sequences it never saw.
JSON_SEPARATORS: tuple[str, str] = (", ", ": ")


def grammar_json(value: BaseModel | dict[str, Any]) -> str:
    """``value`` as the constrained decoder writes it: every field in schema order, JSON_SEPARATORS."""
    data = value.model_dump(mode="json") if isinstance(value, BaseModel) else value
    return json.dumps(data, ensure_ascii=False, separators=JSON_SEPARATORS)


class SchemaError(ValueError):
    """The schema argument is neither a pydantic model class nor a JSON-schema dict."""


@dataclass(frozen=True)
class SchemaSpec:
    """A schema in both forms: JSON schema (for decoding) and a validator (for checking)."""

    name: str
    json_schema: dict[str, Any]
    model: type[BaseModel] | None

    def validate_obj(self, obj: object) -> object:
        """Validate a decoded JSON value; returns the model instance (or the dict).

        Raises ``ValueError`` with a short, readable message on failure.
        """
        if self.model is not None:
            try:
                return self.model.model_validate(obj)
            except ValidationError as exc:
                raise ValueError(_short_pydantic_error(exc)) from None
        try:
            import jsonschema
        except ImportError as exc:  # pragma: no cover - jsonschema ships with the structured deps
            raise ValueError("dict schemas need the 'jsonschema' package; pip install jsonschema") from exc
        try:
            jsonschema.validate(obj, self.json_schema)
        except jsonschema.ValidationError as exc:
            path = "/".join(str(p) for p in exc.absolute_path) or "<root>"
            raise ValueError(f"{path}: {exc.message}") from None
        return obj

    def validate_text(self, text: str) -> object:
        """Parse ``text`` as one JSON value and validate it."""
        try:
            obj = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"not valid JSON ({exc.msg} at char {exc.pos}): {text[:80]!r}") from None
        return self.validate_obj(obj)

    def fingerprint(self) -> str:
        """Stable text identifying the schema (part of the response-cache key)."""
        return json.dumps(self.json_schema, sort_keys=True)


def as_schema(schema: type[BaseModel] | dict[str, Any]) -> SchemaSpec:
    """Normalise a pydantic model class or a JSON-schema dict to a :class:`SchemaSpec`."""
    if isinstance(schema, type) and issubclass(schema, BaseModel):
        return SchemaSpec(schema.__name__, schema.model_json_schema(), schema)
    if isinstance(schema, dict):
        if not schema or not (
            "type" in schema or "properties" in schema or "anyOf" in schema or "enum" in schema or "$ref" in schema
        ):
            raise SchemaError(
                "a dict schema must be a JSON schema with at least 'type', 'properties', 'enum', "
                f"'anyOf' or '$ref'; got keys {sorted(schema)[:8]}"
            )
        return SchemaSpec(str(schema.get("title", "schema")), schema, None)
    raise SchemaError(
        f"schema must be a pydantic BaseModel subclass or a JSON-schema dict, got {type(schema).__name__}"
    )


def schema_instruction(spec: SchemaSpec) -> str:
    """The text appended to the conversation so the model knows which JSON to write."""
    return "Answer with a single JSON object and nothing else. It must follow this JSON schema:\n" + json.dumps(
        spec.json_schema, separators=(",", ":")
    )


def with_schema_instruction(messages: list[Message], spec: SchemaSpec) -> list[Message]:
    """A copy of ``messages`` whose last user turn carries the schema instruction."""
    out = [dict(m) for m in messages]
    instruction = schema_instruction(spec)
    for msg in reversed(out):
        if msg["role"] == "user":
            msg["content"] = f"{msg['content']}\n\n{instruction}"
            break
    else:
        out.append({"role": "user", "content": instruction})
    return out  # type: ignore[return-value]


def run_validator(validate: Validator | None, value: object) -> list[str]:
    """Run a caller's domain check; returns error messages (empty = accepted).

    The callable may return None / True (accept), False (reject), a message, or messages, and may
    raise ``ValueError`` / ``AssertionError`` / ``KeyError`` with the reason.
    """
    if validate is None:
        return []
    try:
        verdict = validate(value)
    except (ValueError, AssertionError, KeyError, LookupError) as exc:
        return [f"validate: {exc}"]
    if verdict is None or verdict is True:
        return []
    if verdict is False:
        return ["validate: rejected by the caller's check"]
    if isinstance(verdict, str):
        return [f"validate: {verdict}"] if verdict else []
    return [f"validate: {msg}" for msg in verdict]


# ---------------------------------------------------------------- best-effort JSON extraction

_FENCE = re.compile(r"```(?:json)?\s*(.*?)```", re.DOTALL)


def extract_json(text: str) -> Any | None:
    """The first JSON object or array found in ``text``; closes a truncated one; None if none."""
    if not isinstance(text, str) or not text:
        return None
    candidates = [m.group(1) for m in _FENCE.finditer(text)] + [text]
    decoder = json.JSONDecoder()
    for cand in candidates:
        for match in re.finditer(r"[\{\[]", cand):
            start = match.start()
            try:
                value, _ = decoder.raw_decode(cand, start)
                return value
            except json.JSONDecodeError:
                repaired = _close_truncated(cand[start:])
                if repaired is None:
                    continue
                try:
                    value, _ = decoder.raw_decode(repaired)
                    return value
                except json.JSONDecodeError:
                    continue
    return None


def _close_truncated(fragment: str) -> str | None:
    """Close an unfinished JSON fragment: end the open string, drop a dangling key, add brackets."""
    stack: list[str] = []
    in_str = escaped = False
    for ch in fragment:
        if in_str:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_str = False
        elif ch == '"':
            in_str = True
        elif ch in "{[":
            stack.append("}" if ch == "{" else "]")
        elif ch in "}]":
            if not stack:
                return None
            stack.pop()
    if not stack:
        return None
    body = fragment + ('"' if in_str else "")
    body = re.sub(r'(,\s*"[^"]*"\s*:?\s*|,\s*|:\s*)$', "", body.rstrip())
    return body + "".join(reversed(stack))


# ---------------------------------------------------------------- the default fallback


def _resolve(node: dict[str, Any], root: dict[str, Any]) -> dict[str, Any]:
    ref = node.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/"):
        target: object = root
        for part in ref[2:].split("/"):
            target = target.get(part, {}) if isinstance(target, dict) else {}
        return {**cast("dict[str, Any]", target), **{k: v for k, v in node.items() if k != "$ref"}}
    return node


def empty_value(node: dict[str, Any], root: dict[str, Any]) -> object:
    """The documented default of a JSON-schema node (see the module docstring)."""
    node = _resolve(node, root)
    if "default" in node:
        return node["default"]
    if "const" in node:
        return node["const"]
    if node.get("enum"):
        return node["enum"][0]
    options = node.get("anyOf") or node.get("oneOf")
    if options:
        if any(_resolve(o, root).get("type") == "null" for o in options):
            return None
        return empty_value(options[0], root)
    kind = node.get("type")
    if isinstance(kind, list):
        if "null" in kind:
            return None
        kind = kind[0] if kind else None
    if kind == "string":
        return "" if not node.get("minLength") else "?" * int(node["minLength"])
    if kind in ("integer", "number"):
        for bound in ("minimum", "exclusiveMinimum"):
            if bound in node:
                val = node[bound] + (1 if bound == "exclusiveMinimum" and kind == "integer" else 0)
                return int(val) if kind == "integer" else float(val)
        return 0 if kind == "integer" else 0.0
    if kind == "boolean":
        return False
    if kind == "array":
        items = node.get("items", {})
        return [empty_value(items, root) for _ in range(int(node.get("minItems", 0)))]
    if kind == "object" or "properties" in node:
        props = node.get("properties", {})
        return {k: empty_value(props[k], root) for k in node.get("required", []) if k in props}
    return None


def default_fallback(spec: SchemaSpec, text: str) -> tuple[Any | None, list[str]]:
    """Rescue a value from ``text`` (see the module docstring); returns (value or None, errors)."""
    root = spec.json_schema
    top = _resolve(root, root)
    props: dict[str, Any] = top.get("properties", {})
    found = extract_json(text)
    if props:
        base = cast("dict[str, Any]", empty_value(top, root)) if isinstance(empty_value(top, root), dict) else {}
        if isinstance(found, dict):
            base.update({k: v for k, v in found.items() if k in props})
        candidate: object = base
    else:
        candidate = found if found is not None else empty_value(top, root)
    errors: list[str] = []
    for _ in range(max(1, len(props)) + 1):
        try:
            return spec.validate_obj(candidate), errors
        except ValueError as exc:
            errors.append(f"fallback: {exc}")
            bad = _bad_top_level_keys(spec, candidate)
            fixable = [
                k for k in bad if k in props and cast("dict[str, Any]", candidate).get(k) != empty_value(props[k], root)
            ]
            if not isinstance(candidate, dict) or not fixable:
                return None, errors
            for key in fixable:
                candidate[key] = empty_value(props[key], root)
    return None, errors


def _bad_top_level_keys(spec: SchemaSpec, candidate: object) -> list[str]:
    if not isinstance(candidate, dict):
        return []
    if spec.model is not None:
        try:
            spec.model.model_validate(candidate)
        except ValidationError as exc:
            return sorted({str(e["loc"][0]) for e in exc.errors() if e.get("loc")})
        return []
    try:
        import jsonschema
    except ImportError:  # pragma: no cover
        return []
    validator = jsonschema.Draft202012Validator(spec.json_schema)
    return sorted({str(e.absolute_path[0]) for e in validator.iter_errors(candidate) if e.absolute_path})


def _short_pydantic_error(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors()[:4]:
        loc = ".".join(str(p) for p in err.get("loc", ())) or "<root>"
        parts.append(f"{loc}: {err.get('msg')}")
    more = exc.error_count() - len(parts)
    return "; ".join(parts) + (f" (+{more} more)" if more > 0 else "")
