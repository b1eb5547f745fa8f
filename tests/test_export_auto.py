"""`ovchat export --recipe auto` and `--dataset`: recipes tried in order, scored against the
reference, the first within the bounds kept; calibration text never the eval corpus."""

from __future__ import annotations

import json

import pytest
from conftest import run_main

from ovchat.convert.calib import CALIB_PROMPTS, docstrings, load_dataset
from ovchat.convert.recipe import Recipe
from ovchat.errors import OptionError
from ovchat.evals.auto import candidates, export_auto
from ovchat.evals.corpus import corpus_text
from ovchat.evals.prompts import PROMPTS

TINY_INT4 = Recipe(weight_format="int4", group_size=16, ratio=1.0, sym=True)


def test_candidates_go_from_fastest_to_most_faithful():
    hf = [r.weight_format for _, r in candidates(False, "builtin", Recipe())]
    assert hf == ["int4", "int4", "int4", "int8", "fp16"]
    gguf = candidates(True, "builtin", Recipe())
    assert gguf[0][1].weight_format == "gguf" and len(gguf) == 6
    aware = [r for _, r in gguf if r.awq]
    assert aware and all(r.dataset == "builtin" and r.scale_estimation for r in aware)


def test_builtin_calibration_is_not_the_eval_text():
    texts = docstrings(16)
    assert len(texts) == 16 and all(300 <= len(t) <= 1200 for t in texts)
    corpus = corpus_text()
    assert not any(t[:200] in corpus for t in texts)
    assert not {p[2] for p in PROMPTS} & set(CALIB_PROMPTS)


def test_dataset_file_and_errors(tmp_path):
    f = tmp_path / "c.txt"
    f.write_text("first paragraph\nstill first\n\nsecond one\n\n\n")
    assert load_dataset(str(f)) == ["first paragraph\nstill first", "second one"]
    j = tmp_path / "c.json"
    j.write_text(json.dumps(["a text", "another"]))
    assert load_dataset(str(j)) == ["a text", "another"]
    assert load_dataset("auto") == "auto"
    for bad, why in ((tmp_path / "none.txt", "neither a file"), (j.with_name("x.json"), "")):
        if why:
            with pytest.raises(OptionError, match=why):
                load_dataset(str(bad))
    j.write_text('{"not": "a list"}')
    with pytest.raises(OptionError, match="list of strings"):
        load_dataset(str(j))
    with pytest.raises(OptionError, match="calibration text") as e:
        Recipe(awq=True).validate()
    assert e.value.param == "dataset"


def test_awq_with_a_text_file(tiny_llama_hf, tmp_path, capsys):
    f = tmp_path / "calib.txt"
    f.write_text("\n\n".join(docstrings(8)))
    r = run_main(capsys, "export", str(tiny_llama_hf), str(tmp_path / "awq"), "--group-size",
                 "16", "--ratio", "1.0", "--asym", "--awq", "--scale-estimation", "--dataset",
                 str(f), "--num-samples", "8")  # fmt: skip
    assert r.returncode == 0, r.stderr
    m = json.loads((tmp_path / "awq" / "ovchat.json").read_text())
    asked = m["recipe"]["asked"]
    assert (asked["awq"], asked["scale_estimation"], asked["dataset"]) == (True, True, str(f))
    assert set(m["recipe"]["applied"]["int4_group_sizes"]) == {"16"}  # int4 really applied
    assert "calibration text" in r.stderr
    r = run_main(capsys, "export", str(tiny_llama_hf), str(tmp_path / "x"), "--awq")
    assert r.returncode == 2 and "--dataset" in r.stderr


def test_auto_keeps_the_first_recipe_within_the_bounds(tiny_llama_hf, tmp_path):
    rows: list[dict] = []
    r = export_auto(
        str(tiny_llama_hf), tmp_path / "auto", max_ppl_ratio=1.001, min_top1=0.999,
        recipes=[("int4 g16", TINY_INT4), ("fp32", Recipe(weight_format="fp32"))],
        max_tokens=600, window=128, progress=lambda s: None, on_row=rows.append,
    )  # fmt: skip
    assert [row["recipe"] for row in r.rows] == ["int4 g16", "fp32"] and rows == r.rows
    assert not r.rows[0]["met"] and r.rows[0]["top1"] < 0.999  # int4 measured, not assumed
    assert r.rows[1]["met"] and r.chosen == "fp32" and r.met
    m = json.loads((r.path / "ovchat.json").read_text())
    assert m["recipe"]["asked"]["weight_format"] == "fp32"
    assert m["recipe"]["auto"]["tried"] == r.rows
    assert not list(tmp_path.glob(".auto*"))  # the candidates are cleaned up


def test_auto_via_cli_stops_at_the_first_that_passes(tiny_llama_hf, tmp_path, capsys):
    out = tmp_path / "auto"
    r = run_main(capsys, "export", str(tiny_llama_hf), str(out), "--recipe", "auto",
                 "--max-ppl-ratio", "1000", "--min-top1", "0")  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == str(out)
    assert "recipes tried" in r.stderr and "optimum-intel's" in r.stderr
    tried = json.loads((out / "ovchat.json").read_text())["recipe"]["auto"]["tried"]
    assert len(tried) == 1 and tried[0]["met"]  # the fastest already passes loose bounds
    r = run_main(capsys, "export", str(tiny_llama_hf), str(out), "--recipe", "auto",
                 "--min-top1", "2")  # fmt: skip
    assert r.returncode == 2 and "--min-top1" in r.stderr
