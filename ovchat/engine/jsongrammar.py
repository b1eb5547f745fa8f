"""A JSON Schema as a compact, bounded EBNF grammar, for genai's `grammar=` constraint.

Why by hand: genai compiles `json_schema=` with xgrammar's default of *any* whitespace, and a
small model sampling at temperature 1 then often runs away in newlines or in an endless
string until its token limit (SmolLM2-135M: 20-22 valid answers of 30; research notes in the
README). xgrammar's own converter has the options we need (`any_whitespace=False`) but its
Python package pulls in torch. So the common subset of JSON Schema is converted here:

- no free whitespace: `{"a": 1, "b": [true, null]}` (", " and ": " as separators);
- every answer the grammar allows validates against the schema (a subset of the valid
  documents: required properties first, then optional ones in order, no extra properties,
  strings without escapes or control characters, numbers without exponents).

Strings are not capped beyond the schema's maxLength: xgrammar 0.1.31 unrolls a bounded
repetition of a wide character class, so `[^"]{0,256}` takes ~9 s to compile (measured)
against ~6 ms for `[^"]*`. Digits are cheap to bound, so numbers always end.

Anything outside the subset (pattern, format, allOf, not, if/then, uniqueItems, prefixItems,
bounded floats, ...) raises Unsupported, and the schema goes to genai's own converter as is.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from typing import Any

# Keywords that only annotate (or that OpenAI's strict mode adds): ignored.
ANNOTATIONS = {
    "title", "description", "default", "examples", "$schema", "$id", "$comment", "readOnly",
    "writeOnly", "deprecated", "$defs", "definitions", "strict", "discriminator",
}  # fmt: skip
KNOWN = ANNOTATIONS | {
    "type", "properties", "required", "additionalProperties", "items", "minItems", "maxItems",
    "enum", "const", "anyOf", "oneOf", "$ref", "minLength", "maxLength", "minimum", "maximum",
    "exclusiveMinimum", "exclusiveMaximum",
}  # fmt: skip
DIGITS = 15  # at most, before and after the point
CHAR = r'[^"\\\x00-\x1f]'
BASE_RULES = {
    "char": CHAR,
    "string": '"\\"" char* "\\""',
    "integer": '"-"? natural',
    # digits are bounded (cheap: few tokens match a digit) so that a number always ends
    "natural": f'"0" | [1-9] [0-9]{{0,{DIGITS - 1}}}',
    "number": f'"-"? natural ("." [0-9]{{1,{DIGITS}}})?',
    "boolean": '"true" | "false"',
    "null": '"null"',
    # any JSON value: objects and arrays nest freely (bounded strings and numbers only)
    "value": "object | array | string | number | boolean | null",
    "object": '"{" (string ": " value (", " string ": " value)*)? "}"',
    "array": '"[" (value (", " value)*)? "]"',
}


class Unsupported(Exception):
    """The schema uses something this converter does not handle."""


def compact_grammar(schema: Any) -> str | None:
    """EBNF for `schema` (a dict or bool), or None when it is outside the subset."""
    try:
        return _Converter(schema).grammar()
    except (Unsupported, RecursionError, TypeError, ValueError, KeyError):
        return None


def lit(text: str) -> str:
    """An EBNF string literal matching `text` exactly."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


class _Converter:
    def __init__(self, root: Any) -> None:
        self.root = root
        self.rules: dict[str, str] = {}
        self.refs: dict[str, str] = {}  # "$ref" → rule name
        self.used: set[str] = set()  # base rules referenced
        self.named_bodies: dict[str, str] = {}  # body → its rule name (see `named`)

    def grammar(self) -> str:
        root = self.expr(self.root)
        rules = {"root": root, **self.rules}
        need = set(self.used)
        while True:  # base rules used by base rules
            more = {b for r in need for b in _names(BASE_RULES[r]) if b in BASE_RULES} - need
            if not more:
                break
            need |= more
        for name in BASE_RULES:
            if name in need:
                rules[name] = BASE_RULES[name]
        return "\n".join(f"{name} ::= {body}" for name, body in rules.items())

    def named(self, body: str) -> str:
        """A rule name for `body`: an expression written more than once (an array's item,
        an optional property) is written once as a rule and referred to by name, so the
        grammar grows linearly with the schema, not doubling at each level of nesting."""
        if re.fullmatch(r"[a-z][a-z0-9]*", body):
            return body
        if body not in self.named_bodies:
            name = self.named_bodies[body] = f"part{len(self.named_bodies)}"
            self.rules[name] = body
        return self.named_bodies[body]

    def base(self, name: str) -> str:
        self.used.add(name)
        return name

    def expr(self, s: Any) -> str:
        """An EBNF expression for schema `s`."""
        if s is True or s == {}:
            return self.base("value")
        if not isinstance(s, Mapping) or s is False:
            raise Unsupported("a schema must be an object")
        unknown = set(s) - KNOWN
        if unknown:
            raise Unsupported(", ".join(sorted(unknown)))
        if "$ref" in s:
            if set(s) - ANNOTATIONS - {"$ref"}:
                raise Unsupported("$ref with siblings")
            return self.ref(s["$ref"])
        if "const" in s:
            return lit(_dump(s["const"]))
        if "enum" in s:
            if not s["enum"]:
                raise Unsupported("empty enum")
            return "(" + " | ".join(lit(_dump(v)) for v in s["enum"]) + ")"
        for key in ("anyOf", "oneOf"):  # oneOf as anyOf, as genai does
            if key in s:
                rest = {k: v for k, v in s.items() if k not in ANNOTATIONS and k != key}
                if rest:
                    raise Unsupported(f"{key} with siblings")
                return "(" + " | ".join(self.expr(b) for b in s[key]) + ")"
        kind = s.get("type")
        if kind is None:
            kind = "object" if "properties" in s else None
        if kind is None:
            if set(s) - ANNOTATIONS:
                raise Unsupported("a schema without a type")
            return self.base("value")
        if isinstance(kind, list):
            return "(" + " | ".join(self.typed(s, k) for k in kind) + ")"
        return self.typed(s, kind)

    def typed(self, s: Mapping[str, Any], kind: str) -> str:
        if kind == "string":
            return self.string(s)
        if kind == "integer":
            return self.integer(s)
        if kind == "number":
            return self.number(s)
        if kind == "boolean":
            return self.base("boolean")
        if kind == "null":
            return self.base("null")
        if kind == "object":
            return self.object(s)
        if kind == "array":
            return self.array(s)
        raise Unsupported(f"type {kind}")

    def ref(self, ref: str) -> str:
        if ref not in self.refs:
            if not ref.startswith("#"):
                raise Unsupported("a remote $ref")
            target: Any = self.root
            for part in [p for p in ref[1:].split("/") if p]:
                part = part.replace("~1", "/").replace("~0", "~")
                target = target[part]  # KeyError: a missing $ref (genai refuses it too)
            name = self.refs[ref] = f"ref{len(self.refs)}"
            self.rules[name] = self.expr(target)
        return self.refs[ref]

    def string(self, s: Mapping[str, Any]) -> str:
        lo = int(s.get("minLength", 0))
        hi = s.get("maxLength")
        if lo == 0 and hi is None:
            return self.base("string")
        if hi is not None and int(hi) < lo:
            raise Unsupported("maxLength below minLength")
        # one rule per bound: xgrammar unrolls char{lo,hi} (~20 ms a character to compile)
        name = f"string{lo}to{'' if hi is None else int(hi)}"
        if name not in self.rules:
            self.used.add("char")
            self.rules[name] = f'"\\"" char{{{lo},{"" if hi is None else int(hi)}}} "\\""'
        return name

    def integer(self, s: Mapping[str, Any]) -> str:
        lo = _bound(s.get("minimum"), s.get("exclusiveMinimum"), low=True)
        hi = _bound(s.get("maximum"), s.get("exclusiveMaximum"), low=False)
        if lo is None and hi is None:
            return self.base("integer")
        if lo is not None and hi is not None:
            if lo > hi:
                raise Unsupported("an empty integer range")
            return "(" + " | ".join(_int_range(lo, hi)) + ")"
        if lo is not None and lo >= 0:  # the common one-sided bounds: 0 or 1 and up
            self.used.add("natural")
            if lo == 0:
                return "natural"
            if lo == 1:
                return f"([1-9] [0-9]{{0,{DIGITS - 1}}})"
        raise Unsupported("a one-sided integer range")

    def number(self, s: Mapping[str, Any]) -> str:
        keys = ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum")
        bounds = {k: s[k] for k in keys if k in s}
        if not bounds:
            return self.base("number")
        if bounds == {"minimum": 0}:  # non-negative: the common bounded case
            self.used.add("natural")
            return f'(natural ("." [0-9]{{1,{DIGITS}}})?)'
        raise Unsupported("a bounded number")

    def object(self, s: Mapping[str, Any]) -> str:
        if any(k in s for k in ("minProperties", "maxProperties")):
            raise Unsupported("minProperties")
        props: Mapping[str, Any] = s.get("properties") or {}
        required = list(s.get("required") or [])
        if any(r not in props for r in required):
            raise Unsupported("a required property without a schema")
        if not props:
            extra = s.get("additionalProperties", True)
            if extra is False:
                return lit("{}")
            value = self.base("value") if extra is True else self.expr(extra)
            key = self.base("string")
            pair = self.named(f'{key} ": " {value}')
            return f'("{{" ({pair} (", " {pair})*)? "}}")'
        req = [self.pair(k, props[k]) for k in props if k in required]
        opt = [self.named(self.pair(k, props[k])) for k in props if k not in required]
        # tails[i]: the optional properties from i on, each with its comma (named rules)
        tails = [""] * (len(opt) + 1)
        for i in range(len(opt) - 1, -1 if req else 0, -1):
            tails[i] = " " + self.named(f'(", " {opt[i]})?' + tails[i + 1])
        if req:
            return '("{" ' + ' ", " '.join(req) + tails[0] + ' "}")'
        # all optional: the first one given takes no comma
        starts = [f"{opt[i]}{tails[i + 1]}" for i in range(len(opt))]
        return '("{" (' + " | ".join(starts) + ')? "}")'

    def pair(self, key: str, schema: Any) -> str:
        return f"{lit(json.dumps(key, ensure_ascii=False) + ': ')} {self.expr(schema)}"

    def array(self, s: Mapping[str, Any]) -> str:
        if any(k in s for k in ("prefixItems", "contains", "uniqueItems")):
            raise Unsupported("prefixItems")
        item = self.named(self.expr(s.get("items", True)))
        lo = int(s.get("minItems", 0))
        top = s.get("maxItems")
        hi = None if top is None else int(top)
        if hi is not None and hi < lo:
            raise Unsupported("maxItems below minItems")
        if hi == 0:
            return lit("[]")
        if hi is None:
            more = f'(", " {item}){{{lo - 1},}}' if lo > 1 else f'(", " {item})*'
        else:
            more = f'(", " {item}){{{max(lo - 1, 0)},{hi - 1}}}'
        if lo == 0:
            return f'("[" ({item} {more})? "]")'
        return f'("[" {item} {more} "]")'


def _names(body: str) -> set[str]:
    """The rule names an EBNF body refers to (string literals left out)."""
    return set(re.findall(r"[a-z]+", re.sub(r'"(?:[^"\\]|\\.)*"', "", body)))


def _dump(v: Any) -> str:
    return json.dumps(v, ensure_ascii=False, separators=(", ", ": "))


def _bound(inclusive: Any, exclusive: Any, low: bool) -> int | None:
    """The integer bound from minimum/exclusiveMinimum (`low`) or maximum/exclusiveMaximum."""
    if isinstance(exclusive, bool) or isinstance(inclusive, bool):
        raise Unsupported("draft-4 exclusive bounds")
    values = []
    if inclusive is not None:
        values.append(math.ceil(inclusive) if low else math.floor(inclusive))
    if exclusive is not None:
        values.append(math.floor(exclusive) + 1 if low else math.ceil(exclusive) - 1)
    if not values:
        return None
    return max(values) if low else min(values)


def _int_range(lo: int, hi: int) -> list[str]:
    """EBNF alternatives for the integers lo..hi (written without leading zeros)."""
    out = []
    if lo < 0:
        neg_hi, neg_lo = -lo, max(1, -hi)  # -lo..-max(hi, -1) as magnitudes
        if neg_lo <= neg_hi:
            out += [f'"-" {a}' for a in _natural_range(neg_lo, neg_hi)]
    if hi >= 0:
        out += _natural_range(max(lo, 0), hi)
    return out


def _natural_range(lo: int, hi: int) -> list[str]:
    """Alternatives for lo..hi, 0 <= lo <= hi: split by length, then by digit prefixes."""
    out = []
    for n in range(len(str(lo)), len(str(hi)) + 1):
        a = max(lo, 10 ** (n - 1) if n > 1 else 0)
        b = min(hi, 10**n - 1)
        if a <= b:
            out += _same_length(str(a), str(b))
    return out


def _same_length(a: str, b: str) -> list[str]:
    """Alternatives for the numbers a..b written with the same number of digits."""
    if len(a) == 1:
        return [f"[{a}-{b}]" if a != b else lit(a)]
    if a[0] == b[0]:
        return [f"{lit(a[0])} {x}" for x in _same_length(a[1:], b[1:])]
    n = len(a) - 1
    out = []
    lo_full = a[1:] == "0" * n
    hi_full = b[1:] == "9" * n
    first = int(a[0]) if lo_full else int(a[0]) + 1
    last = int(b[0]) if hi_full else int(b[0]) - 1
    if not lo_full:
        out += [f"{lit(a[0])} {x}" for x in _same_length(a[1:], "9" * n)]
    if first <= last:
        digit = f"[{first}-{last}]" if first != last else lit(str(first))
        out.append(f"{digit} [0-9]{{{n}}}")
    if not hi_full:
        out += [f"{lit(b[0])} {x}" for x in _same_length("0" * n, b[1:])]
    return out
