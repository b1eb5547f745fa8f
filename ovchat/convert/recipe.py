"""What an export asks optimum-intel and nncf for: the Recipe (mirrors optimum-cli's
options; the seed's recipe is the default)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from ..errors import OptionError

# "gguf": a GGUF source's own Q4_0/Q4_1/Q8_0 blocks kept as they are (convert/gguf_exact.py)
GGUF_FORMAT = "gguf"
WEIGHT_FORMATS = ("int4", "int8", "fp16", "fp32", GGUF_FORMAT)
FALLBACKS = ("error", "ignore", "adjust")
DEFAULT_TASK = "text-generation-with-past"
# The seed's recipe: int4, symmetric, groups of 128, 60% of the ratio-defining layers in int4.
DEFAULT_WEIGHT_FORMAT = "int4"
DEFAULT_GROUP_SIZE = 128
DEFAULT_RATIO = 0.6
DEFAULT_SYM = True


@dataclass(frozen=True)
class Recipe:
    """What to ask optimum/nncf for; mirrors optimum-cli's options."""

    weight_format: str = DEFAULT_WEIGHT_FORMAT
    group_size: int = DEFAULT_GROUP_SIZE
    ratio: float = DEFAULT_RATIO
    sym: bool = DEFAULT_SYM
    group_size_fallback: str | None = None
    task: str = DEFAULT_TASK
    trust_remote_code: bool = False

    def validate(self) -> Recipe:
        if self.weight_format not in WEIGHT_FORMATS:
            raise OptionError(
                f"weight format {self.weight_format!r} is not supported",
                f"use one of {', '.join(WEIGHT_FORMATS)}",
                param="weight_format",
            )
        if not (self.group_size == -1 or self.group_size >= 1):
            raise OptionError(
                f"group size must be positive or -1 (per channel), got {self.group_size}",
                param="group_size",
            )
        if not 0.0 < self.ratio <= 1.0:
            raise OptionError(f"ratio must be in (0, 1], got {self.ratio}", param="ratio")
        if self.group_size_fallback not in (None, *FALLBACKS):
            raise OptionError(
                f"group size fallback {self.group_size_fallback!r} is not known",
                f"use one of {', '.join(FALLBACKS)}",
                param="group_size_fallback",
            )
        return self

    def quantization_config(self) -> dict[str, Any] | None:
        """optimum's weight-compression config, as optimum-cli builds it."""
        if self.weight_format == "int4":
            return {
                "bits": 4,
                "sym": self.sym,
                "group_size": self.group_size,
                "ratio": self.ratio,
                "group_size_fallback": self.group_size_fallback,
                "quant_method": "default",
                "dtype": "int4",
            }
        if self.weight_format == "int8":
            return {"bits": 8, "sym": self.sym, "group_size": -1, "ratio": 1.0, "dtype": "int8"}
        return None

    def float_format(self) -> str:
        """The precision optimum exports in before compression (gguf starts from fp16)."""
        return "fp16" if self.weight_format == GGUF_FORMAT else self.weight_format

    def label(self) -> str:
        """Short human name: "int4 sym g128 r0.6, fallback adjust", "int8", "fp16"."""
        return recipe_label(asdict(self))


def recipe_label(asked: dict[str, Any] | None) -> str:
    """The label of a recipe as recorded in a manifest (a dict of Recipe's fields)."""
    if not asked:
        return "recipe unknown"
    if asked.get("weight_format") == GGUF_FORMAT:
        return "gguf (the GGUF's own blocks)"
    if asked.get("weight_format") != "int4":
        return str(asked.get("weight_format"))
    fb = ", fallback " + asked["group_size_fallback"] if asked.get("group_size_fallback") else ""
    return (
        f"int4 {'sym' if asked.get('sym') else 'asym'} g{asked.get('group_size')} "
        f"r{asked.get('ratio')}{fb}"
    )
