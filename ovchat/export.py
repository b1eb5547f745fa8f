"""`ovchat export`: Hugging Face id, HF dir or .gguf → a self-contained OpenVINO IR dir.

Conversion and compression are optimum-intel's and nncf's, called in-process the way
`optimum-cli export openvino` calls them. ovchat adds the GGUF front door, the manifest
(`ovchat.json`) and an atomic write: the output dir appears only when everything is in it.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import os
import shutil
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from .errors import (
    ExportError,
    ModelNotFoundError,
    OptionError,
    OvchatError,
    UnsupportedModelError,
)

MANIFEST = "ovchat.json"
MANIFEST_FORMAT = 1
WEIGHT_FORMATS = ("int4", "int8", "fp16", "fp32")
FALLBACKS = ("error", "ignore", "adjust")
DEFAULT_TASK = "text-generation-with-past"
# The seed's recipe: int4, symmetric, groups of 128, 60% of the ratio-defining layers in int4.
DEFAULT_WEIGHT_FORMAT = "int4"
DEFAULT_GROUP_SIZE = 128
DEFAULT_RATIO = 0.6
DEFAULT_SYM = True
VERSIONED = (
    "ovchat", "openvino", "openvino-genai", "openvino-tokenizers", "optimum-intel", "optimum",
    "nncf", "transformers", "torch", "tokenizers", "gguf",
)  # fmt: skip

Progress = Callable[[str], None]


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
            )
        if not (self.group_size == -1 or self.group_size >= 1):
            raise OptionError(
                f"group size must be positive or -1 (per channel), got {self.group_size}"
            )
        if not 0.0 < self.ratio <= 1.0:
            raise OptionError(f"ratio must be in (0, 1], got {self.ratio}")
        if self.group_size_fallback not in (None, *FALLBACKS):
            raise OptionError(
                f"group size fallback {self.group_size_fallback!r} is not known",
                f"use one of {', '.join(FALLBACKS)}",
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


def versions(names: Sequence[str] = VERSIONED) -> dict[str, str]:
    """Installed versions of `names` (missing packages left out)."""
    out = {}
    for name in names:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out


def weight_statistics(xml: Path) -> dict[str, Any]:
    """What compression was actually applied: weights per element type and int4 group sizes.

    Read from the IR itself (not from what was asked), counting the constants that feed
    MatMul/Gather weights.
    """
    import openvino as ov

    model = ov.Core().read_model(str(xml))
    by_type: Counter[str] = Counter()
    groups: Counter[str] = Counter()
    for op in model.get_ops():
        if op.get_type_name() != "Constant":
            continue
        et = op.get_output_element_type(0).get_type_name()
        shape = list(op.get_output_shape(0))
        n = 1
        for d in shape:
            n *= d
        if n < 1024:  # scales, zero points, small tensors
            continue
        by_type[et] += n
        if et in ("u4", "i4") and len(shape) == 3:
            groups[str(shape[2])] += n
    total = sum(by_type.values()) or 1
    return {
        "weights_by_type": dict(by_type),
        "share_by_type": {k: round(v / total, 4) for k, v in by_type.items()},
        "int4_group_sizes": dict(groups),
    }


@contextmanager
def _capture_nncf_log() -> Iterator[list[str]]:
    """Keep nncf's own summary lines (the bit-width table) for the manifest."""
    lines: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.extend(record.getMessage().splitlines())

    logger = logging.getLogger("nncf")
    handler = Keep(logging.INFO)
    logger.addHandler(handler)
    try:
        yield lines
    finally:
        logger.removeHandler(handler)


def _source_kind(model: str) -> str:
    p = Path(model).expanduser()
    if p.suffix.lower() == ".gguf":
        return "gguf"
    if p.exists():
        return "dir"
    if model.startswith((".", "/", "~")) or model.count("/") > 1:
        raise ModelNotFoundError(f"{model} does not exist", "check the path")
    return "hub"


def export(
    model: str,
    output_dir: str | Path,
    recipe: Recipe | None = None,
    force: bool = False,
    name: str | None = None,
    progress: Progress | None = None,
    generation: dict[str, Any] | None = None,
) -> Path:
    """Export `model` (HF id, HF dir or .gguf) to `output_dir`; return the output path.

    `generation` overrides fields of the exported generation_config.json (recorded in the
    manifest). Atomic: the result is built in a sibling temp dir and renamed into place.
    """
    recipe = (recipe or Recipe()).validate()
    say = progress or (lambda s: print(f"ovchat export: {s}", file=sys.stderr, flush=True))
    out = Path(output_dir).expanduser().absolute()
    kind = _source_kind(model)
    _check_output(out, Path(model).expanduser().absolute() if kind != "hub" else None, force)
    if kind == "gguf" and not Path(model).expanduser().is_file():
        raise ModelNotFoundError(f"{model} does not exist", "check the path to the .gguf file")
    if kind == "dir" and not Path(model).expanduser().is_dir():
        raise ModelNotFoundError(f"{model} is neither a directory nor a .gguf file")
    out.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-", dir=out.parent))
    t0 = time.perf_counter()
    try:
        source: dict[str, Any] = {"kind": kind, "model": model}
        hf_model = model
        if kind == "gguf":
            from .gguf import gguf_to_hf

            src = Path(model).expanduser().resolve()
            source = {"kind": "gguf", "model": str(src), "bytes": src.stat().st_size}
            say("step 1/3: GGUF → Hugging Face (weights dequantized, tokenizer from metadata)")
            hf_model = str(gguf_to_hf(src, work / "_hf", progress=say))
        elif kind == "dir":
            hf_model = str(Path(model).expanduser().resolve())
            source["model"] = hf_model
        ir = work / "ir"
        with _capture_nncf_log() as nncf_lines:
            _optimum_export(hf_model, ir, recipe, say)
        if generation:
            gc_path = ir / "generation_config.json"
            gc = json.loads(gc_path.read_text()) if gc_path.is_file() else {}
            gc_path.write_text(json.dumps({**gc, **generation}, indent=2) + "\n")
        say("checking the result")
        stats = weight_statistics(ir / "openvino_model.xml")
        manifest = {
            "format": MANIFEST_FORMAT,
            "name": name or (Path(model).stem if kind == "gguf" else model),
            "source": source,
            "recipe": {"asked": asdict(recipe), "applied": stats},
            "generation_overrides": generation or {},
            "nncf_log": [ln for ln in nncf_lines if ln.strip()][-40:],
            "versions": versions(),
            "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "export_seconds": round(time.perf_counter() - t0, 1),
        }
        (ir / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
        _replace(ir, out)
        say(f"done in {time.perf_counter() - t0:.0f}s → {out}")
        return out
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _check_output(out: Path, source: Path | None, force: bool) -> None:
    """Never write over the source, and --force replaces only an earlier export."""
    if source is not None and (out == source or out in source.parents):
        raise OptionError(f"{out} would overwrite the source {source}", "choose another OUTPUT_DIR")
    if not out.exists():
        return
    if not force:
        raise OptionError(f"{out} already exists", "pass --force to replace it")
    if not out.is_dir():
        raise OptionError(f"{out} exists and is not a directory", "choose another OUTPUT_DIR")
    if any(out.iterdir()) and not (out / MANIFEST).is_file():
        raise OptionError(
            f"refusing to replace {out}: it is not an ovchat export (no {MANIFEST})",
            "choose another OUTPUT_DIR, or empty it first",
        )


def _replace(new: Path, out: Path) -> None:
    if out.exists():
        trash = out.with_name(f".{out.name}.old-{os.getpid()}")
        out.rename(trash)
        new.rename(out)
        shutil.rmtree(trash, ignore_errors=True)
    else:
        new.rename(out)


def _optimum_export(model: str, ir: Path, recipe: Recipe, say: Progress) -> None:
    try:
        from huggingface_hub.constants import HF_HUB_CACHE
        from optimum.exporters.openvino.__main__ import _main_quantize, main_export
        from optimum.intel.openvino.configuration import OVConfig
    except ImportError as e:  # pragma: no cover - install problem
        raise ExportError(f"optimum-intel is not usable: {e}", "run scripts/setup.sh") from e
    qconfig = recipe.quantization_config()
    ov_config = (
        OVConfig(quantization_config=qconfig) if qconfig else OVConfig(dtype=recipe.weight_format)
    )
    say(f"step 2/3: converting to OpenVINO IR ({model})")
    try:
        _quiet_libraries()
        main_export(
            model_name_or_path=model,
            output=ir,
            task=recipe.task,
            # optimum's default is the legacy constant, which ignores HF_HUB_CACHE
            cache_dir=HF_HUB_CACHE,
            trust_remote_code=recipe.trust_remote_code,
            ov_config=ov_config,
            convert_tokenizer=True,
            library_name="transformers",
        )
        if qconfig:
            say(f"step 3/3: compressing weights with nncf ({_describe(recipe)})")
            _main_quantize(
                model_name_or_path=model,
                task=recipe.task,
                library_name="transformers",
                quantization_config=ov_config.quantization_config,
                output=ir,
                cache_dir=HF_HUB_CACHE,
                trust_remote_code=recipe.trust_remote_code,
            )
        else:
            say(f"step 3/3: no compression ({recipe.weight_format})")
    except OvchatError:
        raise
    except Exception as e:
        _translate(e, model)
        raise


def _quiet_libraries() -> None:
    """Keep nncf's progress bars, drop tracing warnings and weight-loading bars: they are
    noise to a user who asked for an export."""
    import warnings

    import transformers

    warnings.filterwarnings("ignore", category=UserWarning)
    warnings.filterwarnings("ignore", category=FutureWarning)
    try:
        from torch.jit import TracerWarning

        warnings.filterwarnings("ignore", category=TracerWarning)
    except ImportError:  # pragma: no cover
        pass
    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()
    logging.getLogger("optimum").setLevel(logging.ERROR)


def _translate(e: Exception, model: str) -> None:
    """Turn the field's exceptions into ovchat's: a message and what to do."""
    msg = " ".join(str(e).split())[:400] or type(e).__name__
    if type(e).__name__ == "InvalidGroupSizeError" or "group size" in msg.lower():
        raise ExportError(
            f"nncf refused the group size: {msg[:200]}",
            "pass --group-size-fallback adjust (or ignore), or a --group-size that divides "
            "the model's widths",
        ) from e
    if isinstance(e, OSError):
        first = msg.split(". ")[0]
        raise ModelNotFoundError(
            f"could not load {model!r}: {first[:300]}",
            "give a local model dir or a .gguf file, or check the Hugging Face id and network",
        ) from e
    if (
        isinstance(e, (KeyError, NotImplementedError))
        or "unsupported" in msg.lower()
        or ("not supported" in msg.lower())
    ):
        raise UnsupportedModelError(
            f"cannot export {model!r}: {msg}",
            "check that it is a causal language model that optimum-intel supports",
        ) from e
    raise ExportError(f"export of {model!r} failed: {msg}") from e


def _describe(r: Recipe) -> str:
    if r.weight_format == "int4":
        fb = f", fallback {r.group_size_fallback}" if r.group_size_fallback else ""
        return f"int4 {'sym' if r.sym else 'asym'} group {r.group_size} ratio {r.ratio}{fb}"
    return r.weight_format


# -- CLI -----------------------------------------------------------------------------------
def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", help="Hugging Face id, local HF model dir, or .gguf file")
    p.add_argument("output_dir", help="where to write the OpenVINO model")
    p.add_argument("--weight-format", choices=WEIGHT_FORMATS, default=DEFAULT_WEIGHT_FORMAT)
    p.add_argument("--group-size", type=int, default=DEFAULT_GROUP_SIZE)
    p.add_argument("--ratio", type=float, default=DEFAULT_RATIO)
    sym = p.add_mutually_exclusive_group()
    sym.add_argument("--sym", dest="sym", action="store_true", default=DEFAULT_SYM)
    sym.add_argument("--asym", dest="sym", action="store_false")
    p.add_argument("--group-size-fallback", choices=FALLBACKS, default=None)
    p.add_argument("--task", default=DEFAULT_TASK)
    p.add_argument("--trust-remote-code", action="store_true")
    p.add_argument("--name", help="model name recorded in the manifest")
    p.add_argument("--force", action="store_true", help="replace OUTPUT_DIR if it exists")


def main(args: argparse.Namespace) -> int:
    recipe = Recipe(
        weight_format=args.weight_format,
        group_size=args.group_size,
        ratio=args.ratio,
        sym=args.sym,
        group_size_fallback=args.group_size_fallback,
        task=args.task,
        trust_remote_code=args.trust_remote_code,
    )
    out = export(args.model, args.output_dir, recipe, force=args.force, name=args.name)
    print(out)
    return 0
