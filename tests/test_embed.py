"""Embedding models: exported for feature-extraction, run by openvino-genai's
TextEmbeddingPipeline, checked against PyTorch; `ovchat embed`, `Model.embed`, and what a
chat model and an embedding model each refuse to do."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import run_main

import ovchat
from ovchat.convert.embedding import embedding_settings
from ovchat.convert.recipe import Recipe
from ovchat.engine.embedder import Embedder
from ovchat.errors import ContextLengthError, InvalidModelError, OptionError

F32 = {"INFERENCE_PRECISION_HINT": "f32"}
TEXTS = [
    "What does the class statement do?",
    "hello world",
    "The import system finds modules and packages, then loads them once per interpreter.",
]


@pytest.fixture(scope="module")
def bert_fp32(tiny_bert):
    return tiny_bert


@pytest.fixture(scope="module")
def embedder(bert_fp32):
    return Embedder(bert_fp32, properties=F32)


def torch_vectors(hf_dir, texts, pooling):
    """The reference: transformers on PyTorch, pooled by hand, L2-normalised."""
    import torch
    from transformers import AutoModel, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(hf_dir))
    model = AutoModel.from_pretrained(str(hf_dir)).eval()
    out = []
    for text in texts:  # one at a time: no padding in the reference
        enc = tok(text, return_tensors="pt")
        with torch.no_grad():
            h = model(**enc).last_hidden_state[0]
        v = {"mean": h.mean(0), "cls": h[0], "last_token": h[-1]}[pooling]
        out.append(torch.nn.functional.normalize(v, dim=-1).numpy())
    return np.array(out)


def test_manifest_records_pooling_read_from_the_model(bert_fp32):
    emb = json.loads((bert_fp32 / "ovchat.json").read_text())["embedding"]
    assert (emb["pooling"], emb["normalize"], emb["guessed"]) == ("mean", True, [])
    assert emb["max_length"] == 256 and emb["folded_position_ids"] is False


def test_settings_flags_win_and_guesses_are_said(tiny_bert_hf, tmp_path):
    s = embedding_settings(str(tiny_bert_hf), {"pooling": "cls", "normalize": False})
    assert (s["pooling"], s["normalize"], s["guessed"]) == ("cls", False, [])
    bare = tmp_path / "bare"  # a plain transformers encoder: no sentence-transformers files
    bare.mkdir()
    (bare / "config.json").write_text((tiny_bert_hf / "config.json").read_text())
    s = embedding_settings(str(bare))
    assert (s["pooling"], s["normalize"]) == ("mean", True)
    assert s["guessed"] == ["normalize", "pooling"]
    with pytest.raises(OptionError, match="pooling"):
        embedding_settings(str(bare), {"pooling": "max"})


def test_vectors_match_pytorch(embedder, tiny_bert_hf):
    got = np.array(embedder.embed(TEXTS).vectors)  # one batch: padded, as a server sends it
    want = torch_vectors(tiny_bert_hf, TEXTS, "mean")
    cos = (got * want).sum(1)
    assert (cos > 0.999).all(), cos
    assert np.allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-4)
    # The check can fail: other pooling is measurably different, and texts differ.
    assert ((got * torch_vectors(tiny_bert_hf, TEXTS, "cls")).sum(1) < 0.99).all()
    assert (got @ got.T)[~np.eye(len(TEXTS), dtype=bool)].max() < 0.99


def hf_counts(hf_dir, texts):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(hf_dir))
    return [len(tok(t)["input_ids"]) for t in texts]  # [CLS] ... [SEP] included


def test_token_counts_and_window(embedder, tiny_bert_hf):
    result = embedder.embed(TEXTS)
    assert result.tokens == hf_counts(tiny_bert_hf, TEXTS)
    assert result.total_tokens == sum(result.tokens)
    with pytest.raises(ContextLengthError, match="more than this model's 256"):
        embedder.embed(["word " * 400])
    with pytest.raises(OptionError, match="empty"):
        embedder.embed(["ok", ""])


def test_dimensions_only_where_the_model_allows(embedder):
    assert len(embedder.embed(["x"], dimensions=64).vectors[0]) == 64  # its own size: fine
    with pytest.raises(OptionError, match="Matryoshka") as e:
        embedder.embed(["x"], dimensions=32)
    assert e.value.param == "dimensions"
    embedder.settings["matryoshka"] = True  # as `pull --matryoshka` records it
    try:
        short = embedder.embed(["x"], dimensions=32).vectors[0]
    finally:
        embedder.settings.pop("matryoshka")
    full = embedder.embed(["x"]).vectors[0]
    assert len(short) == 32 and abs(np.linalg.norm(short) - 1) < 1e-5
    assert np.allclose(np.array(short), np.array(full[:32]) / np.linalg.norm(full[:32]))


def test_load_gives_a_model_that_embeds_and_refuses_to_generate(bert_fp32, tiny_llama):
    model = ovchat.load(str(bert_fp32), **F32)
    assert isinstance(model, ovchat.EmbeddingModel) and not isinstance(model, ovchat.Model)
    assert model.dimensions == 64 and not hasattr(model, "engine")
    one = model.embed(TEXTS[0])
    assert len(one) == 64 and isinstance(one[0], float)
    assert np.allclose(model.embed(TEXTS)[0], one, atol=1e-5)
    for method in (model.generate, model.stream, model.complete, model.chat):
        with pytest.raises(InvalidModelError, match="embedding model"):
            method("hi")
    with pytest.raises(InvalidModelError, match="embedding model"):
        ovchat.Engine(bert_fp32)
    with pytest.raises(InvalidModelError, match="chat model"):
        ovchat.load(str(tiny_llama)).embed("hi")


def test_cli_embed_json_and_summary(bert_fp32, embedder, tiny_bert_hf, capsys):
    r = run_main(capsys, "embed", "-m", str(bert_fp32), *TEXTS[:2], "--json", "-p",
                 "INFERENCE_PRECISION_HINT=f32")  # fmt: skip
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    counts = hf_counts(tiny_bert_hf, TEXTS[:2])
    assert out["dimensions"] == 64 and [d["tokens"] for d in out["data"]] == counts
    assert out["usage"] == {"prompt_tokens": sum(counts), "total_tokens": sum(counts)}
    want = embedder.embed(TEXTS[:2]).vectors
    assert np.allclose([d["embedding"] for d in out["data"]], want, atol=1e-5)
    r = run_main(capsys, "embed", "-m", str(bert_fp32), "hello world")
    assert r.returncode == 0 and f"64 dims, norm 1.000, {counts[1]} tokens" in r.stdout, r
    r = run_main(capsys, "embed", "hello")
    assert r.returncode == 2 and "name an embedding model" in r.stderr
    r = run_main(capsys, "embed", "-m", str(bert_fp32), "x", "--dimensions", "8")
    assert r.returncode == 2 and "--dimensions" in r.stderr and "Traceback" not in r.stderr


def test_decoder_embedding_model_last_token(tiny_llama_hf, tiny_root):
    """A decoder (Llama) exported for feature-extraction: last-token pooling, and the
    position_ids genai does not feed are computed in the graph."""
    from ovchat.convert.export import export

    recipe = Recipe(weight_format="fp32", task="feature-extraction")
    out = export(str(tiny_llama_hf), tiny_root / "llama-emb", recipe, progress=lambda s: None)
    emb = json.loads((out / "ovchat.json").read_text())["embedding"]
    assert emb["pooling"] == "last_token" and emb["folded_position_ids"] is True
    got = np.array(Embedder(out, properties=F32).embed(TEXTS).vectors)  # left-padded batch
    cos = (got * torch_vectors(tiny_llama_hf, TEXTS, "last_token")).sum(1)
    assert (cos > 0.999).all(), cos
