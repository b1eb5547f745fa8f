"""`ovchat bench --quick --json` on the tiny model: every field present, sane and consistent."""

from __future__ import annotations

import json
import math

import pytest
from conftest import run_cli

from ovchat.bench.report import markdown_table
from ovchat.bench.runner import METRICS, QUICK_ENGINES, prompt_text

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def quick_run(tiny_llama, tmp_path_factory):
    out = tmp_path_factory.mktemp("bench")
    chart = out / "chart.png"
    r = run_cli("bench", "--quick", "-m", str(tiny_llama), "--json", "--chart", str(chart))
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout), chart, r.stderr


def test_every_engine_every_field(quick_run, tiny_llama_hf):
    data, _, stderr = quick_run
    assert [e["engine"] for e in data["engines"]] == list(QUICK_ENGINES)
    assert data["prompts"]["short"] > 0 and data["prompts"]["long"] > data["prompts"]["short"]
    for e in data["engines"]:
        assert e["ok"], e["error"]
        assert set(e["metrics"]) == {k for k, *_ in METRICS}
        for key, m in e["metrics"].items():
            assert all(math.isfinite(v) and v > 0 for v in m["values"]), (e["engine"], key, m)
            assert m["min"] <= m["median"] <= m["max"]
        reps = data["settings"]["reps"]
        assert len(e["metrics"]["ttft_short_ms"]["values"]) == reps
        # Every engine decoded exactly the same count, on the same prompts.
        assert e["info"]["generated_tokens"] == [data["settings"]["new_tokens"]] * reps
        assert e["info"]["prompt_tokens"] == data["prompts"]
        long_tokens = data["prompts"]["long"]
        ttfts, tpss = e["metrics"]["ttft_long_ms"]["values"], e["metrics"]["prefill_tps"]["values"]
        for ttft, tps in zip(ttfts, tpss, strict=True):
            assert math.isclose(tps, long_tokens / (ttft / 1000), rel_tol=1e-9)
    # A "progress" line per engine and phase on stderr.
    for name in QUICK_ENGINES:
        assert f"{name}: loading cold" in stderr
    assert data["machine"]["cpu"] and data["versions"]["openvino"]


def test_ratios_match_raw_figures(quick_run):
    data, _, _ = quick_run
    base = next(e for e in data["engines"] if e["engine"] == "ovchat")
    assert all(math.isclose(v, 1.0) for v in base["ratios"].values())
    for e in data["engines"]:
        assert set(e["ratios"]) == {k for k, *_ in METRICS}
        for key, ratio in e["ratios"].items():
            want = e["metrics"][key]["median"] / base["metrics"][key]["median"]
            assert math.isclose(ratio, want, rel_tol=1e-9)
    sizes = {e["engine"]: e["metrics"]["size_mb"]["median"] for e in data["engines"]}
    assert sizes["ovchat"] == sizes["optimum"] < sizes["torch-fp32"]  # same IR; fp32 is larger


def test_chart_is_png(quick_run):
    _, chart, _ = quick_run
    blob = chart.read_bytes()
    assert blob.startswith(PNG_MAGIC) and len(blob) > 5000


def test_markdown_and_prompt_length(quick_run, tiny_llama):
    from transformers import AutoTokenizer

    from ovchat.bench.runner import BenchResult, EngineResult

    data, _, _ = quick_run
    engines = [EngineResult(**e) for e in data.pop("engines")]
    md = markdown_table(BenchResult(**data, engines=engines))
    assert md.count("\n") == 1 + len(engines) and "| ovchat |" in md
    tok = AutoTokenizer.from_pretrained(str(tiny_llama))
    text = prompt_text(tok, 50)
    assert 40 <= len(tok(text, add_special_tokens=False)["input_ids"]) <= 50


def test_unknown_engine_is_one_line(tiny_llama):
    r = run_cli("bench", "-m", str(tiny_llama), "--engines", "ovchat,vllm")
    assert r.returncode == 2 and r.stderr.startswith("ovchat bench: error: unknown engine")
