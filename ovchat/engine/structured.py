"""Constrained decoding: a request's json_schema / regex / grammar, or its tools, as genai's
StructuredOutputConfig (xgrammar inside).

Each candidate constraint is plain data (a `Constraint`'s spec), so that it can be compiled
first in the grammar sandbox (grammarsandbox.py) and then built again by the engine, in
whatever process it runs; `build_config` turns a spec into genai's config.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import OptionError, reason
from ..options import GenerationOptions
from .grammarlimits import accepts_something, check_schema, check_text
from .jsongrammar import compact_grammar
from .tools import CALL_OPEN, CALL_SUFFIX, ToolSet, tool_param, tool_what

JSON_OBJECT_SCHEMA = '{"type": "object"}'  # OpenAI's json_object mode: any JSON object
# How an error names each constraint (the request's own field name is in `param`).
WHAT = {
    "json_schema": "the JSON schema",
    "regex": "the regex",
    "grammar": "the grammar",
    "tools": "a tool's parameters",
}
MAX_WHY = 200  # characters of xgrammar's message kept
# xgrammar's messages start with its source location: "…/regex_converter.cc:75: Regex …"
_SOURCE = re.compile(r"^.*?\.(?:cc|h|hpp|cpp):\d+:\s*(?:Check failed: .*? is false:\s*)?")


@dataclass(frozen=True)
class Constraint:
    """A constraint as plain data: the key it is remembered by, the request field it came
    from, and its spec — ("config", {field: text}) for StructuredOutputConfig's own fields,
    or ("tags", {...}) for tool calls (`_tool_tags`)."""

    key: str
    param: str
    spec: tuple[str, dict[str, Any]] = field(compare=False)

    def build(self) -> Any:
        """genai's StructuredOutputConfig for it."""
        return build_config(self.spec)


def build_config(spec: tuple[str, dict[str, Any]]) -> Any:
    """genai's StructuredOutputConfig for a Constraint's spec."""
    import openvino_genai as ov_genai

    S = ov_genai.StructuredOutputConfig
    kind, data = spec
    if kind == "config":
        return S(**data)
    content = {"const": S.ConstString, "ebnf": S.EBNF, "json_schema": S.JSONSchema}
    tags = [S.Tag(begin, content[what](text), end) for begin, what, text, end in data["tags"]]
    if data["trigger"] is None:
        tags_config = S.TagsWithSeparator(tags, "\n", at_least_one=True, stop_after_first=True)
    else:
        tags_config = S.TriggeredTags(
            [data["trigger"]], tags, at_least_one=False, stop_after_first=data["stop_after_first"]
        )
    return S(structural_tags_config=tags_config)


def constraints(options: GenerationOptions, tools: ToolSet | None = None) -> list[Constraint]:
    """How to constrain this request, best first (empty: unconstrained).

    A JSON Schema (and a tool's parameters) first as ovchat's compact grammar (jsongrammar.py)
    when the schema is in its subset, then as genai's own JSON-schema grammar.
    """
    if tools is not None and tools.active:
        base = json.dumps(
            [tools.choice, tools.parallel, [t.as_dict() for t in tools.tools]], sort_keys=True
        )
        out = []
        for compact in (True, False):
            tags = _tool_tags(tools, compact)
            if tags is not None:
                key = f"tools{int(compact)}:{base}"
                out.append(Constraint(key, "tools", ("tags", tags)))
        return out
    if options.constraint is None:
        return []
    kind, text = options.constraint
    what = WHAT.get(kind, kind)
    if kind != "json_schema":
        check_text(kind, text, what, kind)
        return [Constraint(f"{kind}:{text}", kind, ("config", {kind: text}))]
    out = []
    schema = json.loads(text)
    check_schema(schema, what, kind)
    ebnf = compact_grammar(schema)
    if ebnf is not None:
        check_text("grammar", ebnf, f"the grammar made from {what}", kind)
        _check_accepts(ebnf, what, kind)
        out.append(Constraint(f"grammar:{ebnf}", kind, ("config", {"grammar": ebnf})))
    out.append(Constraint(f"json_schema:{text}", kind, ("config", {"json_schema": text})))
    return out


def _check_accepts(ebnf: str, what: str, param: str) -> None:
    """An OptionError unless the grammar made from a schema accepts some JSON value (else
    genai would constrain nothing and the model would write anything)."""
    if not accepts_something(ebnf):
        raise OptionError(
            f"{what} accepts no JSON value at all",
            "a $ref to itself, or a required property or item that must contain itself, "
            "needs a way to end (an optional property, minItems 0, an anyOf with a plain type)",
            param=param,
        )


def _tool_tags(tools: ToolSet, compact: bool) -> dict[str, Any] | None:
    """Calls as structural tags: each call is `<tool_call>{"name": N, "arguments": ` + JSON
    matching N's parameters + `}</tool_call>` (None: a tool's parameters are outside the
    compact grammar's subset).

    "required" and a named tool: the answer is exactly one call (all OpenAI's contract asks;
    a tag sequence left open lets a small model repeat calls until its token limit).
    "auto": free text, constrained once the model opens a call; several calls when parallel
    calls are allowed. As plain data: each tag (begin, content kind, content, end).
    """
    forced = tools.forced
    tags = []
    for t in forced or tools.tools:
        if t.takes_no_arguments:
            # An empty parameter list: `{}` exactly (a free object invites made-up fields).
            content = ("const", "{}")
        elif compact:
            ebnf = compact_grammar(dict(t.schema))
            if ebnf is None:
                return None
            param = tool_param(tools.tools.index(t))
            what = f"the grammar made from {tool_what(t.name)}"
            check_text("grammar", ebnf, what, param)
            _check_accepts(ebnf, tool_what(t.name), param)
            content = ("ebnf", ebnf)
        else:
            content = ("json_schema", json.dumps(dict(t.schema)))
        tags.append((t.call_prefix(), *content, CALL_SUFFIX))
    trigger = None if forced else CALL_OPEN
    return {"tags": tags, "trigger": trigger, "stop_after_first": not tools.parallel}


def why(e: BaseException) -> str:
    """xgrammar's complaint without its source location (nor the schema it quotes)."""
    lines = [ln.strip() for ln in str(e).splitlines() if _SOURCE.match(ln.strip())]
    text = _SOURCE.sub("", lines[-1]) if lines else reason(e)
    text = text.split(" in {", 1)[0]  # "Cannot find field $defs in {...the schema...}"
    return text[:MAX_WHY].strip() or "it does not compile"


def vocab_size(model_dir: Path, tokenizer: Any) -> int:
    """The width of the model's logits: config.json's vocab_size, else the tokenizer's."""
    try:
        size = json.loads((model_dir / "config.json").read_text()).get("vocab_size")
        if isinstance(size, int) and size > 0:
            return size
    except (OSError, ValueError):
        pass
    return len(tokenizer.get_vocab_vector())
