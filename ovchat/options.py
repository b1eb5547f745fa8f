"""GenerationOptions: sampling and stopping, validated once, here, for every front end.

The Python API passes keyword arguments straight in, the CLI builds one from its flags, the
server from the request body; each maps `OptionError.param` (the field name) to its own
spelling. A value the engine cannot take (e.g. a top_p that is 0 in 32-bit floats) is
refused here, never discovered inside OpenVINO.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
)

from .errors import OptionError

DEFAULT_MAX_NEW_TOKENS = 1024  # as in the seed; cut to what the context window leaves
MAX_TEMPERATURE = 2.0  # OpenAI's range; higher is noise
MAX_PENALTY = 2.0  # presence/frequency penalties: OpenAI's range, -2..2
MAX_SEED = 2**64 - 1  # genai's rng_seed is an unsigned 64-bit integer
FLOAT32_TINY = 1.1754944e-38  # smallest normal float32: below it a value rounds towards 0

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

    def __init__(self, **data: Any) -> None:
        try:
            super().__init__(**data)
        except ValidationError as e:
            raise option_error(e) from None

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
