"""What an export asks optimum-intel and nncf for: the Recipe (mirrors optimum-cli's
options; optimum-intel's int4 recipe, sym g128 ratio 0.6, is the default)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from ..errors import OptionError

# "gguf": a GGUF source's own quantized blocks kept as they are (convert/gguf_genai.py)
GGUF_FORMAT = "gguf"
WEIGHT_FORMATS = ("int4", "int8", "fp16", "fp32", GGUF_FORMAT)
FALLBACKS = ("error", "ignore", "adjust")
DEFAULT_TASK = "text-generation-with-past"
# optimum-intel's int4 recipe: symmetric, groups of 128, 60% of the ratio-defining layers in
# int4 (the rest int8).
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
    # Data-aware int4 (nncf through optimum; they need `dataset`: a text file, "builtin" or
    # "auto", see calib.py): AWQ, scale estimation, GPTQ, and the metric that picks which
    # layers stay int8 when ratio < 1 (e.g. "hessian_input_activation").
    dataset: str | None = None
    awq: bool = False
    scale_estimation: bool = False
    gptq: bool = False
    sensitivity_metric: str | None = None
    num_samples: int | None = None
    # nncf's all_layers: the embedding and lm_head in int4 too (optimum-cli --all-layers);
    # the fastest decode measured on 0.5B-1.5B shapes (README "Speed").
    all_layers: bool = False

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
        data_aware = self.awq or self.scale_estimation or self.gptq or self.sensitivity_metric
        if data_aware and not self.dataset:
            raise OptionError(
                "AWQ, scale estimation, GPTQ and a sensitivity metric need calibration text",
                "give a dataset: a text file, builtin or auto",
                param="dataset",
            )
        if data_aware and self.weight_format != "int4":
            raise OptionError("data-aware compression applies to int4", param="weight_format")
        return self

    def quantization_config(self, dataset: list[str] | str | None = None) -> dict[str, Any] | None:
        """optimum's weight-compression config, as optimum-cli builds it (`dataset`: the
        calibration texts `self.dataset` names, loaded by the caller)."""
        if self.weight_format == "int4":
            q: dict[str, Any] = {
                "bits": 4,
                "sym": self.sym,
                "group_size": self.group_size,
                "ratio": self.ratio,
                "group_size_fallback": self.group_size_fallback,
                "quant_method": "awq" if self.awq else "default",
                "dtype": "int4",
            }
            if self.all_layers:
                q["all_layers"] = True
            if dataset is not None:
                q["dataset"] = dataset
                q["scale_estimation"] = self.scale_estimation or None
                q["gptq"] = self.gptq or None
                if self.sensitivity_metric:
                    q["sensitivity_metric"] = self.sensitivity_metric
                if self.num_samples:
                    q["num_samples"] = self.num_samples
            return q
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
    data = [k for k in ("awq", "scale_estimation", "gptq") if asked.get(k)]
    if asked.get("sensitivity_metric"):
        data.append(str(asked["sensitivity_metric"]))
    how = f", {'+'.join(data)} on {asked.get('dataset')}" if data else ""
    return (
        f"int4 {'sym' if asked.get('sym') else 'asym'} g{asked.get('group_size')} "
        f"r{asked.get('ratio')}{fb}{how}"
    )
