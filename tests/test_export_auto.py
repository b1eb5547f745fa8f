"""`ovchat export --recipe auto` and `--dataset`: each candidate scored against the reference,
the decode speed of those within the bounds measured here, the fastest kept; calibration text
never the eval corpus."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import run_main

import ovchat
from ovchat.convert.calib import CALIB_PROMPTS, docstrings, load_dataset
from ovchat.convert.recipe import Recipe
from ovchat.errors import OptionError
from ovchat.evals.auto import CANDIDATE_KEYS, candidate_key, candidates, choose, export_auto
from ovchat.evals.corpus import corpus_text
from ovchat.evals.prompts import PROMPTS
from ovchat.evals.speed import ISA_FLAGS

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


def test_auto_keeps_the_fastest_of_the_faithful(tiny_llama_hf, tmp_path):
    """Speeds come in through the measuring seam; fidelity is measured for real. The
    unfaithful candidate is never timed, and the later, faster faithful one is kept."""
    speeds = iter([10.0, 30.0])
    timed: list[str] = []

    def meter(d):
        timed.append(
            json.loads((d / "ovchat.json").read_text())["recipe"]["asked"]["weight_format"]
        )
        return {"tokens_per_second": next(speeds)}

    rows: list[dict] = []
    fp32 = Recipe(weight_format="fp32")
    r = export_auto(
        str(tiny_llama_hf), tmp_path / "auto", max_ppl_ratio=1.001, min_top1=0.999,
        recipes=[("fp32 a", fp32), ("int4 g16", TINY_INT4), ("fp32 b", fp32)],
        max_tokens=600, window=128, progress=lambda s: None, on_row=rows.append,
        measure_speed=meter,
    )  # fmt: skip
    assert [row["recipe"] for row in r.rows] == ["fp32 a", "int4 g16", "fp32 b"] and rows == r.rows
    assert not r.rows[1]["met"] and r.rows[1]["top1"] < 0.999  # int4 measured, not assumed
    assert r.rows[1]["decode_tok_s"] is None and timed == ["fp32", "fp32"]
    assert [row["decode_tok_s"] for row in r.rows] == [10.0, None, 30.0]
    assert r.chosen == "fp32 b" and r.met and "30.0 tokens/s" in r.why
    m = json.loads((r.path / "ovchat.json").read_text())
    auto = m["recipe"]["auto"]
    assert auto["tried"] == r.rows and auto["chosen"] == "fp32 b" and auto["why"] == r.why
    assert auto["cpu"]["class"] in ("amx", "avx512_vnni", "avx512", "avx2", "other")
    assert auto["cpu"]["model"] and set(auto["cpu"]["flags"]) <= set(ISA_FLAGS)
    assert not list(tmp_path.glob(".auto*"))  # the candidates are cleaned up


def test_choose_falls_back_to_the_most_faithful():
    rows = [
        {"recipe": "a", "met": False, "ppl_ratio": 1.3, "top1": 0.7, "decode_tok_s": None},
        {"recipe": "b", "met": False, "ppl_ratio": 1.1, "top1": 0.8, "decode_tok_s": None},
    ]
    assert choose(rows)[0] == 1 and "most faithful" in choose(rows)[1]
    rows.append({"recipe": "c", "met": True, "ppl_ratio": 1.0, "top1": 1.0, "decode_tok_s": 5.0})
    rows.append({"recipe": "d", "met": True, "ppl_ratio": 1.0, "top1": 1.0, "decode_tok_s": 7.5})
    assert choose(rows)[0] == 3 and "c 5.0" in choose(rows)[1]


def test_candidates_by_name():
    keys = [candidate_key(r) for _, r in candidates(True, "builtin", Recipe())]
    assert keys == list(CANDIDATE_KEYS)
    only = candidates(False, "builtin", Recipe(), ["int8", "int4"])
    assert [r.weight_format for _, r in only] == ["int4", "int8"]
    for bad, why in ((["int3"], "unknown candidate int3"), (["gguf"], "needs a .gguf")):
        with pytest.raises(OptionError, match=why) as e:
            candidates(False, "builtin", Recipe(), bad)
        assert e.value.param == "candidates"


def test_auto_via_cli_measures_speed_here(tiny_llama_hf, tmp_path, capsys):
    out = tmp_path / "auto"
    r = run_main(capsys, "export", str(tiny_llama_hf), str(out), "--recipe", "auto", "--candidates",
                 "int8,fp16", "--max-ppl-ratio", "1000", "--min-top1", "0")  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == str(out)
    said = " ".join(r.stderr.split())
    assert "recipes measured on" in said and "the fastest of the 2 within the bounds" in said
    auto = json.loads((out / "ovchat.json").read_text())["recipe"]["auto"]
    tried = auto["tried"]
    assert [t["recipe"] for t in tried] == ["int8 asym per channel", "fp16"]
    assert all(t["met"] and t["decode_tok_s"] > 0 for t in tried)  # both timed, for real
    assert all(t["decode"]["runs"] == 3 and len(t["decode"]["values"]) == 3 for t in tried)
    fastest = max(tried, key=lambda t: t["decode_tok_s"])
    assert auto["chosen"] == fastest["recipe"] and f"kept {fastest['recipe']}:" in said
    asked = json.loads((out / "ovchat.json").read_text())["recipe"]["asked"]["weight_format"]
    assert asked == {"int8 asym per channel": "int8", "fp16": "fp16"}[fastest["recipe"]]
    r = run_main(capsys, "show", str(out))
    assert r.returncode == 0, r.stderr
    assert "chosen by" in r.stdout and auto["cpu"]["class"] in r.stdout
    assert r.stdout.count("candidate") == 2 and "(kept)" in r.stdout
    r = run_main(capsys, "export", str(tiny_llama_hf), str(out), "--recipe", "auto",
                 "--min-top1", "2")  # fmt: skip
    assert r.returncode == 2 and "--min-top1" in r.stderr
    r = run_main(capsys, "export", str(tiny_llama_hf), str(out), "--recipe", "auto", "--force",
                 "--candidates", "int9")  # fmt: skip
    assert r.returncode == 2 and "--candidates" in r.stderr and "int9" in r.stderr


def test_pull_recipe_auto_and_the_default_models_measured_choice(
    tiny_llama_hf, tmp_path, capsys, monkeypatch
):
    monkeypatch.setenv("OVCHAT_HOME", str(tmp_path))
    r = run_main(capsys, "pull", str(tiny_llama_hf), "tiny", "--recipe", "auto", "--candidates",
                 "int8,fp16", "--max-ppl-ratio", "1000", "--min-top1", "0")  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "tiny:auto"
    shown = json.loads(run_main(capsys, "show", "tiny:auto", "--json").stdout)
    tried = shown["recipe_auto"]["tried"]
    assert [t["recipe"] for t in tried] == ["int8 asym per channel", "fp16"]
    assert shown["recipe_asked"]["weight_format"] in ("int8", "fp16")
    r = run_main(capsys, "pull", str(tiny_llama_hf), "tiny:int8", "--recipe", "auto")
    assert r.returncode == 2 and "chooses one by measurement" in r.stderr
    # The default model's bare name means its measured choice once there is one.
    r = run_main(capsys, "cp", "tiny:auto", "smollm2:auto")
    assert r.returncode == 0, r.stderr
    assert ovchat.resolve("smollm2") == Path(shown["path"])
