"""The compact JSON grammar (engine/jsongrammar.py): what it converts, that genai compiles
each grammar it writes, and that its integer ranges hold exactly the integers asked for."""

from __future__ import annotations

import random
import re
from pathlib import Path
from typing import Annotated, Literal

import pytest
from pydantic import BaseModel, Field

from ovchat.engine.jsongrammar import _int_range, compact_grammar
from ovchat.engine.structured import GrammarCheck, vocab_size


class Leaf(BaseModel):
    v: int
    next: Leaf | None = None


class Every(BaseModel):
    s: str
    short: str = Field(min_length=1, max_length=5)
    n: float
    pos: float = Field(ge=0)
    age: int = Field(ge=0, le=150)
    neg: int = Field(ge=-40, lt=10)
    count: int = Field(ge=1)
    flag: bool
    nothing: None
    kind: Literal["a", "b"]
    tags: list[Annotated[str, Field(max_length=8)]] = Field(min_length=1, max_length=3)
    any_list: list[int] = []
    table: dict[str, int] = {}
    maybe: str | None = None
    tree: Leaf | None = None


CONVERTED = [
    Every.model_json_schema(),
    {"type": "object"},  # json_object: any object
    {},  # any value
    {"type": "array", "items": {"type": "string"}, "minItems": 2},
    {"type": "object", "properties": {"a": {"type": "integer"}, "b": {"type": "string"}}},
    {"enum": ["x", 1, None, {"k": [1, 2]}]},
    {"type": ["string", "null"]},
]
NOT_CONVERTED = [
    {"type": "string", "pattern": "^[a-z]+$"},
    {"type": "string", "format": "email"},
    {"allOf": [{"type": "object"}]},
    {"type": "number", "maximum": 1.5},
    {"type": "array", "items": {"type": "integer"}, "uniqueItems": True},
    {"type": "object", "properties": {"a": {"$ref": "#/$defs/Missing"}}},
    {"type": "object", "properties": {"a": {"$ref": "https://example.com/a.json"}}},
]


@pytest.fixture(scope="module")
def check(tiny_llama: Path) -> GrammarCheck:
    import openvino_genai as ov_genai

    tok = ov_genai.Tokenizer(str(tiny_llama))
    return GrammarCheck(tok, vocab_size(tiny_llama, tok))


@pytest.mark.parametrize("schema", CONVERTED, ids=range(len(CONVERTED)))
def test_converted_grammars_compile(check, schema):
    import openvino_genai as ov_genai

    ebnf = compact_grammar(schema)
    assert ebnf is not None and ebnf.startswith("root ::= ")
    assert " ws" not in ebnf and "\\n" not in ebnf  # no free whitespace anywhere
    check.check(ebnf, ov_genai.StructuredOutputConfig(grammar=ebnf), "json_schema")


@pytest.mark.parametrize("schema", NOT_CONVERTED, ids=range(len(NOT_CONVERTED)))
def test_outside_the_subset_goes_to_genai(schema):
    assert compact_grammar(schema) is None


def _regex(alternatives: list[str]) -> re.Pattern[str]:
    """The EBNF alternatives _int_range writes, as a Python regex (they use literals, digit
    classes and {n} counts only)."""
    parts = []
    for alt in alternatives:
        alt = re.sub(r'"([^"]*)"', lambda m: re.escape(m.group(1)), alt)
        parts.append(alt.replace(" ", ""))
    return re.compile("(?:" + "|".join(parts) + ")")


@pytest.mark.parametrize("seed", range(30))
def test_integer_ranges_are_exact(seed):
    rnd = random.Random(seed)
    lo = rnd.randint(-3000, 3000)
    hi = lo + rnd.choice([0, 1, 9, 10, 99, 137, 1000, 4321])
    pattern = _regex(_int_range(lo, hi))
    for v in range(lo - 120, hi + 121):
        assert bool(pattern.fullmatch(str(v))) == (lo <= v <= hi), (lo, hi, v)
    assert not pattern.fullmatch("-0") and not pattern.fullmatch("007")
