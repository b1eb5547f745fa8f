"""Hugging Face id, HF dir or .gguf → a self-contained OpenVINO IR dir.

Conversion and compression are optimum-intel's and nncf's, called in-process the way
`optimum-cli export openvino` calls them. ovchat adds the GGUF front door, the manifest
(`ovchat.json`) and an atomic write: the output dir appears only when everything is in it.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import shutil
import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from ..errors import (
    ExportError,
    ModelNotFoundError,
    OptionError,
    OvchatError,
    StorageError,
    UnsupportedModelError,
    disk_problem,
    require,
)
from ..modeldir import EMBEDDING_TASKS, MANIFEST
from ..progress import Progress, printer
from ..versions import versions
from .gguf_genai import require_transformers_route, runtime_only
from .quiet import capture_nncf_log, quiet_libraries
from .recipe import DEFAULT_TASK, GGUF_FORMAT, Recipe
from .stats import weight_statistics
from .vision import VISION_TASK, check_gguf, has_vision, main_ir, write_preprocessor_config
from .workdir import owned_workdir, remove_leftovers, replace_dir

MANIFEST_FORMAT = 1
FULL_DISK_BYTES = 16 << 20  # an export that fails with less free space than this: a full disk


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
    embedding: dict[str, Any] | None = None,
    why: str | None = None,
) -> Path:
    """Export `model` (HF id, HF dir or .gguf) to `output_dir`; return the output path.

    `generation` overrides fields of the exported generation_config.json (recorded in the
    manifest). For an embedding task (feature-extraction), pooling and normalisation are
    read from the model; `embedding` overrides them (pooling, normalize, query_instruction,
    embed_instruction, max_length, matryoshka). Atomic: the result is built in a sibling
    temp dir and renamed into place. `why` (why this recipe) is recorded in the manifest.
    """
    recipe = (recipe or Recipe()).validate()
    say = progress or printer("ovchat export")
    out = Path(output_dir).expanduser().absolute()
    kind = _source_kind(model)
    if recipe.task == DEFAULT_TASK and kind != "gguf" and has_vision(model):
        recipe = replace(recipe, task=VISION_TASK)  # a vision-language model: all its parts
    if kind == "gguf" and Path(model).expanduser().is_file():
        check_gguf(Path(model).expanduser(), say)  # a vision GGUF's image part: refused
    if not runtime_only(model, recipe):
        if kind == "gguf" and Path(model).expanduser().is_file():
            require_transformers_route(model)
        require("optimum.intel", "export", "exporting a model")
    _check_output(out, Path(model).expanduser().absolute() if kind != "hub" else None, force)
    if kind == "gguf" and not Path(model).expanduser().is_file():
        raise ModelNotFoundError(f"{model} does not exist", "check the path to the .gguf file")
    if recipe.weight_format == GGUF_FORMAT and kind != "gguf":
        raise OptionError(
            "the gguf weight format keeps a GGUF file's own quantized weights: "
            f"{model} is not a .gguf file",
            "choose int4 or int8 for this source",
            param="weight_format",
        )
    if kind == "dir" and not Path(model).expanduser().is_dir():
        raise ModelNotFoundError(f"{model} is neither a directory nor a .gguf file")
    if embedding and not recipe.task.startswith(EMBEDDING_TASKS):
        raise OptionError(
            "pooling and normalisation apply to embedding models only",
            "export with the task feature-extraction",
            param="task",
        )
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        remove_leftovers(out)
        with owned_workdir(out) as work:
            try:
                return _export(
                    model, kind, out, work, recipe, name, say, generation, embedding, why
                )
            except Exception as e:
                _disk(e, out)  # before the work dir goes: a full disk is still full now
                raise
    except OSError as e:
        _disk(e, out)
        raise


def _disk(e: BaseException, out: Path) -> None:
    """A full or read-only disk is one clear line, not a conversion failure. OpenVINO's
    writer says only "basic_ios::clear: iostream error" on a full disk, so the disk's free
    space is looked at too (before the partial export is cleaned up)."""
    why = disk_problem(e)
    if why is None:
        with contextlib.suppress(OSError):
            if shutil.disk_usage(out.parent).free < FULL_DISK_BYTES:
                why = "the disk is full"
    if why is not None and not isinstance(e, StorageError):
        raise StorageError(
            f"cannot write the export to {out.parent}: {why}",
            "free some space, or choose an output directory on another disk",
        ) from e


def _export(
    model: str,
    kind: str,
    out: Path,
    work: Path,
    recipe: Recipe,
    name: str | None,
    say: Progress,
    generation: dict[str, Any] | None,
    embedding: dict[str, Any] | None,
    why: str | None = None,
) -> Path:
    """The export itself, built in `work` (owned by this process)."""
    t0 = time.perf_counter()
    source: dict[str, Any] = {"kind": kind, "model": model}
    hf_model = model
    ir = work / "ir"
    applied: dict[str, Any] = {}
    genai = runtime_only(model, recipe)
    if kind == "gguf":
        from .gguf_genai import ROUTE_GENAI, ROUTE_TRANSFORMERS

        src = Path(model).expanduser().resolve()
        source = {"kind": "gguf", "model": str(src), "bytes": src.stat().st_size,
                  "route": ROUTE_GENAI if genai else ROUTE_TRANSFORMERS}  # fmt: skip
        say(f"route: {source['route']} ({'the runtime alone' if genai else 'export extra'})")
    if genai:
        from .gguf_genai import build_or_fallback

        applied["gguf"] = build_or_fallback(src, ir, say)
        genai = applied["gguf"]["route"] == ROUTE_GENAI
        source["route"] = applied["gguf"].pop("route")
    if kind == "gguf" and not genai:
        from .gguf import gguf_to_hf

        say("step 1/3: GGUF → Hugging Face (weights dequantized, tokenizer from metadata)")
        hf_model = str(gguf_to_hf(src, work / "_hf", progress=say))
    elif kind == "dir":
        hf_model = str(Path(model).expanduser().resolve())
        source["model"] = hf_model
    pooling: dict[str, Any] = {}
    if recipe.task.startswith(EMBEDDING_TASKS):  # read first: a bad setting fails at once
        from .embedding import embedding_settings

        pooling["embedding"] = embedding_settings(hf_model, embedding)
    nncf_lines: list[str] = []
    if not genai:
        with capture_nncf_log() as nncf_lines:
            _optimum_export(hf_model, ir, recipe, say)
            # a vision-language model's image settings, where genai reads them
            write_preprocessor_config(ir, Path(hf_model) if kind != "hub" else None)
            if recipe.weight_format == GGUF_FORMAT:
                from .gguf_exact import apply

                say("step 3/3: writing the GGUF's own quantized blocks into the IR")
                applied["gguf"] = apply(model, ir, Path(hf_model))
    if pooling:
        from .embedding import fold_position_ids

        pooling["embedding"]["folded_position_ids"] = fold_position_ids(ir)
    if generation:
        gc_path = ir / "generation_config.json"
        gc = json.loads(gc_path.read_text()) if gc_path.is_file() else {}
        gc_path.write_text(json.dumps({**gc, **generation}, indent=2) + "\n")
    say("checking the result")
    main = main_ir(ir)  # a speech model's weights are mostly in its decoder
    stats = weight_statistics(main if main.is_file() else ir / "openvino_decoder_model.xml")
    manifest = {
        "format": MANIFEST_FORMAT,
        "name": name or _default_name(model, kind),
        "source": source,
        "recipe": {
            "asked": asdict(recipe),
            "applied": {**stats, **applied},
            **({"why": why} if why else {}),
        },
        "generation_overrides": generation or {},
        **pooling,
        "nncf_log": [ln for ln in nncf_lines if ln.strip()][-40:],
        "versions": versions(),
        "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "export_seconds": round(time.perf_counter() - t0, 1),
    }
    (ir / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    replace_dir(ir, out)
    say(f"done in {time.perf_counter() - t0:.0f}s → {out}")
    return out


def _check_output(out: Path, source: Path | None, force: bool) -> None:
    """Never write over the source, and `force` replaces only an earlier export."""
    if source is not None and (out == source or out in source.parents):
        raise OptionError(
            f"{out} would overwrite the source {source}",
            "choose another output directory",
            param="output_dir",
        )
    if not out.exists():
        return
    if not force:
        raise OptionError(f"{out} already exists", "replace it with force=True", param="force")
    if not out.is_dir():
        raise OptionError(
            f"{out} exists and is not a directory",
            "choose another output directory",
            param="output_dir",
        )
    if any(out.iterdir()) and not (out / MANIFEST).is_file():
        raise OptionError(
            f"refusing to replace {out}: it is not an ovchat export (no {MANIFEST})",
            "choose another output directory, or empty it first",
            param="output_dir",
        )


def _optimum_export(model: str, ir: Path, recipe: Recipe, say: Progress) -> None:
    try:
        from huggingface_hub.constants import HF_HUB_CACHE
        from optimum.exporters.openvino.__main__ import _main_quantize, main_export
        from optimum.intel.openvino.configuration import OVConfig
    except ImportError as e:  # pragma: no cover - install problem
        raise ExportError(
            f"optimum-intel is not usable: {e}", "reinstall it: pip install 'ovchat[export]'"
        ) from e
    from .calib import for_recipe

    qconfig = recipe.quantization_config(for_recipe(recipe, model, say))
    ov_config = (
        OVConfig(quantization_config=qconfig) if qconfig else OVConfig(dtype=recipe.float_format())
    )
    say(f"step 2/3: converting to OpenVINO IR ({model})")
    try:
        quiet_libraries()
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
            say(f"step 3/3: compressing weights with nncf ({recipe.label()})")
            _main_quantize(
                model_name_or_path=model,
                task=recipe.task,
                library_name="transformers",
                quantization_config=ov_config.quantization_config,
                output=ir,
                cache_dir=HF_HUB_CACHE,
                trust_remote_code=recipe.trust_remote_code,
            )
        elif recipe.weight_format != GGUF_FORMAT:
            say(f"step 3/3: no compression ({recipe.weight_format})")
    except OvchatError:
        raise
    except Exception as e:
        _translate(e, model)
        raise


def _translate(e: Exception, model: str) -> None:
    """Turn the field's exceptions into ovchat's: a message and what to do."""
    msg = " ".join(str(e).split())[:400] or type(e).__name__
    if type(e).__name__ == "InvalidGroupSizeError" or "group size" in msg.lower():
        raise ExportError(
            f"nncf refused the group size: {msg[:200]}",
            "set group_size_fallback to 'adjust' (or 'ignore'), or a group_size that "
            "divides the model's widths",
            param="group_size_fallback",
        ) from e
    if "does not allow for the export" in msg:  # optimum-intel's version bound on a model
        raise UnsupportedModelError(
            f"cannot export {model!r}: optimum-intel's exporter for this architecture takes "
            f"older transformers ({msg.split('. ', 1)[-1]})",
            "export it with optimum-intel where that transformers is installed and load the "
            "exported directory by its path, or choose another model (docs/vision.md)",
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


def _default_name(model: str, kind: str) -> str:
    """A short name: a GGUF's file stem, a local directory's name (never a path on this
    machine: names show in the server's ids and errors), else the hub id."""
    if kind == "gguf":
        return Path(model).stem
    if kind == "dir":
        return Path(model).expanduser().resolve().name
    return model
