"""The real `ovchat` command: generate, export, and every error as one line with exit code 2."""

from __future__ import annotations

import json
import shutil

import pytest
from conftest import run_cli, run_main


def assert_one_line_error(r, *needles):
    assert r.returncode == 2, (r.returncode, r.stderr)
    # progress lines may come first; the error itself is exactly one line
    lines = [ln for ln in r.stderr.strip().splitlines() if "error:" in ln]
    assert len(lines) == 1, r.stderr
    assert "Traceback" not in r.stderr
    for n in needles:
        assert n in lines[0], lines[0]


def test_generate_json_on_tiny_model(tiny_llama):
    r = run_cli(
        "generate", "Hello there", "--model", str(tiny_llama), "-n", "7", "-t", "0", "--json"
    )
    assert r.returncode == 0, r.stderr
    obj = json.loads(r.stdout)
    assert obj["generated_tokens"] == 7 and obj["finish_reason"] == "length"
    assert obj["prompt_tokens"] > 3 and isinstance(obj["text"], str) and obj["text"]
    assert obj["ttft"] > 0
    assert obj["total_seconds"] >= obj["ttft"]


def test_generate_streams_stdin_prompt(tiny_llama):
    r = run_cli("generate", "--model", str(tiny_llama), "-n", "5", "-t", "0", input="From stdin\n")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip()


def test_generate_raw_matches_library(tiny_phi3):
    from ovchat import Engine, GenerationOptions

    prompt = (
        "<|system|>You are a helpful AI assistant.<|end|>"
        "<|user|>can you introduce yourself?<|end|><|assistant|>"
    )
    want = Engine(tiny_phi3).generate(prompt, GenerationOptions(max_new_tokens=8, temperature=0))
    r = run_cli("generate", prompt, "--raw", "-m", str(tiny_phi3), "-n", "8", "-t", "0", "--json")
    assert r.returncode == 0, r.stderr
    got = json.loads(r.stdout)
    assert got["text"] == want.text and got["prompt_tokens"] == want.prompt_tokens


def test_export_cli_progress_and_output(tiny_llama_hf, tmp_path):
    out = tmp_path / "cli-export"
    r = run_cli("export", str(tiny_llama_hf), str(out), "--weight-format", "fp16")
    assert r.returncode == 0, r.stderr
    assert "step 2/3" in r.stderr and (out / "ovchat.json").is_file()
    r2 = run_cli("export", str(tiny_llama_hf), str(out))
    assert_one_line_error(r2, "already exists", "--force")


@pytest.mark.parametrize(
    "args,needles",
    [
        (["generate", "hi", "--model", "/no/such/dir"], ["does not exist"]),
        (["generate", "hi", "--device", "NPU.9"], ["NPU.9", "available"]),
        (["generate", "hi", "-n", "0"], ["max_new_tokens"]),
        (["generate", "hi", "--top-p", "2"], ["top_p"]),
        (["generate", "hi", "-p", "NOEQUALS"], ["KEY=VALUE"]),
        (["generate", "hi", "-n", "abc"], ["invalid int value"]),
        (["export", "/no/such.gguf", "out"], ["does not exist"]),
        (["export", "x", "y", "--ratio", "3"], ["ratio"]),
        (["export", "x", "y", "--weight-format", "int3"], ["invalid choice"]),
        (["bogus-verb"], ["invalid choice"]),
    ],
)
def test_errors_are_one_line(args, needles, tiny_llama, capsys):
    args = [str(tiny_llama) if a == "TINY" else a for a in args]
    if args[0] == "generate" and "--model" not in args:
        args += ["--model", str(tiny_llama)]
    assert_one_line_error(run_main(capsys, *args), *needles)


def test_errors_from_the_real_command(tiny_llama):
    """The same one-line errors from the installed console script (a few; the rest in-process)."""
    assert_one_line_error(run_cli("generate", "hi", "--model", "/no/such/dir"), "does not exist")
    r = run_cli("generate", "--raw", "-m", str(tiny_llama), input="word " * 3000)
    assert_one_line_error(r, "context window")


@pytest.mark.parametrize(
    "args,needles",
    [
        (["generate", "hi", "--device", "NPU.9"], ["available: CPU", "use --device CPU"]),
        (["generate", "hi", "-p", "NOEQUALS"], ["check the -p KEY=VALUE options"]),
        (["generate", "hi", "--top-p", "2"], ["top_p must be in (0, 1], got 2.0", "--top-p"]),
        (["generate", "hi", "-t", "1e-46"], ["too small", "-t/--temperature"]),
        (["generate", "hi", "--stop", ""], ["stop strings must not be empty", "--stop"]),
    ],
)
def test_library_errors_get_the_flag_at_the_cli(args, needles, tiny_llama, capsys):
    """The library names the option; the CLI turns it into its own flag."""
    assert_one_line_error(run_main(capsys, *args, "--model", str(tiny_llama)), *needles)


def test_not_a_model_dir(tmp_path, tiny_llama_hf, tiny_llama, capsys):
    (tmp_path / "empty").mkdir()
    r = run_main(capsys, "generate", "hi", "-m", str(tmp_path / "empty"))
    assert_one_line_error(r, "missing")
    r = run_main(capsys, "generate", "hi", "-m", str(tiny_llama_hf))
    assert_one_line_error(r, "ovchat export")
    broken = tmp_path / "broken"
    shutil.copytree(tiny_llama, broken)
    (broken / "openvino_model.bin").write_bytes(b"\x00" * 10)
    assert_one_line_error(
        run_main(capsys, "generate", "hi", "-m", str(broken), "-p", "CACHE_DIR="),
        "could not load",
        "re-export it",
        "Incorrect weights",
    )


def test_prompt_longer_than_context_cli(tiny_llama, capsys):
    r = run_main(capsys, "generate", "--raw", "-m", str(tiny_llama), "word " * 3000)
    assert_one_line_error(r, "context window")


def test_unsupported_architecture(tmp_path):
    d = tmp_path / "weird"
    d.mkdir()
    (d / "config.json").write_text(
        json.dumps({"model_type": "not-a-real-arch", "architectures": ["X"]})
    )
    r = run_cli("export", str(d), str(tmp_path / "o"))
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
    assert not (tmp_path / "o").exists()


def test_hub_id_from_local_hf_cache(tiny_llama_hf, tmp_path):
    """A Hugging Face id resolves through the local HF cache (the hub itself is offline here)."""
    cache = tmp_path / "hf-cache"
    snap = cache / "models--tiny-org--tiny-llama" / "snapshots" / ("0" * 40)
    shutil.copytree(tiny_llama_hf, snap)
    (cache / "models--tiny-org--tiny-llama" / "refs").mkdir()
    (cache / "models--tiny-org--tiny-llama" / "refs" / "main").write_text("0" * 40)
    out = tmp_path / "from-hub-id"
    env = {"HF_HUB_CACHE": str(cache), "HF_HUB_OFFLINE": "1"}
    r = run_cli("export", "tiny-org/tiny-llama", str(out), "--weight-format", "fp16", env=env)
    assert r.returncode == 0, r.stderr
    assert json.loads((out / "ovchat.json").read_text())["source"] == {
        "kind": "hub",
        "model": "tiny-org/tiny-llama",
    }


def test_unknown_hub_id_offline(tmp_path):
    r = run_cli("export", "no-such-org/no-such-model", str(tmp_path / "o"),
                env={"HF_HUB_OFFLINE": "1", "HF_HUB_CACHE": str(tmp_path / "c")})  # fmt: skip
    assert_one_line_error(r, "no-such-org/no-such-model")
    assert not (tmp_path / "o").exists()


def test_json_reports_carry_no_machine_paths(tmp_path):
    """`--json` reports (bench, eval) write this machine's paths portably."""
    import tempfile
    from pathlib import Path

    from ovchat.paths import home
    from ovchat.verbs.cliargs import write_json

    report = {
        "model": str(home() / "models" / "smollm2" / "gguf"),
        "rows": [{"cache": str(Path(tempfile.gettempdir()) / "ov-cache")}],
        "other": "/opt/elsewhere",
    }
    out = tmp_path / "r.json"
    write_json(report, str(out))
    got = json.loads(out.read_text())
    assert got["model"] == "$OVCHAT_HOME/models/smollm2/gguf"
    assert got["rows"][0]["cache"] == "$TMPDIR/ov-cache"
    assert got["other"] == "/opt/elsewhere"
