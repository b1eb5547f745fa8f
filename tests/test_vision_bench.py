"""`ovchat bench --image FILE` on the tiny LLaVA: the image's tokens, encoding time, TTFT,
decode speed and memory reported (their values are not checked: speed lives in
benchmarks); a text-only model or a flag it does not combine with is one line, exit 2."""

from __future__ import annotations

import json

from conftest import run_cli, run_main
from test_vision import F32, flat, hf_prompt_tokens, png

from ovchat.bench.vision import QUESTION


def test_bench_image_reports_the_image_cost(tiny_llava, tiny_llava_hf, tmp_path):
    picture = tmp_path / "red.png"
    picture.write_bytes(png(flat((200, 40, 90))))
    prop = [f"-p{k}={v}" for k, v in F32.items()]
    r = run_cli("bench", "-m", str(tiny_llava), *prop, "--image", str(picture), "--reps", "1",
                "--new-tokens", "4", "--json", "-")  # fmt: skip
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout)
    assert report["prompt_tokens"]["image"] == hf_prompt_tokens(tiny_llava_hf, QUESTION)
    assert report["prompt_tokens"]["text"] < report["prompt_tokens"]["image"]
    assert report["width"] == report["height"] == 56
    assert report["image_encode_ms"] > 0
    for kind in ("text", "image"):
        assert report["ttft_ms"][kind] > 0 and report["decode_tps"][kind] > 0
        assert report["peak_rss_mb"][kind] >= report["peak_rss_mb"]["load"] > 0
    assert "image encoding ms" in r.stderr and "TTFT ms" in r.stderr  # the table


def test_bench_image_needs_a_vision_model(tiny_llama, tmp_path, capsys):
    picture = tmp_path / "red.png"
    picture.write_bytes(png(flat((200, 40, 90))))
    r = run_main(capsys, "bench", "-m", str(tiny_llama), "--image", str(picture))
    assert r.returncode == 2 and "text-only" in r.stderr and len(r.stderr.splitlines()) == 1
    assert "--image" in r.stderr  # the flag named by the command line
    r = run_main(capsys, "bench", "-m", str(tiny_llama), "--image", str(picture), "--engines",
                 "ovchat,llamacpp")  # fmt: skip
    assert r.returncode == 2 and "--engines does not go with --image" in r.stderr
