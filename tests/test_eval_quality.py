"""`ovchat eval`'s answers: the shipped prompts, the loop measure, the three backends."""

from __future__ import annotations

import json

import pytest
from conftest import run_main

from ovchat.evals.prompts import PROMPTS
from ovchat.evals.quality import LOOP_REP4, Answer, rep_ngram, select_prompts
from ovchat.verbs.eval import parse_sampling


def test_shipped_prompts_are_varied_and_not_calibration_text():
    from ovchat.convert.calib import CALIB_PROMPTS

    assert len(PROMPTS) >= 20 and len({p[0] for p in PROMPTS}) == len(PROMPTS)
    assert {"intro", "poem", "code", "summary", "list"} <= {p[1] for p in PROMPTS}
    assert not {p[2] for p in PROMPTS} & set(CALIB_PROMPTS)


def test_loop_measure():
    loop = "I am a humble apothecary and I love my work. " * 12
    assert rep_ngram(loop) > 0.8 and Answer("a", "k", 0, loop, 100, False).looped
    prose = " ".join(f"word{i}" for i in range(60))
    assert rep_ngram(prose) == 0.0 and not Answer("a", "k", 0, prose, 60, True).looped
    assert rep_ngram("too short to judge") == 0.0
    listing = "\n".join(f"{i}. Eat more fruit number {i} every day" for i in range(1, 6))
    assert rep_ngram(listing) < LOOP_REP4  # a list's shared words are not a loop


def test_sampling_flags_are_checked(capsys, tiny_llama):
    assert parse_sampling(["frequency-penalty=0.5", "top_k=40"]) == {
        "frequency_penalty": 0.5, "top_k": 40}  # fmt: skip
    for bad in ("nope=1", "temperature", "temperature=warm"):
        r = run_main(capsys, "eval", str(tiny_llama), "--no-fidelity", "--set", bad)
        assert r.returncode == 2 and "--set" in r.stderr, r.stderr
        assert len(r.stderr.strip().splitlines()) == 1
    r = run_main(capsys, "eval", str(tiny_llama), "--no-fidelity", "--prompt-ids", "nope")
    assert r.returncode == 2 and "--prompt-ids" in r.stderr and "intro" in r.stderr


def test_answers_of_an_export_with_sampling_on_top(capsys, tiny_llama):
    r = run_main(capsys, "eval", str(tiny_llama), "--no-fidelity", "--prompts", "3",
                 "--seeds", "2", "--answer-tokens", "12", "--set", "frequency_penalty=0.5",
                 "--json", "-", "--markdown")  # fmt: skip
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    (s,) = data["answers"]
    assert s["backend"] == "export" and s["answers"] == 6 and s["seeds"] == [0, 1]
    assert s["sampling"]["frequency_penalty"] == 0.5
    assert [a["prompt_id"] for a in s["items"]] == [p[0] for p in select_prompts(3)] * 2
    assert all(0 <= a["tokens"] <= 12 for a in s["items"])
    # a cut answer used the whole budget; the rates are those of the items
    assert all(a["ended"] or a["tokens"] == 12 for a in s["items"])
    assert s["end_rate"] == sum(a["ended"] for a in s["items"]) / 6
    assert "| this export" in r.stderr and "looped" in r.stderr


def test_greedy_answers_same_on_every_backend(tiny_llama_hf, tiny_export, capsys):
    """fp32 export and its PyTorch reference: greedy, token for token the same answers."""
    fp32 = tiny_export(tiny_llama_hf, "fp32")
    r = run_main(capsys, "eval", str(fp32), "--no-fidelity", "--answers", "all",
                 "--prompts", "3", "--seeds", "1", "--answer-tokens", "16",
                 "--set", "temperature=0", "--json", "-")  # fmt: skip
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    export, ref = data["answers"]
    assert (export["backend"], ref["backend"]) == ("export", "reference")
    assert [a["text"] for a in export["items"]] == [a["text"] for a in ref["items"]]
    assert any("not a GGUF" in n for n in data["answer_notes"])


@pytest.mark.parametrize("count", [0, 999])
def test_prompt_count_bounds(count):
    from ovchat.errors import OptionError

    with pytest.raises(OptionError):
        select_prompts(count)


def test_fidelity_and_answers_in_one_report(tiny_llama_hf, tiny_export, capsys):
    fp32 = tiny_export(tiny_llama_hf, "fp32")
    r = run_main(capsys, "eval", str(fp32), "--max-tokens", "300", "--window", "128",
                 "--prompts", "2", "--seeds", "1", "--answer-tokens", "8",
                 "--json", "-")  # fmt: skip
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    assert data["rows"][0]["top1_agreement"] == 1.0 and len(data["answers"][0]["items"]) == 2
    kept = json.loads((fp32 / "ovchat-eval.json").read_text())  # what `ovchat show` reads
    assert kept["answers"][0]["answers"] == 2 and "items" not in kept["answers"][0]
