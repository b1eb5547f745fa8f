"""GGUF → OpenVINO IR with the runtime alone: openvino-genai's own GGUF reader builds the graph
and the tokenizers, ovchat puts the GGUF's blocks into it exactly (convert/gguf_ir.py).

openvino-genai 2026.4 (`LLMPipeline(file.gguf, enable_save_ov_model=True)`) reads the
architectures llama, qwen2 and qwen3, and the tensor types F32, F16, Q4_0, Q4_1, Q8_0, Q4_K
and Q6_K; any other type makes it fail (`gguf_tensor_to_f16 failed`: its fallback cannot
dequantize Q5_0, Q5_1 or Q5_K). For a file holding such types ovchat hands it a copy in which
those tensors are F16 (the GGUF's own dequantization) and then writes their blocks into the
IR itself. Other architectures take the transformers route (convert/gguf.py, `export` extra).
"""

from __future__ import annotations

import contextlib
import json
import os
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InvalidModelError, MissingExtraError, OvchatError, UnsupportedModelError
from ..progress import Progress
from .gguf_blocks import KEPT_TYPES
from .recipe import GGUF_FORMAT, Recipe

GENAI_ARCHS = ("llama", "qwen2", "qwen3")
# What openvino-genai's reader reads itself (the rest ovchat gives it as F16 first).
GENAI_TYPES = ("F32", "F16", "Q4_0", "Q4_1", "Q8_0", "Q4_K", "Q6_K")
ROUTE_GENAI = "openvino-genai"
ROUTE_TRANSFORMERS = "transformers"


def open_gguf(path: Path) -> Any:
    """gguf-py's reader over `path`; a damaged file is one clear error."""
    from gguf import GGUFReader

    if not path.is_file():
        raise InvalidModelError(f"GGUF file {path} does not exist", "check the path")
    try:
        return GGUFReader(str(path))
    except Exception as e:  # gguf raises ValueError/struct/mmap errors on damaged files
        first = " ".join(str(e).split())[:160] or type(e).__name__
        if "GGMLQuantizationType" in first:  # a tensor type newer than this gguf-py
            raise UnsupportedModelError(
                f"{path.name} holds a tensor type this version cannot read ({first})",
                "use a file quantized to a common type (Q4_K_M, Q5_K_M, Q6_K, Q8_0, Q4_0)",
            ) from e
        raise InvalidModelError(
            f"{path.name} is not a readable GGUF file ({first})",
            "the file is damaged or incomplete: download it again",
        ) from e


def field(reader: Any, key: str) -> Any:
    f = reader.fields.get(key)
    if f is None:
        return None
    with contextlib.suppress(Exception):
        return f.contents()
    return None


def route(path: Path) -> str:
    """Which route a GGUF takes: openvino-genai's reader, or transformers' (other archs)."""
    return (
        ROUTE_GENAI
        if field(open_gguf(path), "general.architecture") in GENAI_ARCHS
        else (ROUTE_TRANSFORMERS)
    )


def runtime_only(model: str, recipe: Recipe) -> bool:
    """True when the runtime install alone exports `model`: a .gguf file whose architecture
    openvino-genai's reader takes, kept in its own blocks (weight format gguf)."""
    path = Path(model).expanduser()
    if path.suffix.lower() != ".gguf" or not path.is_file():
        return False
    if recipe.weight_format != GGUF_FORMAT or recipe.task != Recipe().task:
        return False
    return route(path) == ROUTE_GENAI


def require_transformers_route(model: str) -> None:
    """A GGUF that openvino-genai does not read needs the export extra, and optimum-intel
    must export its architecture with the installed transformers: say why not, at once."""
    from ..errors import require

    path = Path(model).expanduser()
    arch = field(open_gguf(path), "general.architecture")
    if arch not in GENAI_ARCHS:
        try:
            require("optimum.intel", "export", "exporting")
        except OvchatError as e:
            raise MissingExtraError(
                f"{path.name} is a GGUF of architecture {arch!r}, which openvino-genai's "
                f"reader does not take ({', '.join(GENAI_ARCHS)}): it needs the "
                "transformers route, which is not installed",
                "install the extra: pip install 'ovchat[export]'",
            ) from e
        from .gguf import check_optimum_exports

        check_optimum_exports(str(arch), path.name)


def check_types(reader: Any, path: Path) -> Counter[str]:
    """The tensor types of the file; a type neither genai nor gguf-py can read is refused."""
    from gguf import GGMLQuantizationType, quants

    kinds: Counter[str] = Counter(t.tensor_type.name for t in reader.tensors)
    for kind in kinds:
        if kind in GENAI_TYPES or kind in KEPT_TYPES:
            continue
        try:  # gguf-py dequantizes it: it can be given to genai as F16
            quants.dequantize(np.zeros(quants.GGML_QUANT_SIZES[GGMLQuantizationType[kind]][1],
                                       np.uint8), GGMLQuantizationType[kind])  # fmt: skip
        except Exception as e:
            raise UnsupportedModelError(
                f"{path.name} holds {kind} tensors, a type ovchat cannot read",
                "use a file quantized to a common type (Q4_K_M, Q5_K_M, Q6_K, Q8_0, Q4_0)",
            ) from e
    return kinds


def _copy_with_f16(reader: Any, out: Path) -> list[str]:
    """Write `reader`'s file to `out` with every tensor genai cannot read as F16 (dequantized
    by gguf-py, llama.cpp's own Python package); return the names so changed."""
    import gguf

    arch = str(field(reader, "general.architecture"))
    w = gguf.GGUFWriter(str(out), arch)
    for key, f in reader.fields.items():
        if key.startswith("GGUF.") or key == "general.architecture":
            continue
        vtype = gguf.GGUFValueType(f.types[0])
        sub = gguf.GGUFValueType(f.types[-1]) if vtype == gguf.GGUFValueType.ARRAY else None
        w.add_key_value(key, f.contents(), vtype, sub_type=sub)
    changed: list[str] = []
    for t in reader.tensors:
        kind = t.tensor_type.name
        if kind in GENAI_TYPES:
            w.add_tensor(t.name, t.data, raw_shape=t.data.shape, raw_dtype=t.tensor_type)
            continue
        x = gguf.quants.dequantize(t.data, t.tensor_type).astype(np.float16)
        w.add_tensor(t.name, x, raw_dtype=gguf.GGMLQuantizationType.F16)
        changed.append(t.name)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return changed


def build(src: Path, ir: Path, say: Progress) -> dict[str, Any]:
    """Write the IR, tokenizers and configs of GGUF `src` into the new dir `ir`; return what
    was done (for the manifest)."""
    from .gguf_ir import keep_blocks

    reader = open_gguf(src)
    arch = field(reader, "general.architecture")
    if arch not in GENAI_ARCHS:
        raise UnsupportedModelError(f"openvino-genai cannot read GGUF architecture {arch!r}")
    kinds = check_types(reader, src)
    ir.mkdir(parents=True, exist_ok=True)
    # genai writes the IR beside the file it read: give it a name inside `ir`.
    given = ir / "_source.gguf"
    substituted: list[str] = []
    if all(k in GENAI_TYPES for k in kinds):
        os.symlink(src, given)
    else:
        other = ", ".join(sorted(k for k in kinds if k not in GENAI_TYPES))
        say(f"  types openvino-genai cannot read: {other} (given to it as F16 first)")
        substituted = _copy_with_f16(reader, given)
    say(f"step 1/2: openvino-genai reads the GGUF ({arch}) and writes the IR and tokenizers")
    try:
        _genai_write_ir(given, src.name)
    finally:
        given.unlink(missing_ok=True)
    say("step 2/2: checking every weight against the GGUF's own dequantization")
    applied = keep_blocks(reader, ir / "openvino_model.xml", substituted)
    _write_configs(reader, ir, str(arch))
    hf_tokenizer = _write_hf_tokenizer(src, ir)
    return {
        "route": ROUTE_GENAI,
        "tensor_types": dict(kinds),
        "hf_tokenizer": hf_tokenizer,
        **applied,
    }


def _write_hf_tokenizer(src: Path, ir: Path) -> bool:
    """Hugging Face tokenizer files beside the IR, so that optimum-intel's path
    (OVModelForCausalLM + AutoTokenizer) works on the export too: only where the export
    extra is installed (ovchat itself reads openvino_tokenizer.xml) and for BPE (gpt2)
    tokenizers, which convert/gguf.py rebuilds from the GGUF's metadata."""
    import importlib.util

    try:
        if importlib.util.find_spec("transformers") is None:
            return False
    except ImportError:  # hidden or broken: the runtime alone
        return False
    from .gguf import build_tokenizer, read_metadata

    meta = read_metadata(src)
    if meta.get("tokenizer.ggml.model") != "gpt2":
        return False
    build_tokenizer(meta).save_pretrained(str(ir))
    return True


# genai reads and compiles in a process of its own: what it holds is gone when it ends, so
# the memory peak of a pull is the larger of its and the check's, not their sum. Nothing in
# genai's API builds the IR without compiling it too (LLMPipeline is the only door), and the
# compile is most of its time and memory; at OPENVINO_LOG_LEVEL 4 its GGUF reader says when
# each file is saved, so the process is stopped once the IR and both tokenizers are written.
_GENAI_SCRIPT = (
    "import sys, openvino_genai as g\n"
    "try:\n"
    "    g.LLMPipeline(sys.argv[1], 'CPU', enable_save_ov_model=True)\n"
    "except Exception as e:\n"
    "    lines = [ln for ln in str(e).splitlines() if ln.strip()]\n"
    "    print(lines[-1] if lines else type(e).__name__, file=sys.stderr)\n"
    "    sys.exit(3)\n"
)
_SAVED = "Save generated OpenVINO model to:"  # genai's GGUF reader, at log level 4
GENAI_FILES = ("openvino_model.xml", "openvino_tokenizer.xml", "openvino_detokenizer.xml")


def _genai_write_ir(given: Path, name: str) -> None:
    """openvino-genai's reader over `given`: the IR and tokenizers appear beside it (the
    reader's process is stopped as soon as they are all saved: its compile is not needed)."""
    import subprocess
    import sys
    import tempfile

    env = {**os.environ, "OPENVINO_LOG_LEVEL": "4"}
    with tempfile.TemporaryFile("w+") as err:
        p = subprocess.Popen([sys.executable, "-c", _GENAI_SCRIPT, str(given)], env=env,
                             stdout=subprocess.PIPE, stderr=err, text=True)  # fmt: skip
        saved: set[str] = set()
        assert p.stdout is not None
        for line in p.stdout:
            if _SAVED in line and "done" in line:
                saved.update(f for f in GENAI_FILES if f in line)
                if saved == set(GENAI_FILES):
                    p.kill()  # all written; what is left is the compile
                    break
        p.stdout.close()
        code = p.wait()
        if saved == set(GENAI_FILES) and all((given.parent / f).is_file() for f in GENAI_FILES):
            return
        err.seek(0)
        text = err.read()
    if code != 0:
        last = (text.strip().splitlines() or [f"exit status {code}"])[-1][:200]
        raise GenaiReadError(
            f"openvino-genai could not read {name}: {last}",
            "install 'ovchat[export]' to take the transformers route (ovchat export "
            "--weight-format int8), or use another file",
        )


class GenaiReadError(UnsupportedModelError):
    """openvino-genai's reader refused a file of an architecture it takes."""


def build_or_fallback(src: Path, ir: Path, say: Progress) -> dict[str, Any]:
    """`build`, or, when openvino-genai's reader refuses the file and the export extra is
    installed, {"route": transformers} with `ir` removed: the caller takes that route."""
    import importlib.util
    import shutil

    try:
        return build(src, ir, say)
    except GenaiReadError as e:
        if importlib.util.find_spec("optimum") is None:
            raise
        say(f"{e.message}: taking the transformers route instead")
        shutil.rmtree(ir, ignore_errors=True)
        return {"route": ROUTE_TRANSFORMERS}


def _write_configs(reader: Any, ir: Path, arch: str) -> None:
    """config.json (context window, special ids) and generation_config.json, from metadata:
    genai's reader writes only the IR and the tokenizers."""

    def meta(key: str) -> Any:
        return field(reader, key)

    ctx = meta(f"{arch}.context_length")
    cfg = {
        "model_type": arch,
        "max_position_embeddings": int(ctx) if ctx else None,
        "hidden_size": meta(f"{arch}.embedding_length"),
        "num_hidden_layers": meta(f"{arch}.block_count"),
        "num_attention_heads": meta(f"{arch}.attention.head_count"),
        "num_key_value_heads": meta(f"{arch}.attention.head_count_kv"),
        "bos_token_id": meta("tokenizer.ggml.bos_token_id"),
        "eos_token_id": meta("tokenizer.ggml.eos_token_id"),
        "pad_token_id": meta("tokenizer.ggml.padding_token_id"),
        "vocab_size": len(meta("tokenizer.ggml.tokens") or []) or None,
    }
    cfg = {k: (int(v) if isinstance(v, (int, np.integer)) else v) for k, v in cfg.items()}
    (ir / "config.json").write_text(json.dumps({k: v for k, v in cfg.items() if v is not None},
                                               indent=2) + "\n")  # fmt: skip
    gen = {
        k: cfg[k] for k in ("bos_token_id", "eos_token_id", "pad_token_id") if cfg[k] is not None
    }
    (ir / "generation_config.json").write_text(json.dumps(gen, indent=2) + "\n")
