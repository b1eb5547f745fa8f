"""GenerationOptions: sampling and stopping, validated once, here, for every front end.

The Python API passes keyword arguments straight in, the CLI builds one from its flags, the
server from the request body; each maps `OptionError.param` (the field name) to its own
spelling. A value the engine cannot take (e.g. a top_p that is 0 in 32-bit floats) is
refused here, never discovered inside OpenVINO.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
)

from .errors import OptionError

DEFAULT_MAX_NEW_TOKENS = 1024  # cut to what the context window leaves
MAX_TEMPERATURE = 2.0  # OpenAI's range; higher is noise
MAX_PENALTY = 2.0  # presence/frequency penalties: OpenAI's range, -2..2
MAX_SEED = 2**64 - 1  # genai's rng_seed is an unsigned 64-bit integer
FLOAT32_TINY = 1.1754944e-38  # smallest normal float32: below it a value rounds towards 0
# n: answers per request. They share the prompt's KV cache but each decodes on its own, so
# n answers cost about n times the decode work of one; 8 covers best-of-n and self-consistency.
MAX_CHOICES = 8
# The ways to constrain an answer (genai's StructuredOutputConfig forms), at most one each.
CONSTRAINTS = ("json_schema", "regex", "grammar")

# How each field's range reads in an error ("top_p must be in (0, 1], got 2").
RANGES = {
    "max_new_tokens": "at least 1",
    "temperature": f"between 0 and {MAX_TEMPERATURE:g} (0: greedy)",
    "top_p": "in (0, 1]",
    "top_k": "0 (off) or positive",
    "min_p": "in [0, 1)",
    "repetition_penalty": "positive (1: off)",
    "presence_penalty": f"between -{MAX_PENALTY:g} and {MAX_PENALTY:g}",
    "frequency_penalty": f"between -{MAX_PENALTY:g} and {MAX_PENALTY:g}",
    "no_repeat_ngram_size": "0 (off) or positive",
    "seed": f"between 0 and {MAX_SEED}",
    "n": f"between 1 and {MAX_CHOICES}",
}
TYPES = {"int": "an integer", "float": "a number", "bool": "true or false"}


def _not_below_float32(v: float) -> float:
    # The engine computes in 32-bit floats: 1e-46 is 0 there, and genai refuses 0.
    if 0 < v < FLOAT32_TINY:
        raise ValueError(f"{v!r} is too small for the engine's 32-bit floats")
    return v


def _stop_strings(v: Any) -> Any:
    items = (v,) if isinstance(v, str) else v
    if isinstance(items, (list, tuple)) and all(isinstance(s, str) for s in items):
        for s in items:
            if not s:
                raise ValueError("stop strings must not be empty")
            check_text(s, "stop")
        return tuple(items)
    raise ValueError("stop must be a string or a list of strings")


def _json_schema(v: Any) -> Any:
    # A dict (or a bool, JSON Schema's "anything"/"nothing") is written as JSON text; text
    # must be JSON; a pydantic model class stands for its schema. Whether the engine can
    # compile it is checked when the request is planned.
    if isinstance(v, type) and issubclass(v, BaseModel):
        v = v.model_json_schema()
    if isinstance(v, (dict, bool)):
        return json.dumps(v, ensure_ascii=False)
    if isinstance(v, str):
        try:
            doc = json.loads(v)
        except ValueError as e:
            raise ValueError(f"json_schema is not valid JSON: {e}") from None
        if not isinstance(doc, (dict, bool)):
            raise ValueError("json_schema must be a JSON object (a JSON Schema)")
        return v
    raise ValueError("json_schema must be a JSON Schema: a dict or JSON text")


def _pattern_text(v: Any, info: ValidationInfo) -> Any:
    if isinstance(v, str) and not v.strip():
        raise ValueError(f"{info.field_name} must not be empty")
    return v


# The rules, once: GenerationOptions and the server's request shapes are built from these.
MaxNewTokens = Annotated[int, Field(ge=1)]
Temperature = Annotated[float, Field(ge=0, le=MAX_TEMPERATURE), AfterValidator(_not_below_float32)]
TopP = Annotated[float, Field(gt=0, le=1), AfterValidator(_not_below_float32)]
TopK = Annotated[int, Field(ge=0)]
MinP = Annotated[float, Field(ge=0, lt=1), AfterValidator(_not_below_float32)]
RepetitionPenalty = Annotated[float, Field(gt=0)]
Penalty = Annotated[float, Field(ge=-MAX_PENALTY, le=MAX_PENALTY)]
NGramSize = Annotated[int, Field(ge=0)]
Seed = Annotated[int, Field(ge=0, le=MAX_SEED)]
StopStrings = Annotated[tuple[str, ...], BeforeValidator(_stop_strings)]
Choices = Annotated[int, Field(ge=1, le=MAX_CHOICES)]
JsonSchema = Annotated[str, BeforeValidator(_json_schema)]
PatternText = Annotated[str, AfterValidator(_pattern_text)]


class GenerationOptions(BaseModel):
    """Sampling and stopping. `None` means the model's own generation_config default.

    Construction validates (an OptionError naming the field); `replace(**changes)` makes a
    validated copy.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True, allow_inf_nan=False)

    max_new_tokens: MaxNewTokens = DEFAULT_MAX_NEW_TOKENS
    temperature: Temperature | None = None
    top_p: TopP | None = None
    top_k: TopK | None = None
    min_p: MinP | None = None
    repetition_penalty: RepetitionPenalty | None = None
    presence_penalty: Penalty | None = None
    frequency_penalty: Penalty | None = None
    no_repeat_ngram_size: NGramSize | None = None
    seed: Seed | None = None
    stop: StopStrings = ()
    ignore_eos: bool = False  # decode exactly max_new_tokens (benchmarks)
    n: Choices = 1  # answers to the same prompt, each sampled on its own
    logprobs: bool = False  # report each generated token's log-probability
    # Constrained decoding (genai's StructuredOutputConfig; xgrammar inside): the answer is
    # guaranteed to match. At most one of these.
    json_schema: JsonSchema | None = None  # a JSON Schema (dict, JSON text, pydantic model)
    regex: PatternText | None = None
    grammar: PatternText | None = None  # EBNF, as xgrammar reads it (GBNF-like)

    def __init__(self, **data: Any) -> None:
        try:
            super().__init__(**data)
        except ValidationError as e:
            raise option_error(e) from None
        given = [name for name in CONSTRAINTS if getattr(self, name) is not None]
        if given and self.ignore_eos:
            raise OptionError(
                f"ignore_eos cannot be combined with {given[0]}: once the constrained answer "
                "is complete, the tokens after it would be unconstrained",
                param="ignore_eos",
            )
        if len(given) > 1:
            raise OptionError(
                f"give at most one of {', '.join(CONSTRAINTS)} (got {' and '.join(given)})",
                param=given[1],
            )

    @property
    def constraint(self) -> tuple[str, str] | None:
        """("json_schema" | "regex" | "grammar", its text), or None: an unconstrained answer."""
        for name in CONSTRAINTS:
            value = getattr(self, name)
            if value is not None:
                return name, value
        return None

    def replace(self, **changes: Any) -> GenerationOptions:
        """A validated copy with `changes` applied."""
        return type(self)(**{**self.model_dump(), **changes})

    @classmethod
    def fields(cls) -> tuple[str, ...]:
        return tuple(cls.model_fields)


def option_error(e: ValidationError) -> OptionError:
    """pydantic's first complaint as one line that names the field: "top_p must be ..."."""
    err = e.errors()[0]
    field = ".".join(str(p) for p in err.get("loc", ())) or "options"
    kind = str(err.get("type", ""))
    value = err.get("input")
    if kind == "extra_forbidden":
        return OptionError(
            f"unknown generation option: {field}",
            f"valid: {', '.join(GenerationOptions.fields())}",
            param=field,
        )
    if kind.endswith("_type") or kind.endswith("_parsing") or kind == "int_from_float":
        base = kind.split("_")[0]
        return OptionError(f"{field} must be {TYPES.get(base, base)}, got {value!r}", param=field)
    if field in RANGES and kind in (
        "greater_than", "greater_than_equal", "less_than", "less_than_equal", "finite_number",
    ):  # fmt: skip
        return OptionError(f"{field} must be {RANGES[field]}, got {value!r}", param=field)
    msg = str(err.get("msg", "invalid value")).removeprefix("Value error, ")
    return OptionError(msg if msg.startswith(field) else f"{field}: {msg}", param=field)


def check_text(text: str, param: str = "prompt") -> str:
    """Text must be encodable (no lone surrogates from JSON escapes or undecodable bytes)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as e:
        raise OptionError(
            f"{param} is not valid UTF-8 text (it holds a lone surrogate or undecodable bytes)",
            "check its encoding",
            param=param,
        ) from e
    return text
