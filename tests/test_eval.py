"""`ovchat eval`: an fp32 export matches its own PyTorch reference; int4 scores worse."""

from __future__ import annotations

import json
import math

from conftest import run_cli

from ovchat.evals.corpus import corpus_text
from ovchat.evals.fidelity import evaluate

MAX_TOKENS = 600  # tiny models: a few windows are enough
WINDOW = 128


def test_corpus_is_offline_english_and_fixed():
    a, b = corpus_text(), corpus_text()
    assert a == b and len(a) > 100_000
    assert sum(c.isascii() for c in a[:10_000]) / 10_000 > 0.99


def test_fp32_export_matches_its_reference(tiny_llama_hf, tiny_export):
    fp32 = tiny_export(tiny_llama_hf, "fp32")
    r = evaluate(fp32, max_tokens=MAX_TOKENS, window=WINDOW, progress=lambda s: None)
    assert r.reference == str(tiny_llama_hf)  # found through the manifest
    (row,) = r.rows
    assert row["tokens"] == r.tokens > 400
    assert row["top1_agreement"] == 1.0
    assert 0 <= row["mean_kl"] < 1e-6
    assert math.isclose(row["perplexity"], r.reference_perplexity, rel_tol=1e-4)
    assert row["size_mb"] > 0


def test_int4_scores_worse_via_cli(tiny_llama_hf, tiny_export, tmp_path):
    int4 = tiny_export(tiny_llama_hf, "int4")
    fp32 = tiny_export(tiny_llama_hf, "fp32")
    out = tmp_path / "eval.json"
    r = run_cli(
        "eval", str(int4), "--max-tokens", str(MAX_TOKENS), "--window", str(WINDOW),
        "--json", str(out), "--reference", str(tiny_llama_hf), "--answers", "none",
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert "perplexity" in r.stdout and "only the weights differ" in r.stdout
    data = json.loads(out.read_text())
    (row,) = data["rows"]
    assert row["recipe"]["weight_format"] == "int4"
    ref = evaluate(fp32, max_tokens=MAX_TOKENS, window=WINDOW, progress=lambda s: None)
    assert row["tokens"] == ref.tokens
    assert row["mean_kl"] > max(1e-4, 100 * ref.rows[0]["mean_kl"])
    assert row["top1_agreement"] <= 1.0 and row["top1_agreement"] < ref.rows[0]["top1_agreement"]
    assert row["size_mb"] < ref.rows[0]["size_mb"]
    assert math.isclose(data["reference_perplexity"], ref.reference_perplexity, rel_tol=1e-9)


def test_missing_reference_is_one_line(tmp_path, tiny_llama):
    r = run_cli("eval", str(tiny_llama), "--reference", str(tmp_path))
    assert r.returncode == 2
    assert r.stderr.startswith("ovchat eval: error:") and "--reference" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
