"""The tokenizer rebuilt from GGUF metadata, token for token against openvino-genai's own
GGUF reader (an independent C++ implementation), and the GGUF → HF conversion."""

from __future__ import annotations

import pytest

from ovchat.convert.gguf import build_tokenizer, read_metadata
from ovchat.errors import InvalidModelError, UnsupportedModelError

TEXTS = [
    "Hello world",
    "can you introduce yourself?",
    "  two  spaces\n\nand   three\n\n\nnewlines",
    "\t\ttabs and trailing spaces   ",
    "   leading",
    "café naïve façade Ünïcödé résumé",
    "日本語のテキストと中文",
    "emoji 😀👍🏽 and flags 🇫🇷",
    "def f(x):\n    return x + 1  # comment\n",
    "numbers 1234567 3.14159 2026-11-21",
    "it's I'll we've they're",
    "<|im_start|>user\nhi<|im_end|>\n",
    "",
]


@pytest.fixture(scope="module")
def meta(smollm2_gguf):
    return read_metadata(smollm2_gguf)


@pytest.fixture(scope="module")
def reference(smollm2_gguf):
    import openvino_genai as ov_genai

    return ov_genai.LLMPipeline(str(smollm2_gguf), "CPU").get_tokenizer()


@pytest.mark.parametrize("text", TEXTS)
def test_tokens_match_independent_reader(meta, reference, text):
    ours = build_tokenizer(meta)
    got = ours.encode(text, add_special_tokens=False)
    want = [int(i) for i in reference.encode(text, add_special_tokens=False).input_ids.data[0]]
    assert got == want
    assert ours.decode(got) == text


def test_special_tokens_right(meta):
    tok = build_tokenizer(meta)
    assert tok.eos_token == "<|im_end|>"
    assert tok.bos_token == "<|im_start|>"
    # spaces stay spaces (transformers' own GGUF import turns them into <|endoftext|>)
    assert "<|endoftext|>" not in tok.decode(tok.encode("a b c", add_special_tokens=False))
    assert tok.chat_template and "<|im_start|>" in tok.chat_template


def test_transformers_import_is_wrong_so_ours_is_needed(smollm2_gguf, meta):
    """transformers 5.5 gets the special tokens of this GGUF wrong (eos = <|im_start|>), which
    makes a chat never end its turn. If this starts failing, the workaround may go."""
    from transformers import AutoTokenizer

    theirs = AutoTokenizer.from_pretrained(str(smollm2_gguf.parent), gguf_file=smollm2_gguf.name)
    assert meta["tokenizer.ggml.eos_token_id"] == 2
    assert theirs.eos_token_id != 2
    assert build_tokenizer(meta).eos_token_id == 2


def test_unknown_pretokenizer_is_refused(meta):
    with pytest.raises(UnsupportedModelError, match="pre-tokenizer"):
        build_tokenizer({**meta, "tokenizer.ggml.pre": "made-up"})


def test_damaged_gguf_is_a_clear_error(tmp_path):
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"GGUF" + b"\x00" * 64)
    with pytest.raises(InvalidModelError, match="not a readable GGUF"):
        read_metadata(bad)
