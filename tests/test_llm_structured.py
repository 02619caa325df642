"""The backend-independent structured-output helpers, on hand-worked examples."""

from __future__ import annotations

import pytest
from pydantic import BaseModel, Field

from rl_shop.llm.cache import make_key
from rl_shop.llm.metrics import LLMMetrics
from rl_shop.llm.structured import (
    SchemaError,
    as_schema,
    default_fallback,
    empty_value,
    extract_json,
    run_validator,
    with_schema_instruction,
)


@pytest.mark.parametrize(
    "text, expected",
    [
        ('{"a": 1}', {"a": 1}),
        ('Here you go:\n```json\n{"a": [1, 2]}\n```\nbye', {"a": [1, 2]}),
        ('prefix {"a": "x", "b": [1, 2', {"a": "x", "b": [1, 2]}),  # truncated -> closed
        ('{"a": "unterminated', {"a": "unterminated"}),
        ('{"a": 1, "b":', {"a": 1}),  # dangling key dropped
        ("no json here", None),
        ("", None),
        ("[1, 2, 3] and more", [1, 2, 3]),
    ],
)
def test_extract_json(text, expected) -> None:
    assert extract_json(text) == expected


def test_empty_values_follow_the_documented_rules() -> None:
    root: dict = {}
    assert empty_value({"type": "string"}, root) == ""
    assert empty_value({"type": "string", "minLength": 2}, root) == "??"
    assert empty_value({"type": "integer", "minimum": 3}, root) == 3
    assert empty_value({"type": "integer", "exclusiveMinimum": 3}, root) == 4
    assert empty_value({"type": "number"}, root) == 0.0
    assert empty_value({"type": "boolean"}, root) is False
    assert empty_value({"enum": ["b", "a"]}, root) == "b"
    assert empty_value({"anyOf": [{"type": "string"}, {"type": "null"}]}, root) is None
    assert empty_value({"type": "array", "items": {"type": "integer"}, "minItems": 2}, root) == [0, 0]
    assert empty_value({"default": 7, "type": "integer"}, root) == 7
    ref_root = {"$defs": {"X": {"type": "object", "properties": {"k": {"type": "string"}}, "required": ["k"]}}}
    assert empty_value({"$ref": "#/$defs/X"}, ref_root) == {"k": ""}


class Item(BaseModel):
    name: str
    qty: int = Field(ge=1)
    tags: list[str] = []


def test_default_fallback_repairs_field_by_field() -> None:
    spec = as_schema(Item)
    value, errors = default_fallback(spec, 'blah {"name": "pen", "qty": 0, "tags": ["blue"], "extra": 1}')
    assert value == Item(name="pen", qty=1, tags=["blue"])  # qty 0 invalid -> minimum 1
    assert errors and "qty" in errors[0]
    value, _ = default_fallback(spec, "total garbage")
    assert value == Item(name="", qty=1, tags=[])


def test_schema_normalisation_and_errors() -> None:
    spec = as_schema(Item)
    assert spec.name == "Item" and spec.json_schema["required"] == ["name", "qty"]
    assert as_schema({"type": "object"}).model is None
    with pytest.raises(SchemaError, match="pydantic BaseModel subclass or a JSON-schema dict"):
        as_schema("Item")  # type: ignore[arg-type]
    with pytest.raises(SchemaError, match="at least"):
        as_schema({"foo": 1})
    with pytest.raises(ValueError, match="qty"):
        spec.validate_text('{"name": "a", "qty": 0}')
    with pytest.raises(ValueError, match="not valid JSON"):
        spec.validate_text("{oops")


def test_schema_instruction_goes_into_last_user_turn() -> None:
    msgs = [{"role": "system", "content": "S"}, {"role": "user", "content": "U"}]
    out = with_schema_instruction(msgs, as_schema(Item))
    assert out[0] == msgs[0] and out[1]["content"].startswith("U\n\n") and '"qty"' in out[1]["content"]
    assert msgs[1]["content"] == "U"  # the caller's list is not modified


@pytest.mark.parametrize(
    "verdict, errors",
    [
        (None, []),
        (True, []),
        (False, ["validate: rejected by the caller's check"]),
        ("bad brand", ["validate: bad brand"]),
        (["a", "b"], ["validate: a", "validate: b"]),
    ],
)
def test_run_validator_verdicts(verdict, errors) -> None:
    assert run_validator(lambda v: verdict, object()) == errors


def test_run_validator_exception_is_an_error_not_a_crash() -> None:
    def boom(v):
        raise KeyError("brand 'Sonny' not in catalog")

    assert run_validator(boom, 1) == ["validate: \"brand 'Sonny' not in catalog\""]


def test_cache_key_is_order_insensitive_and_param_sensitive() -> None:
    assert make_key(a=1, b=[1, 2]) == make_key(b=[1, 2], a=1)
    assert make_key(a=1, seed=0) != make_key(a=1, seed=1)


def test_metrics_counters() -> None:
    m = LLMMetrics()
    m.add(calls=2, fallbacks=1, total_s=0.5)
    assert m.snapshot()["calls"] == 2 and m.fallbacks == 1 and m.total_s == 0.5
    with pytest.raises(AttributeError, match="no counter"):
        m.add(bogus=1)
    m.reset()
    assert m.calls == 0 and m.total_s == 0.0
