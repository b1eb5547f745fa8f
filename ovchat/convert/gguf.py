"""GGUF → Hugging Face model dir: weights through transformers, tokenizer rebuilt from metadata.

transformers (5.5) dequantizes GGUF weights correctly but converts GPT-2-style BPE tokenizers
wrongly (SmolLM2: spaces become <|endoftext|>, eos becomes <|im_start|>). The vocab, merges
and token types stored in the GGUF are right, so for BPE we build the tokenizer from them
with the `tokenizers` library. SentencePiece-style GGUFs keep transformers' conversion.
"""

from __future__ import annotations

import contextlib
import functools
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from ..errors import InvalidModelError, UnsupportedModelError

# Pre-tokenizer split patterns by `tokenizer.ggml.pre`, as llama.cpp names them.
GPT2_PATTERN = r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"
LLAMA3_PATTERN = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}"
    r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)
QWEN2_PATTERN = (
    r"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}"
    r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)
# name -> (split digits one by one first?, main pattern)
PRE_TOKENIZERS: dict[str, tuple[bool, str]] = {
    "default": (False, GPT2_PATTERN),
    "gpt-2": (False, GPT2_PATTERN),
    "gpt2": (False, GPT2_PATTERN),
    "smollm": (True, GPT2_PATTERN),
    "starcoder": (True, GPT2_PATTERN),
    "refact": (True, GPT2_PATTERN),
    "llama-bpe": (False, LLAMA3_PATTERN),
    "llama3": (False, LLAMA3_PATTERN),
    "qwen2": (False, QWEN2_PATTERN),
}
TOKEN_TYPE_CONTROL = 3
TOKEN_TYPE_USER_DEFINED = 4


def read_metadata(path: str | Path) -> dict[str, Any]:
    """All key/value metadata of a GGUF file (arrays as lists)."""
    from gguf import GGUFReader

    p = Path(path)
    if not p.is_file():
        raise InvalidModelError(f"GGUF file {p} does not exist", "check the path")
    try:
        reader = GGUFReader(str(p))
    except Exception as e:  # gguf raises ValueError/struct errors on damaged files
        raise InvalidModelError(f"{p} is not a readable GGUF file: {e}", "re-download it") from e
    meta: dict[str, Any] = {}
    for key, fld in reader.fields.items():
        try:
            meta[key] = fld.contents()
        except Exception:
            continue
    return meta


def build_tokenizer(meta: dict[str, Any]) -> Any:
    """A transformers fast tokenizer from GGUF tokenizer metadata (BPE models)."""
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, pre_tokenizers
    from tokenizers.processors import TemplateProcessing
    from transformers import PreTrainedTokenizerFast

    kind = meta.get("tokenizer.ggml.model")
    if kind != "gpt2":
        raise UnsupportedModelError(f"tokenizer type {kind!r} is not BPE")
    pre = str(meta.get("tokenizer.ggml.pre", "default"))
    if pre not in PRE_TOKENIZERS:
        raise UnsupportedModelError(
            f"GGUF pre-tokenizer {pre!r} is not known to ovchat",
            f"known: {', '.join(sorted(PRE_TOKENIZERS))}; "
            "export from the Hugging Face model instead",
        )
    tokens: list[str] = list(meta["tokenizer.ggml.tokens"])
    types: list[int] = list(meta.get("tokenizer.ggml.token_type", [1] * len(tokens)))
    merges = [tuple(m.split(" ", 1)) for m in meta.get("tokenizer.ggml.merges", [])]
    vocab = {t: i for i, t in enumerate(tokens)}
    tok = Tokenizer(models.BPE(vocab=vocab, merges=merges, fuse_unk=False, byte_fallback=False))
    digits, pattern = PRE_TOKENIZERS[pre]
    steps: list[Any] = []
    if digits:
        steps.append(pre_tokenizers.Digits(individual_digits=True))
    steps.append(pre_tokenizers.Split(Regex(pattern), behavior="isolated", invert=False))
    steps.append(pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False))
    tok.pre_tokenizer = pre_tokenizers.Sequence(steps)
    tok.decoder = decoders.ByteLevel()
    specials = [
        AddedToken(t, special=(ty == TOKEN_TYPE_CONTROL), normalized=False)
        for t, ty in zip(tokens, types, strict=False)
        if ty in (TOKEN_TYPE_CONTROL, TOKEN_TYPE_USER_DEFINED)
    ]
    tok.add_tokens(specials)

    def token(key: str) -> str | None:
        i = meta.get(f"tokenizer.ggml.{key}_token_id")
        return tokens[int(i)] if isinstance(i, int) and 0 <= i < len(tokens) else None

    bos, eos = token("bos"), token("eos")
    if meta.get("tokenizer.ggml.add_bos_token") and bos is not None:
        tok.post_processor = TemplateProcessing(
            single=f"{bos} $A", pair=f"{bos} $A {bos} $B", special_tokens=[(bos, vocab[bos])]
        )
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token=bos,
        eos_token=eos,
        unk_token=token("unknown"),
        pad_token=token("padding"),
        chat_template=meta.get("tokenizer.chat_template"),
        clean_up_tokenization_spaces=False,
    )


@contextlib.contextmanager
def _quiet_gguf_bar() -> Iterator[None]:
    """transformers' GGUF import draws a tqdm bar of its own, which its disable_progress_bar()
    does not reach; ovchat prints its own progress lines instead."""
    try:
        import transformers.modeling_gguf_pytorch_utils as gguf_utils
    except ImportError:
        yield
        return
    bar = getattr(gguf_utils, "tqdm", None)
    if bar is None:
        yield
        return
    gguf_utils.tqdm = functools.partial(bar, disable=True)
    try:
        yield
    finally:
        gguf_utils.tqdm = bar


def gguf_to_hf(
    gguf_path: str | Path, out_dir: str | Path, progress: Callable[[str], None] = lambda s: None
) -> Path:
    """Write a Hugging Face model dir (fp32 safetensors, config, tokenizer) from a GGUF file."""
    import torch
    import transformers
    from transformers import AutoModelForCausalLM, AutoTokenizer

    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()
    src = Path(gguf_path).expanduser().resolve()
    out = Path(out_dir)
    meta = read_metadata(src)
    arch = meta.get("general.architecture", "?")
    progress(f"reading GGUF ({arch}, {src.stat().st_size / 2**20:.0f} MiB)")
    try:
        with _quiet_gguf_bar():
            model = AutoModelForCausalLM.from_pretrained(
                str(src.parent), gguf_file=src.name, dtype=torch.float32
            )
    except (ValueError, KeyError, NotImplementedError) as e:
        raise UnsupportedModelError(
            f"transformers cannot load GGUF architecture {arch!r}: {str(e).splitlines()[0][:200]}",
            "export from the Hugging Face model instead",
        ) from e
    if meta.get("tokenizer.ggml.model") == "gpt2":
        tokenizer = build_tokenizer(meta)
    else:  # SentencePiece: transformers' conversion is right for these
        tokenizer = AutoTokenizer.from_pretrained(str(src.parent), gguf_file=src.name)
    # transformers' GGUF import may get the special ids wrong too: take them from the GGUF.
    for key in ("bos", "eos", "pad"):
        meta_key = "padding" if key == "pad" else key
        i = meta.get(f"tokenizer.ggml.{meta_key}_token_id")
        if isinstance(i, int):
            setattr(model.config, f"{key}_token_id", i)
            if model.generation_config is not None:
                setattr(model.generation_config, f"{key}_token_id", i)
    progress("writing the Hugging Face model")
    with tempfile.TemporaryDirectory(dir=out.parent if out.parent.exists() else None) as tmp:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        if out.exists():
            shutil.rmtree(out)
        shutil.copytree(tmp, out)
    return out


# GGUF architecture → the model type transformers' GGUF import gives it (where they differ).
HF_MODEL_TYPES = {"gemma3": "gemma3_text", "command-r": "cohere", "qwen2moe": "qwen2_moe",
                  "qwen3moe": "qwen3_moe"}  # fmt: skip


def check_optimum_exports(arch: str, name: str) -> None:
    """Refuse at once a GGUF whose architecture optimum-intel will not export with the
    installed transformers (it would refuse only after the whole GGUF → HF conversion, minutes
    and gigabytes later): the same version bounds optimum-intel checks, read from its config."""
    from importlib.metadata import version

    import optimum.exporters.openvino  # noqa: F401 - registers the OpenVINO configs
    from optimum.exporters.tasks import TasksManager
    from packaging.version import Version

    model_type = HF_MODEL_TYPES.get(arch, arch)
    have = version("transformers")
    try:
        ctor = TasksManager.get_exporter_config_constructor(
            exporter="openvino", model_type=model_type, task="text-generation-with-past",
            library_name="transformers",
        )  # fmt: skip
    except (KeyError, ValueError) as e:
        raise UnsupportedModelError(
            f"{name} is a GGUF of architecture {arch!r}, which neither openvino-genai's reader "
            "(llama, qwen2, qwen3) nor optimum-intel's exporter takes",
            "use a GGUF of a llama, qwen2 or qwen3 model",
        ) from e
    cls = getattr(ctor, "func", ctor)
    low, high = (getattr(cls, k, None) for k in ("MIN_TRANSFORMERS_VERSION",
                                                 "MAX_TRANSFORMERS_VERSION"))  # fmt: skip
    opt = version("optimum-intel")
    if high is not None and Version(have) > Version(str(high)):
        bound = str(high).replace(".99", ".*")
        raise UnsupportedModelError(
            f"{name} is a GGUF of architecture {arch!r}: openvino-genai's reader does not take "
            f"it (llama, qwen2, qwen3), and optimum-intel {opt} exports {model_type} only with "
            f"transformers {bound} or older (installed: {have})",
            f"export it where 'transformers<={bound}' is installed, or use a GGUF of a llama, "
            "qwen2 or qwen3 model",
        )
    if low is not None and Version(have) < Version(str(low)):
        raise UnsupportedModelError(
            f"{name} is a GGUF of architecture {arch!r}: optimum-intel {opt} exports "
            f"{model_type} only with transformers {low} or newer (installed: {have})",
            f"pip install 'transformers>={low}'",
        )
