"""The compact JSON grammar (engine/jsongrammar.py): what it converts, that genai compiles
each grammar it writes, and that its integer ranges hold exactly the integers asked for."""

from __future__ import annotations

import random
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Literal

import pytest
from pydantic import BaseModel, Field

from ovchat.engine.grammarlimits import MAX_DEPTH, MAX_GRAMMAR, MAX_NODES, MAX_PATTERN
from ovchat.engine.grammarsandbox import GrammarCheck
from ovchat.engine.jsongrammar import _int_range, compact_grammar
from ovchat.engine.structured import Constraint, constraints, vocab_size
from ovchat.errors import OptionError


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
def check(tiny_llama: Path) -> Iterator[GrammarCheck]:
    import openvino_genai as ov_genai

    tok = ov_genai.Tokenizer(str(tiny_llama))
    g = GrammarCheck(tiny_llama, vocab_size(tiny_llama, tok))
    yield g
    g.close()


@pytest.mark.parametrize("schema", CONVERTED, ids=range(len(CONVERTED)))
def test_converted_grammars_compile(check, schema):

    ebnf = compact_grammar(schema)
    assert ebnf is not None and ebnf.startswith("root ::= ")
    assert " ws" not in ebnf and "\\n" not in ebnf  # no free whitespace anywhere
    assert check.choose([Constraint(ebnf, "json_schema", ("config", {"grammar": ebnf}))])


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


# -- size: linear in the schema, and bounded before anything is compiled -------------------
def _arrays(depth: int) -> dict:
    s: dict = {"type": "integer"}
    for _ in range(depth):
        s = {"type": "array", "items": s}
    return s


def _optional_objects(depth: int) -> dict:
    s: dict = {"type": "integer"}
    for _ in range(depth):  # three optional properties a level, the middle one nested
        props = {"a": {"type": "integer"}, "b": s, "c": {"type": "string"}}
        s = {"type": "object", "properties": props}
    return s


@pytest.mark.parametrize("shape", [_arrays, _optional_objects], ids=["arrays", "objects"])
def test_the_grammar_grows_linearly_with_nesting(check, shape):

    small, large = (len(compact_grammar(shape(d)) or "") for d in (6, 12))
    assert 0 < large < 3 * small  # was 64x (arrays) and 8x (objects)
    ebnf = compact_grammar(shape(40))
    assert ebnf is not None and len(ebnf) < 20_000
    assert check.choose([Constraint(ebnf, "json_schema", ("config", {"grammar": ebnf}))])


def _refusal(options: dict, tools: list | None = None) -> OptionError:
    from ovchat.engine.tools import check_tools
    from ovchat.options import GenerationOptions

    with pytest.raises(OptionError) as e:
        constraints(GenerationOptions(**options), check_tools(tools))
    return e.value


@pytest.mark.parametrize(
    ("schema", "says"),
    [
        (_arrays(MAX_DEPTH + 1), f"more than {MAX_DEPTH} levels"),
        ({"enum": list(range(MAX_NODES + 1))}, f"more than {MAX_NODES:,} values"),
        ({"type": "string", "pattern": "(a|b)" * 1000}, "a pattern of 5,000 characters"),
        (
            {"type": "object", "properties": {f"p{i}": {"pattern": "a" * 900} for i in range(20)}},
            "patterns of more than",
        ),
        ({"type": "string", "maxLength": 10**6}, "repetitions"),
        ({"type": "string", "pattern": "[a-z]{0,100}" * 30}, "repetitions"),
        (
            {"type": "object", "properties": {f"p{i}" * 300: {} for i in range(300)}},
            "is 3",  # the grammar made from it: over MAX_GRAMMAR characters
        ),
    ],
    ids=["deep", "wide", "pattern", "patterns", "bound", "quantifiers", "grammar"],
)
def test_schemas_over_the_limits_are_refused_before_compiling(schema, says):
    e = _refusal({"json_schema": schema})
    assert e.param == "json_schema" and says in e.message and "too large" in e.message
    tool = {"type": "function", "function": {"name": "t", "parameters": {"type": "object"}}}
    big = {"type": "function", "function": {"name": "big", "parameters": {
        "type": "object", "properties": {"x": schema}}}}  # fmt: skip
    e = _refusal({}, [tool, big])
    assert e.param == "tools[1].function.parameters" and "'big'" in e.message


def test_regex_and_grammar_over_the_limits_are_refused():
    e = _refusal({"regex": "(a|b|c|d)" * 2000})
    assert e.param == "regex" and f"the limit is {MAX_PATTERN:,}" in e.message
    e = _refusal({"grammar": 'root ::= "a"' + " | " * MAX_GRAMMAR + '"b"'})
    assert e.param == "grammar" and f"the limit is {MAX_GRAMMAR:,}" in e.message


EMPTY = [
    {"$ref": "#"},
    {"$defs": {"a": {"$ref": "#/$defs/b"}, "b": {"$ref": "#/$defs/a"}}, "$ref": "#/$defs/a"},
    {"type": "object", "properties": {"x": {"$ref": "#"}}, "required": ["x"]},
    {"type": "array", "items": {"$ref": "#"}, "minItems": 1},
]
RECURSIVE = [  # each with a way to end
    {"type": "object", "properties": {"x": {"$ref": "#"}}},
    {"type": "array", "items": {"$ref": "#"}},
    {"anyOf": [{"type": "integer"}, {"type": "array", "items": {"$ref": "#"}, "minItems": 1}]},
    Leaf.model_json_schema(),
]


@pytest.mark.parametrize("schema", EMPTY, ids=range(len(EMPTY)))
def test_schemas_that_accept_nothing_are_refused(schema):
    e = _refusal({"json_schema": schema})
    assert e.param == "json_schema" and "accepts no JSON value" in e.message
    inner = {k: v for k, v in schema.items() if k != "$defs"}  # $refs are from the root
    params = {"type": "object", "properties": {"x": inner}, "required": ["x"]}
    params.update({"$defs": schema["$defs"]} if "$defs" in schema else {})
    e = _refusal({}, [{"type": "function", "function": {"name": "t", "parameters": params}}])
    assert e.param == "tools[0].function.parameters" and "accepts no JSON value" in e.message


@pytest.mark.parametrize("schema", RECURSIVE, ids=range(len(RECURSIVE)))
def test_recursive_schemas_with_a_base_case_are_kept(schema):
    from ovchat.options import GenerationOptions

    out = constraints(GenerationOptions(json_schema=schema))
    assert out[0].key.startswith("grammar:")  # the compact grammar, accepted
