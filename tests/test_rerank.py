"""Rerankers: cross-encoders exported for text-classification, run by openvino-genai's
TextRerankPipeline, checked against PyTorch; `ovchat rerank`, `Model.rerank`, the library's
kind, and what each kind refuses to do."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import run_main

import ovchat
from ovchat.engine.reranker import Reranker
from ovchat.errors import ContextLengthError, InvalidModelError, OptionError

F32 = {"INFERENCE_PRECISION_HINT": "f32"}
QUERY = "What does the import statement do?"
DOCS = [
    "The import statement finds a module, loads and initializes it.",
    "hello world",
    "A class definition is an executable statement.",
    "Modules and packages are found by the import system, then loaded once.",
    "Exceptions are raised with the raise statement.",
]


@pytest.fixture(scope="module")
def reranker(tiny_reranker):
    return Reranker(tiny_reranker, properties=F32)


def torch_scores(hf_dir, query, docs):
    """The reference: transformers on PyTorch, each pair alone, sigmoid of the one logit."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(hf_dir))
    model = AutoModelForSequenceClassification.from_pretrained(str(hf_dir)).eval()
    out = []
    for d in docs:
        with torch.no_grad():
            logit = model(**tok(query, d, return_tensors="pt")).logits[0, 0]
        out.append(float(torch.sigmoid(logit)))
    return np.array(out)


def test_scores_and_order_match_pytorch(reranker, tiny_reranker_hf):
    ranking = reranker.rerank(QUERY, DOCS)
    want = torch_scores(tiny_reranker_hf, QUERY, DOCS)
    got = np.zeros(len(DOCS))
    for r in ranking.results:
        got[r.index] = r.score
    assert sorted(r.index for r in ranking.results) == list(range(len(DOCS)))
    assert np.allclose(got, want, atol=1e-4), (got, want)
    assert [r.index for r in ranking.results] == list(np.argsort(-want, kind="stable"))
    # The check can fail: the scores spread out, so another order would show.
    assert want.max() - want.min() > 0.05, want
    assert reranker.rerank(QUERY, DOCS, top_n=2).results == ranking.results[:2]


def test_more_documents_than_one_batch(reranker, tiny_reranker_hf):
    docs = [f"{d} ({i})" for i, d in enumerate(DOCS * 8)]  # 40: two pipeline calls
    got = {r.index: r.score for r in reranker.rerank(QUERY, docs).results}
    want = torch_scores(tiny_reranker_hf, QUERY, docs)
    assert np.allclose([got[i] for i in range(len(docs))], want, atol=1e-4)


def test_token_counts_and_checks(reranker, tiny_reranker_hf):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(tiny_reranker_hf))
    want = sum(len(tok(QUERY, d)["input_ids"]) for d in DOCS)
    assert reranker.rerank(QUERY, DOCS).tokens == want
    for call, param in (
        (lambda: reranker.rerank(QUERY, []), "documents"),
        (lambda: reranker.rerank(QUERY, ["ok", ""]), "documents"),
        (lambda: reranker.rerank("", DOCS), "query"),
        (lambda: reranker.rerank(QUERY, DOCS, top_n=0), "top_n"),
    ):
        with pytest.raises(OptionError) as e:
            call()
        assert e.value.param == param
    with pytest.raises(ContextLengthError, match="more than this model's 256"):
        reranker.rerank(QUERY, ["ok", "word " * 400])


def test_load_gives_a_model_that_reranks_and_refuses_the_rest(tiny_reranker, tiny_bert):
    model = ovchat.load(str(tiny_reranker), **F32)
    assert isinstance(model, ovchat.RerankModel) and not isinstance(model, ovchat.Model)
    results = model.rerank(QUERY, DOCS, top_n=3)
    assert len(results) == 3 and results[0].score >= results[1].score >= results[2].score
    for call in (lambda: model.generate("hi"), lambda: model.chat(), lambda: model.embed("x")):
        with pytest.raises(InvalidModelError, match="rerank model"):
            call()
    with pytest.raises(InvalidModelError, match="rerank model"):
        ovchat.Engine(tiny_reranker)
    with pytest.raises(InvalidModelError, match="embedding model: it does not rerank"):
        ovchat.load(str(tiny_bert)).rerank(QUERY, DOCS)
    with pytest.raises(InvalidModelError, match="not a reranker"):
        Reranker(tiny_bert)


def test_cli_rerank_json_and_table(tiny_reranker, reranker, capsys):
    r = run_main(capsys, "rerank", "-m", str(tiny_reranker), QUERY, *DOCS, "--json",
                 "-p", "INFERENCE_PRECISION_HINT=f32")  # fmt: skip
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    want = reranker.rerank(QUERY, DOCS).results
    assert [d["index"] for d in out["results"]] == [w.index for w in want]
    # another process, its own compile: the same tolerance as against PyTorch
    assert np.allclose(
        [d["relevance_score"] for d in out["results"]], [w.score for w in want], atol=1e-4
    )
    assert [d["document"] for d in out["results"]] == [DOCS[w.index] for w in want]
    r = run_main(capsys, "rerank", "-m", str(tiny_reranker), QUERY, *DOCS, "--top-n", "2")
    lines = r.stdout.splitlines()
    assert r.returncode == 0 and len(lines) == 2 and f"[{want[0].index}]" in lines[0], r
    r = run_main(capsys, "rerank", QUERY, "doc")
    assert r.returncode == 2 and "name a reranker" in r.stderr
    r = run_main(capsys, "rerank", "-m", str(tiny_reranker), QUERY, "x", "--top-n", "0")
    assert r.returncode == 2 and "--top-n" in r.stderr and "Traceback" not in r.stderr


def test_pulled_into_the_library_as_its_own_kind(tiny_reranker_hf, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("OVCHAT_HOME", str(tmp_path))
    r = run_main(capsys, "pull", str(tiny_reranker_hf), "tiny-reranker", "--task",
                 "text-classification", "--weight-format", "fp32")  # fmt: skip
    assert r.returncode == 0, r.stderr
    r = run_main(capsys, "list")
    row = next(ln for ln in r.stdout.splitlines() if ln.startswith("tiny-reranker"))
    assert " rerank " in f" {row} ", row
    r = run_main(capsys, "show", "tiny-reranker")
    assert "tiny-reranker" in r.stdout and ", rerank" in r.stdout, r.stdout
    model = ovchat.load("tiny-reranker", **F32)
    assert (
        model.rerank(QUERY, DOCS)[0].index
        == Reranker(model.path, properties=F32).rerank(QUERY, DOCS).results[0].index
    )
