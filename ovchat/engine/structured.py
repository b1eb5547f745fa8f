"""Constrained decoding: a request's json_schema / regex / grammar, or its tools, as genai's
StructuredOutputConfig (xgrammar inside), checked before any of it reaches the engine.

Why the check: genai compiles the grammar only once the request is scheduled, and a grammar
that does not compile makes ContinuousBatchingPipeline.step() fail for good — every request
of the server, then and after (measured on openvino-genai 2026.4). So each new constraint is
first compiled by `GrammarCheck`: genai's own LLMPipeline over a stand-in model (all-zero
logits, no weights) that shares the real tokenizer, which takes genai's exact compiler and
vocabulary, ~1 ms per check. Refusals come back as an OptionError naming the field.
"""

from __future__ import annotations

import collections
import json
import logging
import re
import tempfile
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from ..errors import OptionError, reason
from ..options import GenerationOptions
from .grammarlimits import accepts_something, check_schema, check_text
from .jsongrammar import compact_grammar
from .tools import CALL_OPEN, CALL_SUFFIX, ToolSet, tool_param, tool_what

log = logging.getLogger("ovchat.engine")

JSON_OBJECT_SCHEMA = '{"type": "object"}'  # OpenAI's json_object mode: any JSON object
# How an error names each constraint (the request's own field name is in `param`).
WHAT = {
    "json_schema": "the JSON schema",
    "regex": "the regex",
    "grammar": "the grammar",
    "tools": "a tool's parameters",
}
MAX_WHY = 200  # characters of xgrammar's message kept
CHECKED_CACHE = 512  # constraints remembered as compiling (schemas repeat across requests)
# xgrammar's messages start with its source location: "…/regex_converter.cc:75: Regex …"
_SOURCE = re.compile(r"^.*?\.(?:cc|h|hpp|cpp):\d+:\s*(?:Check failed: .*? is false:\s*)?")


@dataclass(frozen=True)
class Constraint:
    """A constraint ready for genai: its StructuredOutputConfig (built on use), the key it
    is remembered by, and the request field it came from."""

    key: str
    param: str
    build: Callable[[], Any] = field(compare=False)


def constraints(options: GenerationOptions, tools: ToolSet | None = None) -> list[Constraint]:
    """How to constrain this request, best first (empty: unconstrained).

    A JSON Schema (and a tool's parameters) first as ovchat's compact grammar (jsongrammar.py)
    when the schema is in its subset, then as genai's own JSON-schema grammar.
    """
    import openvino_genai as ov_genai

    S = ov_genai.StructuredOutputConfig
    if tools is not None and tools.active:
        base = json.dumps(
            [tools.choice, tools.parallel, [t.as_dict() for t in tools.tools]], sort_keys=True
        )
        out = []
        for compact in (True, False):
            tags = _tool_tags(tools, compact)
            if tags is not None:
                key = f"tools{int(compact)}:{base}"
                out.append(Constraint(key, "tools", partial(_tags_config, tags)))
        return out
    if options.constraint is None:
        return []
    kind, text = options.constraint
    what = WHAT.get(kind, kind)
    if kind != "json_schema":
        check_text(kind, text, what, kind)
        return [Constraint(f"{kind}:{text}", kind, partial(S, **{kind: text}))]
    out = []
    schema = json.loads(text)
    check_schema(schema, what, kind)
    ebnf = compact_grammar(schema)
    if ebnf is not None:
        check_text("grammar", ebnf, f"the grammar made from {what}", kind)
        _check_accepts(ebnf, what, kind)
        out.append(Constraint(f"grammar:{ebnf}", kind, partial(S, grammar=ebnf)))
    out.append(Constraint(f"json_schema:{text}", kind, partial(S, json_schema=text)))
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


def _tags_config(tags: Any) -> Any:
    import openvino_genai as ov_genai

    return ov_genai.StructuredOutputConfig(structural_tags_config=tags)


def _tool_tags(tools: ToolSet, compact: bool) -> Any:
    """Calls as structural tags: each call is `<tool_call>{"name": N, "arguments": ` + JSON
    matching N's parameters + `}</tool_call>` (None: a tool's parameters are outside the
    compact grammar's subset).

    "required" and a named tool: the answer is exactly one call (all OpenAI's contract asks;
    a tag sequence left open lets a small model repeat calls until its token limit).
    "auto": free text, constrained once the model opens a call; several calls when parallel
    calls are allowed.
    """
    import openvino_genai as ov_genai

    S = ov_genai.StructuredOutputConfig
    forced = tools.forced
    tags = []
    for t in forced or tools.tools:
        if compact:
            ebnf = compact_grammar(dict(t.schema))
            if ebnf is None:
                return None
            param = tool_param(tools.tools.index(t))
            what = f"the grammar made from {tool_what(t.name)}"
            check_text("grammar", ebnf, what, param)
            _check_accepts(ebnf, tool_what(t.name), param)
            content: Any = S.EBNF(ebnf)
        else:
            content = S.JSONSchema(json.dumps(dict(t.schema)))
        tags.append(S.Tag(t.call_prefix(), content, CALL_SUFFIX))
    if forced:
        return S.TagsWithSeparator(tags, "\n", at_least_one=True, stop_after_first=True)
    return S.TriggeredTags(
        [CALL_OPEN], tags, at_least_one=False, stop_after_first=not tools.parallel
    )


class GrammarCheck:
    """Compiles constraints with genai's own machinery, away from the serving pipeline.

    Built lazily on the first constrained request (~0.5 s); thread-safe; remembers what
    compiled. The stand-in model has the real model's vocabulary width, so the compiled
    grammar is the one the engine will build.
    """

    def __init__(self, tokenizer: Any, vocab_size: int) -> None:
        self.tokenizer = tokenizer
        self.vocab_size = vocab_size
        self._pipe: Any = None
        self._lock = threading.Lock()
        self._ok: collections.OrderedDict[str, None] = collections.OrderedDict()

    def choose(self, candidates: Sequence[Constraint]) -> Constraint:
        """The first candidate that compiles; the last one's error if none does (a compact
        grammar that fails is ovchat's mistake: logged, and genai's own grammar used)."""
        for i, c in enumerate(candidates):
            try:
                self.check(c.key, c.build(), c.param)
                return c
            except OptionError:
                if i == len(candidates) - 1:
                    raise
                log.warning("ovchat's compact grammar did not compile: %s", c.key[:500])
        raise AssertionError("no candidates")

    def check(self, key: str, config: Any, param: str) -> None:
        """Raise OptionError(param) unless `config` (a StructuredOutputConfig) compiles."""
        with self._lock:
            if key in self._ok:
                self._ok.move_to_end(key)
                return
            pipe = self._pipe = self._pipe or self._build()
            cfg = pipe.get_generation_config()
            cfg.max_new_tokens = 1
            cfg.structured_output_config = config
            try:
                pipe.generate(_one_token(), cfg)
            except RuntimeError as e:
                what = WHAT.get(param, param)
                raise OptionError(f"{what} cannot be used: {_why(e)}", param=param) from e
            self._ok[key] = None
            if len(self._ok) > CHECKED_CACHE:
                self._ok.popitem(last=False)

    def _build(self) -> Any:
        import numpy as np
        import openvino as ov
        import openvino_genai as ov_genai
        from openvino import opset13 as ops

        ids = ops.parameter([-1, -1], ov.Type.i64, name="input_ids")
        params = [
            ids,
            ops.parameter([-1, -1], ov.Type.i64, name="attention_mask"),
            ops.parameter([-1, -1], ov.Type.i64, name="position_ids"),
            ops.parameter([-1], ov.Type.i32, name="beam_idx"),
        ]
        # logits [batch, tokens, vocab], all zero: the grammar alone picks the token
        zero = ops.multiply(ops.convert(ids, ov.Type.f32), ops.constant(np.float32(0)))
        wide = ops.constant(np.zeros((1, 1, self.vocab_size), np.float32))
        logits = ops.add(ops.unsqueeze(zero, ops.constant(np.int64(-1))), wide)
        logits.output(0).get_tensor().set_names({"logits"})
        model = ov.Model([logits], params, "ovchat-grammar-check")
        with tempfile.TemporaryDirectory() as d:
            xml = Path(d) / "m.xml"
            ov.save_model(model, xml, compress_to_fp16=False)
            text, weights = xml.read_text(), np.fromfile(xml.with_suffix(".bin"), np.uint8)
        cfg = ov_genai.GenerationConfig()
        cfg.max_new_tokens = 1
        return ov_genai.LLMPipeline(
            text, ov.Tensor(weights), self.tokenizer, "CPU", cfg, ATTENTION_BACKEND="SDPA"
        )


def _one_token() -> Any:
    import numpy as np
    import openvino as ov
    import openvino_genai as ov_genai

    one = ov.Tensor(np.ones((1, 1), dtype=np.int64))
    return ov_genai.TokenizedInputs(one, one)


def _why(e: BaseException) -> str:
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
